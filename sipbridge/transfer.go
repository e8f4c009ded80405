package sipbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// maxTransfersKept bounds the transfers listed in sip.transfers.
const maxTransfersKept = 16

// maxHandoverReason bounds handoverReason, which only goes to the record.
const maxHandoverReason = 1024

// notifyGrace is how long a transfer whose call has ended still waits for a final NOTIFY.
// sipgo handles each request in a goroutine of its own, so a transferee's NOTIFY 200 and the
// BYE it sends right after it may be handled in either order; and the REFER subscription
// outlives the dialog's INVITE usage (RFC 5057), so a NOTIFY may also follow a BYE.
const notifyGrace = time.Second

// activeTransfer is the transfer a call has in progress.
type activeTransfer struct {
	id          string           // never changes
	t           session.Transfer // owned by the goroutine that runs the transfer once started
	blind       bool
	hangupAfter time.Duration
	notify      chan sipfrag                         // NOTIFYs of a REFER subscription
	report      func(session.TransferStatus, string) // see Bridge.transfer
}

// sipfrag is what one NOTIFY of a REFER says (RFC 3515 §2.4.5).
type sipfrag struct {
	code       int
	reason     string
	terminated bool
}

// Transfer implements session.Transferer: it validates req, sends the REFER (or places the
// new call of an invite-mode transfer) and returns the transfer as pending; a goroutine waits
// for the outcome and records it in the session.
func (b *Bridge) Transfer(ctx context.Context, callID string, req session.TransferRequest) (*session.Transfer, error) {
	return b.transfer(ctx, callID, req, nil)
}

// transfer is Transfer with report, when not nil, called with the outcome once it is recorded
// and before callctx hangs up after a success: a flow learns the outcome while the call's
// session can still be written.
func (b *Bridge) transfer(ctx context.Context, callID string, req session.TransferRequest, report func(session.TransferStatus, string)) (*session.Transfer, error) {
	if req.Target == "" {
		req.Target = b.defaultTarget(callID)
	}
	// A request that cannot be carried out anywhere is refused as such,
	// whatever state the call is in.
	p, err := b.checkTransfer(callID, req)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	closing, c := b.closing, b.calls[callID]
	b.mu.Unlock()
	if closing {
		return nil, session.Errorf(session.CodeUnavailable, "the SIP bridge is shutting down")
	}
	if c == nil {
		call, err := b.svc.Call(ctx, callID)
		if err != nil {
			return nil, err
		}
		if call.State == session.StateEnded {
			return nil, session.Errorf(session.CodeConflict, "the call %s has ended", callID)
		}
		return nil, session.Errorf(session.CodeConflict, "the call %s is not held by this SIP bridge: only calls callctx answered or bridged can be transferred", callID)
	}
	sess, err := b.svc.Session(ctx, callID)
	if err != nil {
		return nil, err
	}
	spec := b.cfg.Carry
	if req.Context != nil {
		spec = *req.Context
	}
	hs, errs := b.outgoing(callID, sess.Variables, spec, p.headers)
	if len(errs) > 0 {
		return nil, &session.Error{Code: session.CodeInvalid, Message: "the session's context cannot travel in SIP with this transfer", Fields: errs}
	}

	at := &activeTransfer{
		t: session.Transfer{ID: uuid.Must(uuid.NewV7()).String(), CallID: callID, Mode: p.mode, Target: req.Target,
			Status: session.TransferPending, HandoverReason: req.HandoverReason, StartedAt: time.Now().UTC()},
		blind: req.Blind, hangupAfter: p.hangupAfter, notify: make(chan sipfrag, 16), report: report,
	}
	at.id = at.t.ID
	c.mu.Lock()
	switch {
	case c.ending:
		c.mu.Unlock()
		return nil, session.Errorf(session.CodeConflict, "the call %s has ended", callID)
	case c.hungUp:
		c.mu.Unlock()
		return nil, session.Errorf(session.CodeConflict, "the call %s is being hung up", callID)
	case !c.confirmed:
		c.mu.Unlock()
		return nil, session.Errorf(session.CodeConflict, "the call %s is not answered yet", callID)
	case c.transfer != nil:
		c.mu.Unlock()
		return nil, session.Errorf(session.CodeConflict, "the call %s has a transfer in progress (%s)", callID, c.transfer.id)
	}
	c.transfer = at
	c.running.Add(1) // done once its outcome is recorded (or it was never sent)
	c.mu.Unlock()

	t := at.t // the goroutine owns at.t from here on
	b.log.Info("sip transfer started", "call_id", callID, "transfer", t.ID, "mode", string(t.Mode), "target", t.Target, "actor", req.Actor)
	if st, down := b.targetDown(p.to); down {
		// Known to be down: fail at once rather than after the transfer timeout.
		c.finishTransfer(at, session.TransferFailed, session.ReasonTargetDown, 0, targetDownError{st}.Error())
		c.running.Done()
		return &at.t, nil
	}
	if p.mode == session.TransferInvite {
		c.record(t)
		b.track(func() { c.runInviteTransfer(at, p, hs) })
		return &t, nil
	}
	// Not the caller's context: the REFER's transaction outlives the REST request.
	sctx, cancel := context.WithTimeout(b.ctx, storeTimeout)
	tx, err := c.sendRefer(sctx, p, hs)
	cancel()
	if err != nil {
		c.clearTransfer(at)
		c.running.Done()
		return nil, err
	}
	c.record(t)
	b.track(func() { c.runRefer(at, tx) })
	return &t, nil
}

