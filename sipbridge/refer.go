package sipbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// An inbound REFER (RFC 3515) asks callctx to move a call it holds elsewhere: an AI agent the
// call was bridged to hands the caller back with a summary in the Refer-To URI headers (ACS
// direct routing), or the caller's side transfers the call. The bridge accepts it on a call
// it holds (the caller's dialog, or the far end of a bridged leg), records the REFER in the
// session in one write (event call.referred), and then either carries the transfer out or
// leaves it to the call's flow; the referrer hears the progress in NOTIFYs of
// message/sipfrag: 100 Trying, then the final status.

// What the bridge does with a REFER it accepted (Config.Refer.Action).
const (
	ReferTransfer = "transfer" // carry out the transfer to the Refer-To target
	ReferFlow     = "flow"     // let the call's flow decide (a call without a flow: transfer)
)

// EndTransferFailed ends a bridged call whose far end handed it back by REFER and left, when
// the transfer it asked for failed: the caller has no one left to talk to.
const EndTransferFailed = "transfer-failed"

// ReferConfig says what the bridge does with a REFER it accepts. Zero values take defaults.
type ReferConfig struct {
	// Action is ReferTransfer (the default) or ReferFlow.
	Action string
	// Mode is how a REFER from the far end of a bridged call is carried out: TransferInvite
	// (the default: callctx calls the target and connects the caller to it, replacing the
	// far end) or TransferRefer (callctx passes the REFER on to the caller's side). A REFER
	// from the caller's side is always carried out by invite: callctx is its transferee.
	Mode session.TransferMode
}

func (r *ReferConfig) prepare() error {
	if r.Action == "" {
		r.Action = ReferTransfer
	}
	if r.Mode == "" {
		r.Mode = session.TransferInvite
	}
	switch {
	case r.Action != ReferTransfer && r.Action != ReferFlow:
		return fmt.Errorf("sip refer action %q: use %s or %s", r.Action, ReferTransfer, ReferFlow)
	case r.Mode != session.TransferInvite && r.Mode != session.TransferRefer:
		return fmt.Errorf("sip refer mode %q: use invite or refer", r.Mode)
	}
	return nil
}

// referral is a REFER the bridge accepted whose final NOTIFY is still to be sent: it waits
// for the outcome of the next transfer of the call.
type referral struct {
	c     *inCall
	leg   *outLeg     // the leg whose far end sent it; nil when the caller's side did
	event string      // the Event header of its NOTIFYs: refer;id=<the REFER's CSeq>
	frags chan string // status lines to send, the final one last
	once  sync.Once   // the final is sent once
}

// refer is a parsed REFER.
type refer struct {
	targetText string            // the Refer-To URI without its headers, checked
	uriHeaders []sipcodec.Header // the Refer-To URI's headers, decoded
	skipped    []string          // URI header parts that could not be decoded
	referredBy string            // the Referred-By URI, or ""
}

// onRefer takes a REFER in the dialog of a call the bridge holds.
func (b *Bridge) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	c := b.inboundOf(req)
	var leg *outLeg
	if c == nil {
		if leg = b.outboundOf(req); leg == nil || leg.parent == nil {
			b.respond(req, tx, 481, "Call/Transaction Does Not Exist")
			return
		}
		c = leg.parent
	}
	log := b.log.With("call_id", c.id, "sip_call_id", callIDOf(req))
	if !b.allowed(req) && !sameSource(req, c.dlg.InviteRequest) {
		log.Warn("sip REFER from a source not in sip.allow refused", "source", req.Source())
		b.respond(req, tx, 403, "Forbidden")
		return
	}
	dlg := &c.dlg.Dialog
	if leg != nil {
		dlg = &leg.dlg.Dialog
	}
	if err := dlg.ReadRequest(req, tx); err != nil {
		b.respond(req, tx, 500, "Server Internal Error (CSeq out of order)")
		return
	}
	ref, code, reason := b.parseRefer(req)
	if code != 0 {
		log.Warn("sip REFER refused", "code", code, "reason", reason)
		b.respond(req, tx, code, reason)
		return
	}
	r := &referral{c: c, leg: leg, event: fmt.Sprintf("refer;id=%d", req.CSeq().SeqNo), frags: make(chan string, 2)}
	c.mu.Lock()
	switch {
	case c.hungUp:
		c.mu.Unlock()
		b.respond(req, tx, 481, "Call/Transaction Does Not Exist (being hung up)")
		return
	case !c.confirmed:
		c.mu.Unlock()
		b.respond(req, tx, 491, "Request Pending (the call is not answered yet)")
		return
	case c.transfer != nil || c.referral != nil:
		c.mu.Unlock()
		b.respond(req, tx, 491, "Request Pending (a transfer is in progress)")
		return
	case leg != nil && c.peer != leg:
		c.mu.Unlock()
		b.respond(req, tx, 481, "Call/Transaction Does Not Exist (the leg is no longer bridged)")
		return
	}
	c.referral = r
	c.mu.Unlock()
	if leg != nil {
		leg.setReferred()
	}

	if err := b.recordRefer(c, leg, ref, req, log); err != nil {
		c.dropReferral(r)
		code, reason := sipStatus(err)
		if session.ErrorCode(err) == session.CodeConflict { // the call has ended
			code, reason = 481, "Call/Transaction Does Not Exist"
		}
		b.respond(req, tx, code, reason)
		return
	}
	b.respond(req, tx, 202, "Accepted")
	b.track(r.sender)
	r.frags <- "SIP/2.0 100 Trying"
	log.Info("sip REFER accepted", "target", ref.targetText, "from", referLeg(leg), "action", b.referAction(c))
	b.track(r.expire)
	if b.referAction(c) == ReferFlow {
		b.kickFlow(c)
		return
	}
	b.referTransfer(c, leg, ref, log)
}

