package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/gin-gonic/gin"
)

// transferBody is the body of POST /v1/calls/{id}/transfer: Live Hub's parameters flat, or
// in one of the envelopes bots send them to Live Hub in (see TransferBody in openapi.yaml).
type transferBody struct {
	transferRequest
	ActivityParams *transferRequest `json:"activityParams"`
	ChannelData    *struct {
		ActivityParams *transferRequest `json:"activityParams"`
	} `json:"channelData"`
	Activities []struct {
		Name           string           `json:"name"`
		ActivityParams *transferRequest `json:"activityParams"`
	} `json:"activities"`
}

// params returns the transfer parameters and the JSON pointer where they sit in the body.
func (b *transferBody) params() (*transferRequest, string) {
	switch {
	case b.ActivityParams != nil:
		return b.ActivityParams, "/activityParams"
	case b.ChannelData != nil && b.ChannelData.ActivityParams != nil:
		return b.ChannelData.ActivityParams, "/channelData/activityParams"
	}
	for i, a := range b.Activities {
		if (a.Name == "transfer" || a.Name == "handover") && a.ActivityParams != nil {
			return a.ActivityParams, "/activities/" + strconv.Itoa(i) + "/activityParams"
		}
	}
	return &b.transferRequest, ""
}

// transferRequest holds AudioCodes Live Hub's transfer parameters, plus how the session
// travels.
type transferRequest struct {
	TransferTarget                string           `json:"transferTarget"`
	Mode                          string           `json:"mode"`
	HandoverReason                string           `json:"handoverReason"`
	TransferSIPHeaders            []sipHeaderJSON  `json:"transferSipHeaders"`
	TransferReferredByURL         string           `json:"transferReferredByURL"`
	TransferNotifications         *bool            `json:"transferNotifications"`
	TransferNotificationsHangupMS *int             `json:"transferNotificationsHangupMS"`
	PreserveTelURI                bool             `json:"preserveTelURI"`
	Session                       *transferContext `json:"session"`
}

type sipHeaderJSON struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type transferContext struct {
	Variables   []string          `json:"variables"`
	As          string            `json:"as"`
	UUIEncoding string            `json:"uuiEncoding"`
	Names       map[string]string `json:"names"`
}

// transferJSON is a transfer as the API shows it.
type transferJSON struct {
	ID             string     `json:"id"`
	CallID         string     `json:"callId"`
	Mode           string     `json:"mode"`
	Target         string     `json:"target"`
	Status         string     `json:"status"`
	ReasonCode     *string    `json:"reasonCode"`
	SIPCode        *int       `json:"sipCode"`
	Reason         *string    `json:"reason"`
	HandoverReason *string    `json:"handoverReason"`
	LegCallID      *string    `json:"legCallId"`
	StartedAt      time.Time  `json:"startedAt"`
	EndedAt        *time.Time `json:"endedAt"`
}

func toTransferJSON(t session.Transfer) transferJSON {
	out := transferJSON{
		ID: t.ID, CallID: t.CallID, Mode: string(t.Mode), Target: t.Target, Status: string(t.Status),
		ReasonCode: optString(t.ReasonCode), Reason: optString(t.Reason), HandoverReason: optString(t.HandoverReason),
		LegCallID: optString(t.LegCallID), StartedAt: t.StartedAt,
	}
	if t.SIPCode != 0 {
		code := t.SIPCode
		out.SIPCode = &code
	}
	if !t.EndedAt.IsZero() {
		e := t.EndedAt
		out.EndedAt = &e
	}
	return out
}

// transferFields maps the parameter names of session.Transferer's errors to JSON pointers
// into the request body.
var transferFields = map[string]string{
	"target":         "/transferTarget",
	"mode":           "/mode",
	"headers":        "/transferSipHeaders",
	"referredBy":     "/transferReferredByURL",
	"hangupAfter":    "/transferNotificationsHangupMS",
	"handoverReason": "/handoverReason",
	"context":        "/session",
}

func transferPointer(field string) string {
	if rest, ok := strings.CutPrefix(field, "headers/"); ok {
		return "/transferSipHeaders/" + rest
	}
	if p, ok := transferFields[field]; ok {
		return p
	}
	return "/" + escapePointer(field)
}

func (h *Handler) transferCall(c *gin.Context) {
	if h.transferer == nil {
		writeProblem(c, http.StatusServiceUnavailable, typeUnavailable, "the SIP bridge is off (sip.listen is empty), so calls cannot be transferred", nil)
		return
	}
	var body transferBody
	if _, err := decodeBody(c, &body); err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "the body could not be decoded: "+jsonErrorText(err), nil)
		return
	}
	req, at := body.params()
	if len(body.Activities) > 0 && at == "" {
		writeProblem(c, http.StatusUnprocessableEntity, typeValidation, "the activities hold no transfer (or handover) event with activityParams", []problemError{{Pointer: "/activities", Detail: "no transfer event"}})
		return
	}
	tr := session.TransferRequest{
		Target: req.TransferTarget, Mode: session.TransferMode(req.Mode), HandoverReason: req.HandoverReason,
		ReferredBy: req.TransferReferredByURL, PreserveTelURI: req.PreserveTelURI,
		Blind: req.TransferNotifications != nil && !*req.TransferNotifications, Actor: h.actor(c),
	}
	for _, hd := range req.TransferSIPHeaders {
		tr.Headers = append(tr.Headers, session.TransferHeader{Name: hd.Name, Value: hd.Value})
	}
	if req.TransferNotificationsHangupMS != nil {
		d := time.Duration(*req.TransferNotificationsHangupMS) * time.Millisecond
		tr.HangupAfter = &d
	}
	if s := req.Session; s != nil {
		tr.Context = &session.TransferContext{Variables: s.Variables, As: s.As, UUIEncoding: s.UUIEncoding, Names: s.Names}
	}
	id := c.Param("id")
	t, err := h.transferer.Transfer(c.Request.Context(), id, tr)
	if err != nil {
		h.failWith(c, err, func(f session.FieldError) string { return at + transferPointer(f.Name) })
		return
	}
	c.Header("Location", "/v1/calls/"+id)
	c.JSON(http.StatusAccepted, toTransferJSON(*t))
}

// callSIP is what the SIP bridge recorded in a call's session: its transfers and the calls
// it placed for it.
func callSIP(vars map[string]json.RawMessage) (transfers []transferJSON, legs []string) {
	var ts []session.Transfer
	if raw, ok := vars[session.VarTransfers]; ok && json.Unmarshal(raw, &ts) == nil {
		for _, t := range ts {
			transfers = append(transfers, toTransferJSON(t))
		}
	}
	if raw, ok := vars[session.VarLegs]; ok {
		_ = json.Unmarshal(raw, &legs)
	}
	if transfers == nil {
		transfers = []transferJSON{}
	}
	if legs == nil {
		legs = []string{}
	}
	return transfers, legs
}