// defaultTarget is where a transfer of callID goes that names no target: the transfer_target
// of the call's flow, else the configured one ("" when there is none).
func (b *Bridge) defaultTarget(callID string) string {
	b.mu.Lock()
	c := b.calls[callID]
	b.mu.Unlock()
	if c == nil {
		return b.cfg.TransferTarget
	}
	return b.flowTransferTarget(c.flow)
}

// flowTransferTarget is the transfer_target of flow, else the configured one.
func (b *Bridge) flowTransferTarget(flowName string) string {
	if flowName != "" && b.cfg.Flows != nil {
		if f, ok := b.cfg.Flows.Snapshot().Flow(flowName); ok && f.TransferTarget != "" {
			return f.TransferTarget
		}
	}
	return b.cfg.TransferTarget
}

// track runs f as work Shutdown waits for.
func (b *Bridge) track(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// transferParams is a checked TransferRequest.
type transferParams struct {
	mode        session.TransferMode
	to          target
	headers     []sipcodec.Header
	referredBy  string
	hangupAfter time.Duration
}

// checkTransfer validates every parameter of a transfer of call callID and names each bad one.
func (b *Bridge) checkTransfer(callID string, req session.TransferRequest) (transferParams, error) {
	p := transferParams{mode: req.Mode, hangupAfter: session.DefaultHangupAfter}
	var fields []session.FieldError
	bad := func(name, msg string) { fields = append(fields, session.FieldError{Name: name, Message: msg}) }
	switch p.mode {
	case "":
		p.mode = session.TransferRefer
	case session.TransferRefer, session.TransferInvite:
	default:
		bad("mode", "use refer or invite")
	}
	to, err := parseTarget(req.Target, b.cfg.SBC, req.PreserveTelURI && p.mode == session.TransferRefer)
	switch {
	case req.Target == "":
		bad("target", "no target: name one, or give the call's flow a transfer_target, or configure sip.transfer_target")
	case err != nil:
		bad("target", err.Error())
	}
	p.to = to
	for _, h := range req.Headers {
		p.headers = append(p.headers, sipcodec.Header{Name: h.Name, Value: h.Value})
	}
	fields = append(fields, checkExplicit(callID, p.headers)...)
	if req.ReferredBy != "" {
		rb, err := parseTarget(req.ReferredBy, "", true)
		if err != nil {
			bad("referredBy", strings.Replace(err.Error(), "the target", "the Referred-By URI", 1))
		} else {
			p.referredBy = rb.String()
		}
	}
	if req.HangupAfter != nil {
		if d := *req.HangupAfter; d < 0 || d > session.MaxHangupAfter {
			bad("hangupAfter", fmt.Sprintf("use 0 to %d ms", session.MaxHangupAfter.Milliseconds()))
		} else {
			p.hangupAfter = d
		}
	}
	if len(req.HandoverReason) > maxHandoverReason {
		bad("handoverReason", fmt.Sprintf("at most %d characters", maxHandoverReason))
	} else if err := sipcodec.CheckText(req.HandoverReason); err != nil {
		bad("handoverReason", err.Error())
	}
	if req.Context != nil {
		if err := checkContext(*req.Context); err != nil {
			bad("context", err.Error())
		}
	}
	if len(fields) > 0 {
		msg := "the transfer request is not valid"
		return p, &session.Error{Code: session.CodeInvalid, Message: msg, Fields: fields}
	}
	return p, nil
}

func invalid(field, msg string) error {
	return &session.Error{Code: session.CodeInvalid, Message: msg, Fields: []session.FieldError{{Name: field, Message: msg}}}
}

// remoteTarget is where in-dialog requests to the caller go: its Contact.
func (c *inCall) remoteTarget() sip.Uri {
	if h := c.dlg.InviteRequest.Contact(); h != nil {
		return *h.Address.Clone()
	}
	return *c.dlg.InviteRequest.From().Address.Clone()
}

// sendRefer sends the REFER in the caller's dialog: the context as headers of the Refer-To
// URI (percent-encoded), or, for a tel: target that cannot carry them, as headers of the
// REFER itself. Over UDP a REFER is limited to about 1,300 bytes (sipgo does not move an
// in-dialog request to TCP): a larger one is refused with a clear error, and the caller's
// side should reach callctx over TCP to carry that much context.
func (c *inCall) sendRefer(ctx context.Context, p transferParams, hs []sipcodec.Header) (sip.ClientTransaction, error) {
	req := sip.NewRequest(sip.REFER, c.remoteTarget())
	var extra []sipcodec.Header
	if p.to.canCarryHeaders() {
		u := withURIHeaders(p.to.uri, hs)
		req.AppendHeader(sip.NewHeader("Refer-To", "<"+u.String()+">"))
	} else {
		req.AppendHeader(sip.NewHeader("Refer-To", "<"+p.to.String()+">"))
		extra = hs
	}
	if p.referredBy != "" {
		req.AppendHeader(sip.NewHeader("Referred-By", "<"+p.referredBy+">"))
	}
	for _, h := range extra {
		req.AppendHeader(sip.NewHeader(h.Name, h.Value))
	}
	req.AppendHeader(sip.NewHeader("User-Agent", c.b.cfg.UserAgent))
	if transportOf(c.dlg.InviteRequest) == "udp" {
		if n := len(req.String()) + viaReserve + 300; n > udpLimit {
			return nil, invalid("context", fmt.Sprintf("the REFER would be about %d bytes, over the %d-byte limit of UDP, and the call came in over UDP; carry less context (session.variables, transferSipHeaders) or have the caller's side reach callctx over TCP", n, udpLimit))
		}
	}
	tx, err := c.dlg.TransactionRequest(ctx, req)
	if errors.Is(err, sip.ErrUDPMTUCongestion) {
		return nil, invalid("context", fmt.Sprintf("the REFER is over the %d-byte limit of UDP; carry less context or have the caller's side reach callctx over TCP", udpLimit))
	}
	if err != nil {
		return nil, &session.Error{Code: session.CodeUnavailable, Message: "the REFER could not be sent to the caller's side", Err: err}
	}
	return tx, nil
}

// runRefer waits for the REFER's response and the NOTIFYs that report the new call, records
// the outcome, and on success hangs up after the grace period.
func (c *inCall) runRefer(at *activeTransfer, tx sip.ClientTransaction) {
	defer c.running.Done()
	timer := time.NewTimer(c.b.cfg.TransferTimeout)
	defer timer.Stop()
	answer := c.referAnswer(tx)
	// Once the call has ended, the outcome is what the REFER's answer and the NOTIFYs say
	// within notifyGrace, and otherwise that the call ended first.
	done, dlgDone := c.done, c.dlg.Context().Done()
	var grace <-chan time.Time
	callEnded := func() {
		done, dlgDone = nil, nil
		grace = time.After(notifyGrace)
	}
	last := 0 // the last status a NOTIFY reported
	for {
		select {
		case res := <-answer:
			answer = nil
			switch {
			case res == nil:
				c.finishTransfer(at, session.TransferFailed, session.ReasonError, 0, "no response to the REFER")
				return
			case !res.IsSuccess():
				c.finishTransfer(at, session.TransferFailed, reasonCode(res.StatusCode), res.StatusCode, "REFER refused: "+res.Reason)
				return
			case at.blind:
				c.finishTransfer(at, session.TransferAccepted, "", res.StatusCode, "REFER accepted; not waiting for the outcome")
				c.hangup(EndTransferred)
				return
			}
		case f := <-at.notify: // RFC 3515 §2.4.7: a NOTIFY may come before the REFER's 202
			if c.settle(at, f, &last, grace != nil || c.hangingUp()) {
				return
			}
		case <-timer.C:
			rc := session.ReasonError
			if last >= 180 && last < 200 {
				rc = session.ReasonNoAnswer
			}
			c.finishTransfer(at, session.TransferFailed, rc, 0, fmt.Sprintf("no final NOTIFY within %s", c.b.cfg.TransferTimeout))
			return
		case <-c.b.ctx.Done():
			c.finishTransfer(at, session.TransferFailed, session.ReasonError, 0, "callctx stopped before the transfer's outcome was known")
			return
		case <-done:
			if c.settlePending(at, &last) {
				return
			}
			callEnded()
		case <-dlgDone:
			if c.settlePending(at, &last) {
				return
			}
			callEnded()
		case <-grace:
			c.finishTransfer(at, session.TransferFailed, session.ReasonCallEnded, 0, "the call ended before the transfer's outcome was known")
			return
		}
	}
}

// settle takes one NOTIFY of a REFER subscription and, when it settles the transfer,
// records the outcome and reports true. last is the last status reported so far; ended says
// the call ended (or callctx is hanging up) before this NOTIFY came.
func (c *inCall) settle(at *activeTransfer, f sipfrag, last *int, ended bool) bool {
	if f.code > 0 {
		*last = f.code
	}
	switch {
	case f.code >= 200 && f.code < 300:
		c.finishTransfer(at, session.TransferAnswered, "", f.code, f.reason)
		c.hangupAfter(at.hangupAfter)
	case f.code < 300 && !f.terminated:
		return false
	case ended:
		// The call ended first, and the transferee's failure follows from it (baresip
		// reports "500 Connection reset by peer" when callctx hangs up on it).
		code := 0
		if f.code >= 300 {
			code = f.code
		}
		c.finishTransfer(at, session.TransferFailed, session.ReasonCallEnded, code, "the call ended before the transfer's outcome was known"+lastSaid(f))
	case f.code >= 300:
		c.finishTransfer(at, session.TransferFailed, reasonCode(f.code), f.code, f.reason)
	default:
		// No final answer, and none will come: the transferee ended the subscription
		// with a provisional sipfrag (100 Trying, 180 Ringing) or none.
		reason := "the transferee ended the subscription without a final answer"
		if *last > 0 {
			reason += " (the last was " + strconv.Itoa(*last) + ")"
		}
		c.finishTransfer(at, session.TransferFailed, session.ReasonNoFinalAnswer, 0, reason)
	}
	return true
}

// settlePending takes the NOTIFYs that arrived before the call ended (onNotify queues one
// before it answers it, so any the caller sent before its BYE is queued) and reports
// whether one settled the transfer.
func (c *inCall) settlePending(at *activeTransfer, last *int) bool {
	for {
		select {
		case f := <-at.notify:
			if c.settle(at, f, last, c.hangingUp()) {
				return true
			}
		default:
			return false
		}
	}
}

// lastSaid tells what a NOTIFY reported, for a transfer's reason: " (the transferee
// reported 500 Connection reset by peer)", "" when it reported nothing.
func lastSaid(f sipfrag) string {
	if f.code == 0 {
		return ""
	}
	return " (the transferee reported " + strings.TrimSpace(strconv.Itoa(f.code)+" "+f.reason) + ")"
}

// referAnswer waits in the background for the final response to the REFER, reports it to
// the Observer and sends it (nil when there is none) on the channel it returns. The NOTIFY
// that settles a transfer may be handled before the 202 (RFC 3515 §2.4.7), so the REFER's
// transaction runs its course on its own.
func (c *inCall) referAnswer(tx sip.ClientTransaction) <-chan *sip.Response {
	out := make(chan *sip.Response, 1)
	c.b.track(func() {
		defer tx.Terminate()
		var final *sip.Response
		for final == nil {
			select {
			case res := <-tx.Responses():
				if !res.IsProvisional() {
					final = res
				}
			case <-tx.Done():
				c.b.cfg.Observer.SIPRequest(false, string(sip.REFER), 0)
				out <- nil
				return
			}
		}
		c.b.cfg.Observer.SIPRequest(false, string(sip.REFER), final.StatusCode)
		out <- final
	})
	return out
}

// hangupAfter hangs up once the grace period is over, unless the call ends first.
func (c *inCall) hangupAfter(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		c.hangup(EndTransferred)
	case <-c.done:
	case <-c.dlg.Context().Done():
	case <-c.b.ctx.Done():
	}
}