// referAction is what the bridge does with a REFER on c: the configured action, except that a
// call without a flow cannot leave it to its flow.
func (b *Bridge) referAction(c *inCall) string {
	if b.cfg.Refer.Action == ReferFlow && c.flow != "" && b.cfg.Flows != nil {
		return ReferFlow
	}
	return ReferTransfer
}

func referLeg(leg *outLeg) string {
	if leg != nil {
		return "callee"
	}
	return "caller"
}

// parseRefer reads the Refer-To (exactly one, a sip:, sips: or tel: URI, its headers
// decoded) and Referred-By of a REFER. It returns a SIP status and reason when the REFER
// cannot be taken.
func (b *Bridge) parseRefer(req *sip.Request) (refer, int, string) {
	var ref refer
	hs := req.GetHeaders("Refer-To")
	if len(hs) == 0 {
		hs = req.GetHeaders("r")
	}
	if len(hs) != 1 {
		return ref, 400, "Bad Request (a REFER needs exactly one Refer-To)"
	}
	addr, query, err := splitReferTo(hs[0].Value())
	if err != nil {
		return ref, 400, "Bad Request (Refer-To: " + err.Error() + ")"
	}
	if _, err = parseTarget(addr, b.cfg.SBC, true); err != nil {
		if strings.Contains(err.Error(), "scheme") {
			return ref, 416, "Unsupported URI Scheme"
		}
		return ref, 400, "Bad Request (Refer-To: " + err.Error() + ")"
	}
	ref.targetText = addr
	ref.uriHeaders, ref.skipped = referHeaders(query)
	for _, h := range ref.uriHeaders {
		if strings.EqualFold(h.Name, "Replaces") {
			return ref, 501, "Not Implemented (attended transfer with Replaces)"
		}
	}
	if h := req.GetHeader("Referred-By"); h != nil {
		if rb, _, err := splitReferTo(h.Value()); err == nil && sipcodec.CheckText(rb) == nil {
			ref.referredBy = rb
		}
	} else if h := req.GetHeader("b"); h != nil {
		if rb, _, err := splitReferTo(h.Value()); err == nil && sipcodec.CheckText(rb) == nil {
			ref.referredBy = rb
		}
	}
	return ref, 0, ""
}

// referHeaders decodes the header part of a Refer-To URI. The headers are taken one by one:
// one that cannot be decoded is returned in skipped; one that no request may carry (a Via, a
// control character) is for the caller to leave out. Neither is a reason to refuse the
// handover.
func referHeaders(query string) (hs []sipcodec.Header, skipped []string) {
	for pair := range strings.SplitSeq(query, "&") {
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err1 := sipcodec.UnescapeURIHeader(rawName)
		value, err2 := sipcodec.UnescapeURIHeader(rawValue)
		switch {
		case pair == "":
		case err1 != nil || err2 != nil || name == "":
			skipped = append(skipped, pair)
		default:
			hs = append(hs, sipcodec.Header{Name: name, Value: value})
		}
	}
	return hs, skipped
}

