package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
	"github.com/gin-gonic/gin"
)

// callJSON is a call as the API shows it; absent values are null.
type callJSON struct {
	ID        string     `json:"id"`
	State     string     `json:"state"`
	From      string     `json:"from"`
	To        string     `json:"to"`
	Direction string     `json:"direction"`
	Flow      *string    `json:"flow"`
	Route     *string    `json:"route"`
	StartedAt time.Time  `json:"startedAt"`
	EndedAt   *time.Time `json:"endedAt"`
	EndReason *string    `json:"endReason"`
	ParentID  *string    `json:"parentId"`
	SIPCallID *string    `json:"sipCallId"`
}

func toCallJSON(c *session.Call) callJSON {
	out := callJSON{
		ID: c.ID, State: string(c.State), From: c.From, To: c.To, Direction: string(c.Direction),
		Flow: optString(c.Flow), Route: optString(c.Route), StartedAt: c.StartedAt, EndReason: optString(c.EndReason),
		ParentID: optString(c.ParentID), SIPCallID: optString(c.SIPCallID),
	}
	if !c.EndedAt.IsZero() {
		t := c.EndedAt
		out.EndedAt = &t
	}
	return out
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// newCallRequest is the body of POST /v1/calls.
type newCallRequest struct {
	ID        string                     `json:"id"`
	From      string                     `json:"from"`
	To        string                     `json:"to"`
	Direction string                     `json:"direction"`
	Flow      string                     `json:"flow"`
	Variables map[string]json.RawMessage `json:"variables"`
}

func (h *Handler) createCall(c *gin.Context) {
	var req newCallRequest
	if _, err := decodeBody(c, &req); err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "the body could not be decoded: "+jsonErrorText(err), nil)
		return
	}
	nc := session.NewCall{
		ID: req.ID, From: req.From, To: req.To, Direction: session.Direction(req.Direction),
		Flow: req.Flow, Variables: req.Variables,
	}
	wo := session.WriteOptions{Actor: h.actor(c), Origin: session.OriginClient}
	var call *session.Call
	var err error
	if h.flows != nil {
		// The one way a call starts: its flow checked or routed, then started.
		call, _, err = h.flows.CreateCall(c.Request.Context(), nc, flow.CallOptions{WriteOptions: wo})
	} else {
		call, _, err = h.svc.CreateCall(c.Request.Context(), nc, wo) // no flows to check or start
	}
	if err != nil {
		h.failAt(c, err, "/variables")
		return
	}
	c.Set(ctxCallID, call.ID)
	c.Header("Location", "/v1/calls/"+call.ID)
	c.JSON(http.StatusCreated, toCallJSON(call))
}

func (h *Handler) listCalls(c *gin.Context) {
	opts := session.ListOptions{State: session.StateFilter(c.DefaultQuery("state", "active")), Cursor: c.Query("cursor")}
	switch opts.State {
	case session.FilterActive, session.FilterEnded, session.FilterAll:
	default:
		writeProblem(c, http.StatusBadRequest, typeMalformed, "state must be active, ended or all", nil)
		return
	}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > session.MaxListLimit {
			writeProblem(c, http.StatusBadRequest, typeMalformed, "limit must be an integer from 1 to "+strconv.Itoa(session.MaxListLimit), nil)
			return
		}
		opts.Limit = n
	}
	page, err := h.svc.ListCalls(c.Request.Context(), opts)
	if session.ErrorCode(err) == session.CodeInvalid {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "the cursor is not valid; pass the next value of a previous page unchanged", nil)
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	items := make([]callJSON, len(page.Items))
	for i, call := range page.Items {
		items[i] = toCallJSON(call)
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next": optString(page.Next)})
}

// callDetailJSON is one call with what the SIP bridge did with it.
type callDetailJSON struct {
	callJSON
	Transfers []transferJSON `json:"transfers"`
	Legs      []string       `json:"legs"`
}

func (h *Handler) getCall(c *gin.Context) {
	call, err := h.svc.Call(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	sess, err := h.svc.Session(c.Request.Context(), call.ID)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := callDetailJSON{callJSON: toCallJSON(call)}
	out.Transfers, out.Legs = callSIP(sess.Variables)
	c.JSON(http.StatusOK, out)
}

func (h *Handler) endCall(c *gin.Context) {
	var req struct {
		Reason string `json:"reason"`
	}
	if _, err := decodeBody(c, &req); err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "the body could not be decoded: "+jsonErrorText(err), nil)
		return
	}
	call, err := h.svc.EndCall(c.Request.Context(), c.Param("id"), req.Reason, h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toCallJSON(call))
}