// runInviteTransfer places the new call with the caller's SDP and, once it is answered,
// offers its SDP to the caller in a re-INVITE; from then on callctx bridges the two.
func (c *inCall) runInviteTransfer(at *activeTransfer, p transferParams, hs []sipcodec.Header) {
	defer c.running.Done()
	ctx, cancel := context.WithTimeout(c.dlg.Context(), c.b.cfg.TransferTimeout)
	defer cancel()
	stop := context.AfterFunc(c.b.ctx, cancel)
	defer stop()
	o, res, err := c.b.dial(ctx, dialRequest{parent: c, to: p.to, headers: hs, referredBy: p.referredBy})
	var failed errDialFailed
	switch {
	case errors.As(err, &failed):
		c.finishTransfer(at, session.TransferFailed, reasonCode(res.StatusCode), res.StatusCode, res.Reason)
		return
	case err != nil && c.dlg.Context().Err() != nil:
		c.finishTransfer(at, session.TransferFailed, session.ReasonCallEnded, 0, "the call ended before the transfer's outcome was known")
		return
	case err != nil && ctx.Err() != nil:
		c.finishTransfer(at, session.TransferFailed, session.ReasonNoAnswer, 0, fmt.Sprintf("no answer within %s", c.b.cfg.TransferTimeout))
		return
	case err != nil:
		rc := session.ReasonError
		if errors.As(err, new(targetDownError)) {
			rc = session.ReasonTargetDown
		}
		c.finishTransfer(at, session.TransferFailed, rc, 0, err.Error())
		return
	}
	at.t.LegCallID = o.id
	// Offer the target's media to the caller.
	reinvite := sip.NewRequest(sip.INVITE, c.remoteTarget())
	if body := res.Body(); len(body) > 0 {
		reinvite.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		reinvite.SetBody(body)
	}
	rctx, rcancel := context.WithTimeout(c.b.ctx, sip.Timer_B)
	rres, err := c.dlg.Do(rctx, reinvite)
	rcancel()
	if err != nil || !rres.IsSuccess() {
		reason := "the caller's side refused the new media"
		if err != nil {
			reason = "re-INVITE to the caller failed: " + err.Error()
		}
		o.hangup(EndError)
		c.finishTransfer(at, session.TransferFailed, session.ReasonError, 0, reason)
		return
	}
	ack := sip.NewRequest(sip.ACK, c.remoteTarget())
	if err := c.dlg.WriteRequest(ack); err != nil {
		c.b.log.Warn("sip ack of re-INVITE failed", "call_id", c.id, "error", err)
	}
	c.mu.Lock()
	old := c.peer // a bridged call: the new leg replaces the far end
	c.peer = o
	c.sdp = nil
	c.peerSDP, c.legSDP, c.callerOrigin = res.Body(), c.dlg.InviteRequest.Body(), sipcodec.SDPOrigin(rres.Body())
	referrer := c.referral != nil && c.referral.leg == old
	c.mu.Unlock()
	c.finishTransfer(at, session.TransferAnswered, "", res.StatusCode, res.Reason)
	if old != nil && !referrer { // a far end that referred hears the outcome first (referral.sender)
		old.hangup(EndTransferred)
	}
}