// splitReferTo splits a Refer-To or Referred-By value (name-addr or addr-spec, with
// parameters) into the URI without headers and the raw header part after '?'.
func splitReferTo(v string) (uri, query string, err error) {
	v = strings.TrimSpace(v)
	if err := sipcodec.CheckText(v); err != nil {
		return "", "", err
	}
	if i := strings.IndexByte(v, '<'); i >= 0 {
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return "", "", fmt.Errorf("an unclosed <")
		}
		v = v[i+1 : i+j]
	} else if i := strings.IndexByte(v, ';'); i >= 0 && !strings.Contains(v[:i], "?") {
		v = v[:i] // addr-spec: what follows ';' are header parameters
	}
	uri, query, _ = strings.Cut(v, "?")
	if uri == "" {
		return "", "", fmt.Errorf("no URI")
	}
	return uri, query, nil
}

// recordRefer writes the REFER into the session in one write: sip.refer.target,
// sip.refer.referredBy, sip.refer.leg and the context it carried (the Refer-To URI's headers
// and the REFER's own, mapped as an INVITE's are, under sip.refer. by default), removing what
// an earlier REFER left there. The write is published as call.referred.
func (b *Bridge) recordRefer(c *inCall, leg *outLeg, ref refer, req *sip.Request, log logger) error {
	for _, part := range ref.skipped {
		log.Warn("sip Refer-To header not decoded", "part", part)
	}
	hs := append(requestHeaders(req), ref.uriHeaders...)
	mapped := b.mapper.MapRefer(hs)
	for _, s := range mapped.Skipped {
		log.Warn("sip REFER header not mapped", "header", s.Source, "reason", s.Reason)
	}
	if mapped.UUIErr != nil {
		log.Warn("sip REFER user-to-user kept raw", "error", mapped.UUIErr)
	}
	vars := b.mappedVariables(mapped, log)
	str := func(s string) json.RawMessage { v, _ := json.Marshal(s); return v }
	vars[session.VarReferTarget] = str(ref.targetText)
	vars[session.VarReferLeg] = str(referLeg(leg))
	if ref.referredBy != "" {
		vars[session.VarReferReferredBy] = str(ref.referredBy)
	}
	ctx, cancel := context.WithTimeout(b.ctx, storeTimeout)
	defer cancel()
	if sess, err := b.svc.Session(ctx, c.id); err == nil {
		for name := range sess.Variables {
			if _, now := vars[name]; !now && strings.HasPrefix(name, session.VarReferPrefix) {
				vars[name] = json.RawMessage("null") // an earlier REFER's
			}
		}
	}
	_, _, err := b.svc.Merge(ctx, c.id, vars, session.WriteOptions{
		Actor: Actor, Origin: session.OriginSIP, Event: session.EventCallReferred,
		Fires: []session.EventType{session.EventSessionUpdated},
	})
	if err != nil {
		log.Error("sip record REFER failed", "error", err)
	}
	return err
}

// referTransfer carries out the transfer a REFER asked for: to its target, with the Refer-To
// URI's headers on the new request (those that may travel; the others are logged and left
// out) besides the configured context, and its Referred-By.
func (b *Bridge) referTransfer(c *inCall, leg *outLeg, ref refer, log logger) {
	mode := session.TransferInvite
	if leg != nil && b.cfg.Refer.Mode == session.TransferRefer {
		mode = session.TransferRefer
	}
	req := session.TransferRequest{Target: ref.targetText, Mode: mode, ReferredBy: ref.referredBy, Actor: Actor,
		PreserveTelURI: mode == session.TransferRefer}
	for _, h := range ref.uriHeaders {
		if errs := checkExplicit(c.id, []sipcodec.Header{h}); len(errs) > 0 {
			log.Warn("sip Refer-To header not carried on", "header", h.Name, "reason", errs.Error())
			continue
		}
		req.Headers = append(req.Headers, session.TransferHeader{Name: h.Name, Value: h.Value})
	}
	ctx, cancel := context.WithTimeout(b.ctx, storeTimeout)
	defer cancel()
	if _, err := b.transfer(ctx, c.id, req, nil); err != nil {
		log.Warn("sip REFER transfer refused", "error", err)
		code, reason := sipStatus(err)
		c.endReferral(fmt.Sprintf("SIP/2.0 %d %s", code, reason), true)
	}
}

// kickFlow lets the call's flow decide about a REFER: the REFER's variables are in the
// session; unless the bridge drives the flow already (a switch waiting for them), it asks the
// flow for its next action and performs it. The referral's final NOTIFY follows the next
// transfer the call makes.
func (b *Bridge) kickFlow(c *inCall) {
	b.drive(c, func() (*flow.Run, error) { return b.flowNextHeld(c, nil) })
}

