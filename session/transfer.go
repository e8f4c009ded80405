package session

import (
	"context"
	"encoding/json"
	"time"
)

// TransferMode says how a call is transferred.
type TransferMode string

// Transfer modes.
const (
	// TransferRefer asks the caller's side to place the new call itself: a REFER in the
	// caller's dialog (blind transfer, RFC 3515). callctx leaves the call once it succeeded.
	TransferRefer TransferMode = "refer"
	// TransferInvite places a new call to the target and bridges it with the caller (a B2BUA
	// leg, recorded as a call with ParentID); callctx stays in the signalling path.
	TransferInvite TransferMode = "invite"
)

// TransferStatus is where a transfer stands.
type TransferStatus string

// Transfer statuses.
const (
	TransferPending  TransferStatus = "pending"  // sent; no final outcome yet
	TransferAnswered TransferStatus = "answered" // the target answered
	TransferFailed   TransferStatus = "failed"   // see ReasonCode; the call stays with callctx
	// TransferAccepted ends a transfer asked for without notifications: the caller's side
	// accepted the REFER and callctx left the call without waiting for the outcome.
	TransferAccepted TransferStatus = "accepted"
)

// Final reports whether s is a transfer's outcome (answered, failed, accepted): the write
// that records it is published as EventTransferStatus.
func (s TransferStatus) Final() bool {
	return s == TransferAnswered || s == TransferFailed || s == TransferAccepted
}

// Reason codes of a failed transfer (AudioCodes Live Hub's transferStatus, and two of
// callctx's own for outcomes Live Hub does not name).
const (
	ReasonNoAnswer = "no-answer"
	ReasonBusy     = "busy"
	ReasonDeclined = "declined"
	ReasonError    = "error"
	// ReasonNoFinalAnswer: the transferee ended the REFER subscription (a final NOTIFY,
	// Subscription-State: terminated) while the new call had no final answer yet, so its
	// outcome is unknown: a provisional sipfrag (SIP/2.0 100 Trying, 180 Ringing) or none.
	ReasonNoFinalAnswer = "no-final-answer"
	// ReasonCallEnded: the call ended (the caller hung up, or it was ended over REST) before
	// the transfer had an outcome.
	ReasonCallEnded = "call-ended"
	// ReasonTargetDown: the SIP bridge did not try, because the target (or the SBC it goes
	// through) has not answered the bridge's OPTIONS keep-alive probes.
	ReasonTargetDown = "target-down"
)

// TransferHeader is one custom SIP header to send with a transfer.
type TransferHeader struct {
	Name  string
	Value string
}

// ContextLinkHeader is the SIP header that carries a context link: a signed URL that reads
// the call's whole session (TransferContext.As "reference").
const ContextLinkHeader = "X-Callctx-Context"

// TransferContext says which session variables travel with a transfer and how.
type TransferContext struct {
	// Variables are names, or prefixes ending in "*" ("ivr.*"), of the variables to carry.
	Variables []string
	// As is "headers" (one X- header per variable), "uui" (one User-to-User header), "both",
	// or "reference": one ContextLinkHeader whose link reads the whole session, instead of
	// any variable (Variables is then not used).
	As string
	// UUIEncoding is "plain" or "hex" (the default) for the User-to-User header.
	UUIEncoding string
	// Names gives a variable the header name or UUI key it travels as, instead of the
	// default (sip.x-customer-id as X-Customer-Id, ivr.email as X-Ivr-Email or UUI key
	// ivr.email, sip.uui.<k> as UUI key <k>).
	Names map[string]string
}

// TransferRequest asks for a live call to be transferred. Its fields follow AudioCodes Live
// Hub's transfer parameters (transferTarget, handoverReason, transferSipHeaders,
// transferReferredByURL, transferNotifications, transferNotificationsHangupMS).
type TransferRequest struct {
	Target         string // tel: or sip:/sips: URI
	Mode           TransferMode
	HandoverReason string
	Headers        []TransferHeader
	ReferredBy     string // a URI; adds Referred-By
	// Blind skips waiting for the outcome (Live Hub's transferNotifications: false): a REFER
	// transfer ends as accepted once the REFER is, and callctx hangs up at once. By default
	// callctx waits for the final NOTIFY and records the outcome.
	Blind bool
	// HangupAfter is the grace period between a successful REFER transfer and callctx
	// hanging up its leg, 0 to MaxHangupAfter; nil means DefaultHangupAfter.
	HangupAfter    *time.Duration
	PreserveTelURI bool             // send a tel: target as it is instead of sip:<number>@<SBC>;user=phone
	Context        *TransferContext // nil: the bridge's configured default
	Actor          string           // who asked, for the log and the session history
}