// reasonCode classifies the SIP status of a failed transfer as Live Hub does.
func reasonCode(code int) string {
	switch code {
	case 486, 600:
		return session.ReasonBusy
	case 603, 607, 608:
		return session.ReasonDeclined
	case 408, 480, 487:
		return session.ReasonNoAnswer
	default:
		return session.ReasonError
	}
}

// finishTransfer records the outcome and frees the call for another transfer (after a
// failure; after a success the call is about to be hung up, or is bridged).
func (c *inCall) finishTransfer(at *activeTransfer, status session.TransferStatus, rc string, code int, reason string) {
	at.t.Status, at.t.ReasonCode, at.t.SIPCode, at.t.Reason = status, rc, code, reason
	at.t.EndedAt = time.Now().UTC()
	if at.t.Mode == session.TransferRefer && status != session.TransferFailed {
		// The caller has moved on, whoever hangs up first now.
		c.endsAs(EndTransferred)
	}
	// Free the call first: a client that sees the outcome (in the session,
	// on the event stream) may ask for the next transfer at once.
	if status != session.TransferAnswered || at.t.Mode == session.TransferInvite {
		c.clearTransfer(at)
	}
	c.record(at.t)
	outcome := string(status)
	if status == session.TransferFailed && rc != "" {
		outcome = rc
	}
	c.b.cfg.Observer.Transfer(string(at.t.Mode), outcome)
	c.b.log.Info("sip transfer finished", "call_id", c.id, "transfer", at.t.ID, "status", string(status), "reason_code", rc, "sip_code", code)
	if at.report != nil {
		at.report(status, rc) // after clearTransfer: the flow may start another transfer at once
	}
	c.endReferral(referralOutcome(status, rc, code, reason), true) // a REFER waiting for this outcome
}