// sender sends the referral's NOTIFYs in order, until the final one.
func (r *referral) sender() {
	for frag := range r.frags {
		final := !strings.HasPrefix(frag, "SIP/2.0 1")
		r.notify(frag, final)
		if final {
			if r.leg != nil && strings.HasPrefix(frag, "SIP/2.0 2") {
				// The far end handed the call over: it hangs up itself, or callctx does after
				// the grace period Live Hub gives a bot.
				r.leg.hangupAfter(session.DefaultHangupAfter, EndTransferred)
			}
			return
		}
	}
}

// notify sends one NOTIFY in the REFER's dialog.
func (r *referral) notify(frag string, final bool) {
	b := r.c.b
	var to sip.Uri
	var do func(context.Context, *sip.Request) (*sip.Response, error)
	var dlgCtx context.Context
	if r.leg != nil {
		to, do, dlgCtx = r.leg.remoteTarget(), r.leg.dlg.Do, r.leg.dlg.Context()
	} else {
		to, do, dlgCtx = r.c.remoteTarget(), r.c.dlg.Do, r.c.dlg.Context()
	}
	if dlgCtx.Err() != nil {
		return // the referrer's dialog has ended: nobody to tell
	}
	req := sip.NewRequest(sip.NOTIFY, to)
	req.AppendHeader(sip.NewHeader("Event", r.event))
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.AppendHeader(sip.NewHeader("User-Agent", b.cfg.UserAgent))
	req.SetBody([]byte(frag + "\r\n"))
	ctx, cancel := context.WithTimeout(b.ctx, storeTimeout)
	defer cancel()
	res, err := do(ctx, req)
	code := 0
	if res != nil {
		code = res.StatusCode
	}
	b.cfg.Observer.SIPRequest(false, string(sip.NOTIFY), code)
	if err != nil || code >= 300 {
		b.log.Warn("sip NOTIFY of a REFER not acknowledged", "call_id", r.c.id, "sipfrag", frag, "code", code, "error", err)
	}
}

// expire declines the referral when no transfer has started within the transfer timeout (a
// flow that decided not to transfer), and forgets it when the call ends.
func (r *referral) expire() {
	c := r.c
	t := time.NewTimer(c.b.cfg.TransferTimeout)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.mu.Lock()
			pending, busy := c.referral == r, c.transfer != nil
			c.mu.Unlock()
			if !pending {
				return
			}
			if busy { // the transfer in progress settles it
				t.Reset(c.b.cfg.TransferTimeout)
				continue
			}
			c.endReferral("SIP/2.0 603 Decline", true)
			return
		case <-c.done:
		case <-c.dlg.Context().Done():
		case <-c.b.ctx.Done():
		}
		c.endReferral("", false) // the call is over: the dialog carries no NOTIFY any more
		return
	}
}

// endReferral ends the call's pending referral, if any, sending frag as its final NOTIFY
// when send is set. A far end that handed the call back and left while the transfer
// failed leaves the caller alone: callctx hangs up.
func (c *inCall) endReferral(frag string, send bool) {
	c.mu.Lock()
	r := c.referral
	c.referral = nil
	abandoned := r != nil && r.leg != nil && c.peer == nil && !strings.HasPrefix(frag, "SIP/2.0 2")
	c.mu.Unlock()
	if r == nil {
		return
	}
	r.once.Do(func() {
		if send {
			r.frags <- frag
		}
		close(r.frags)
	})
	if abandoned && send {
		c.hangup(EndTransferFailed)
	}
}

// dropReferral forgets a referral that was never accepted.
func (c *inCall) dropReferral(r *referral) {
	c.mu.Lock()
	if c.referral == r {
		c.referral = nil
	}
	c.mu.Unlock()
	if r.leg != nil {
		r.leg.clearReferred()
	}
}

// referralOutcome turns a transfer's outcome into the status line of the final NOTIFY.
func referralOutcome(status session.TransferStatus, rc string, code int, reason string) string {
	if status == session.TransferAnswered || status == session.TransferAccepted {
		return "SIP/2.0 200 OK"
	}
	if code >= 300 && code <= 699 {
		if sipcodec.CheckText(reason) != nil || reason == "" {
			reason = statusText(code)
		}
		return fmt.Sprintf("SIP/2.0 %d %s", code, reason)
	}
	switch rc {
	case session.ReasonNoAnswer:
		code = 408
	case session.ReasonBusy:
		code = 486
	case session.ReasonDeclined:
		code = 603
	default:
		code = 503
	}
	return fmt.Sprintf("SIP/2.0 %d %s", code, statusText(code))
}

// statusText is the reason phrase of a SIP status.
func statusText(code int) string {
	switch code {
	case 408:
		return "Request Timeout"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 503:
		return "Service Unavailable"
	case 603:
		return "Decline"
	}
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "Failed"
}