// Grace periods after a successful transfer (Live Hub's transferNotificationsHangupMS).
const (
	DefaultHangupAfter = 5 * time.Second
	MaxHangupAfter     = 10 * time.Second
)

// EventTransferStatus is the type of the event published with the write that records the
// outcome of a transfer (the transfer.status event of flows and of the event stream).
const EventTransferStatus EventType = "transfer.status"

// Transfer is one transfer of a call and, once known, its outcome.
type Transfer struct {
	ID             string         `json:"id"`
	CallID         string         `json:"callId"`
	Mode           TransferMode   `json:"mode"`
	Target         string         `json:"target"` // the target as asked for
	Status         TransferStatus `json:"status"`
	ReasonCode     string         `json:"reasonCode,omitempty"`
	SIPCode        int            `json:"sipCode,omitempty"`
	Reason         string         `json:"reason,omitempty"`
	HandoverReason string         `json:"handoverReason,omitempty"`
	LegCallID      string         `json:"legCallId,omitempty"` // the new call of an invite-mode transfer
	StartedAt      time.Time      `json:"startedAt"`
	EndedAt        time.Time      `json:"endedAt,omitzero"`
}

// Transferer moves a live call to another party. The SIP bridge implements it; the REST API
// and flows call it, so that neither depends on the other.
type Transferer interface {
	// Transfer validates req, starts the transfer of call callID and returns it in status
	// pending (or its final status when it failed at once); the outcome is recorded later in
	// the call's session (see TransferVariables) with an EventTransferStatus event.
	// CodeNotFound for an unknown call; CodeConflict when the call has ended, is not held by
	// this bridge or has a transfer in progress; CodeInvalid with Fields naming each bad
	// parameter (target, headers/<i>/name, headers/<i>/value, referredBy, hangupAfter,
	// context); CodeUnavailable when the bridge is shutting down.
	Transfer(ctx context.Context, callID string, req TransferRequest) (*Transfer, error)
}

// transferVariables are the variables a transfer record sets (see transferRecord).
var transferVariables = map[string]bool{
	VarTransferID: true, VarTransferStatus: true, VarTransferReasonCode: true, VarTransferSIPCode: true,
	VarTransferReason: true, VarTransferTarget: true, VarTransfers: true,
}

// transferRecord reports whether a write is the SIP bridge's record of a transfer's outcome:
// written by the bridge (OriginSIP), published as EventTransferStatus, setting a final
// sip.transfer.status and nothing but the transfer variables. A transfer's outcome must be
// recorded whatever happened to the call meanwhile (the caller hung up, or the call was ended
// over REST, while the target rang), so such a write is accepted on an ended call and, like
// the end-of-call write, is not refused by the count and size limits; each value still obeys
// the value limit, and there are seven of them.
func transferRecord(opts WriteOptions, set map[string]json.RawMessage) bool {
	if opts.Origin != OriginSIP || opts.Event != EventTransferStatus || len(opts.Fires) > 0 {
		return false
	}
	for name := range set {
		if !transferVariables[name] {
			return false
		}
	}
	var st TransferStatus
	return json.Unmarshal(set[VarTransferStatus], &st) == nil && st.Final()
}

// Session variables in which the SIP bridge records transfers and related legs. They live in
// the sip. namespace, so clients can read but never forge them.
const (
	VarTransferID         = "sip.transfer.id"
	VarTransferStatus     = "sip.transfer.status"
	VarTransferReasonCode = "sip.transfer.reasonCode"
	VarTransferSIPCode    = "sip.transfer.sipCode"
	VarTransferReason     = "sip.transfer.reason"
	VarTransferTarget     = "sip.transfer.target"
	// VarTransfers holds every transfer of the call (the newest last) as a JSON array of
	// Transfer; VarLegs the IDs of the calls the bridge placed for this one (bridge mode,
	// invite-mode transfers), each of which has this call as ParentID.
	VarTransfers = "sip.transfers"
	VarLegs      = "sip.legs"
)

// EventCallReferred is the type of the event published with the write that records a REFER
// the SIP bridge accepted on a call (the call.referred event of flows and of the event
// stream): the far end, or the caller's side, asked for the call to go elsewhere.
const EventCallReferred EventType = "call.referred"

// Session variables in which the SIP bridge records the REFER it accepted last on a call;
// the context the REFER carried (Refer-To URI headers, its own X- headers, User-to-User) is
// in sip.refer.<header> and sip.refer.uui.<key>, unless sip.map renames it.
const (
	VarReferPrefix     = "sip.refer."
	VarReferTarget     = "sip.refer.target"     // the Refer-To URI, without its headers
	VarReferReferredBy = "sip.refer.referredBy" // the Referred-By URI, when there was one
	VarReferLeg        = "sip.refer.leg"        // who sent it: "caller" or "callee" (the far end of a bridged call)
)