func (c *inCall) clearTransfer(at *activeTransfer) {
	c.mu.Lock()
	if c.transfer == at {
		c.transfer = nil
	}
	c.mu.Unlock()
}

// record writes a transfer's state into the call's session: sip.transfer.* for the latest
// one (flows route on sip.transfer.status) and the whole list in sip.transfers. A final
// outcome is published as a transfer.status event.
func (c *inCall) record(t session.Transfer) {
	c.mu.Lock()
	replaced := false
	for i := range c.transfers {
		if c.transfers[i].ID == t.ID {
			c.transfers[i], replaced = t, true
		}
	}
	if !replaced {
		c.transfers = append(c.transfers, t)
		if len(c.transfers) > maxTransfersKept {
			c.transfers = c.transfers[len(c.transfers)-maxTransfersKept:]
		}
	}
	list, _ := json.Marshal(c.transfers)
	c.mu.Unlock()
	null := json.RawMessage("null")
	str := func(s string) json.RawMessage {
		if s == "" {
			return null
		}
		b, _ := json.Marshal(s)
		return b
	}
	code := null
	if t.SIPCode != 0 {
		code = json.RawMessage(strconv.Itoa(t.SIPCode))
	}
	vars := map[string]json.RawMessage{
		session.VarTransferID:         str(t.ID),
		session.VarTransferStatus:     str(string(t.Status)),
		session.VarTransferTarget:     str(t.Target),
		session.VarTransferReasonCode: str(t.ReasonCode),
		session.VarTransferSIPCode:    code,
		session.VarTransferReason:     str(t.Reason),
		session.VarTransfers:          list,
	}
	opts := session.WriteOptions{Actor: Actor, Origin: session.OriginSIP}
	if t.Status.Final() {
		opts.Event = session.EventTransferStatus
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, _, err := c.b.svc.Merge(ctx, c.id, vars, opts); err != nil {
		c.b.log.Error("sip record transfer failed", "call_id", c.id, "transfer", t.ID, "error", err)
	}
}

// onNotify takes a NOTIFY of the caller's dialog: the progress of a REFER (RFC 3515).
func (c *inCall) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	ev := req.GetHeader("Event")
	if ev == nil {
		ev = req.GetHeader("o")
	}
	if ev == nil || !strings.EqualFold(strings.TrimSpace(strings.SplitN(ev.Value(), ";", 2)[0]), "refer") {
		c.b.respond(req, tx, 489, "Bad Event", sip.NewHeader("Allow-Events", "refer"))
		return
	}
	f := sipfrag{}
	if h := req.GetHeader("Subscription-State"); h != nil {
		f.terminated = strings.HasPrefix(strings.ToLower(strings.TrimSpace(h.Value())), "terminated")
	}
	if h := req.ContentType(); h != nil && strings.HasPrefix(strings.ToLower(strings.TrimSpace(h.Value())), "message/sipfrag") {
		f.code, f.reason = parseSipfrag(req.Body())
	}
	// Queued before it is answered: what the transferee sends after the answer (its BYE)
	// comes after it.
	c.mu.Lock()
	at := c.transfer
	c.mu.Unlock()
	if at != nil {
		select {
		case at.notify <- f:
		default:
			c.b.log.Warn("sip notify dropped: too many pending", "call_id", c.id)
		}
	}
	c.b.respond(req, tx, 200, "OK")
}

// parseSipfrag reads the status line of a message/sipfrag body ("SIP/2.0 200 OK").
func parseSipfrag(body []byte) (int, string) {
	line, _, _ := strings.Cut(string(body), "\n")
	line = strings.TrimSpace(line)
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(strings.ToUpper(proto), "SIP/") {
		return 0, ""
	}
	codeText, reason, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeText)
	if err != nil || code < 100 || code > 699 {
		return 0, ""
	}
	if sipcodec.CheckText(reason) != nil {
		reason = ""
	}
	return code, reason
}
