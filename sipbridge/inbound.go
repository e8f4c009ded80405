package sipbridge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// storeTimeout bounds one session write made while a SIP transaction waits for it.
const storeTimeout = 5 * time.Second

// byeTimeout bounds the wait for the answer to callctx's BYE; the call is over for callctx
// either way, and a peer that is gone must not hold a shutdown for Timer B (32 s).
const byeTimeout = 8 * time.Second

// Reasons a call ends with (Call.EndReason).
const (
	EndHangup       = "hangup"        // the caller sent BYE
	EndCancel       = "cancel"        // the caller sent CANCEL before the call was answered
	EndRedirected   = "redirected"    // answered with 302; callctx is out of the call
	EndTransferred  = "transferred"   // a REFER transfer succeeded and callctx hung up
	EndCalleeHangup = "callee-hangup" // the bridged party sent BYE
	EndRejected     = "rejected"      // the bridged party refused the call
	EndNoAck        = "no-ack"        // the caller never acknowledged the 200 OK
	EndShutdown     = "shutdown"      // callctx stopped
	EndError        = "error"
)

// inCall is an inbound call the bridge holds: the caller's dialog (callctx is its UAS).
type inCall struct {
	b    *Bridge
	id   string                     // callctx call ID
	from string                     // the caller, as call.from
	flow string                     // the call's flow, "" when it has none
	dlg  *sipgo.DialogServerSession // its InviteRequest is the caller's INVITE
	sdp  []byte                     // what callctx answered (parked calls)

	mu        sync.Mutex
	endReason string
	confirmed bool            // the caller ACKed callctx's 200
	transfer  *activeTransfer // the transfer in progress, if any
	// running counts the transfers whose outcome is not recorded yet; once ending is set (the
	// call's end is about to be recorded) no transfer starts.
	running sync.WaitGroup
	ending  bool
	peer    *outLeg // the bridged leg, if any
	// For a bridged call (see reinvite.go): the far end's current SDP, which callctx gave
	// the caller; the SDP callctx gave the far end (the caller's); the origin line (o=) of
	// the caller's current SDP; and whether a re-INVITE is being relayed.
	peerSDP      []byte
	legSDP       []byte
	callerOrigin string
	reinviting   bool
	hungUp       bool      // callctx sent (or is sending) BYE
	referral     *referral // a REFER accepted whose final NOTIFY is pending
	driving      bool      // the bridge is performing the actions of the call's flow
	legs         []string  // calls placed for this one
	transfers    []session.Transfer

	done     chan struct{} // closed by finish
	doneOnce sync.Once
}

// allowed reports whether req's source may start a call (Config.Allow).
func (b *Bridge) allowed(req *sip.Request) bool {
	if len(b.cfg.Allow) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range b.cfg.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (b *Bridge) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if hasToTag(req) {
		b.onReinvite(req, tx)
		return
	}
	if !b.admit(req, tx) {
		return
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		b.respond(req, tx, 483, "Too Many Hops")
		return
	}
	if tags := requireTags(req); tags != "" {
		b.respond(req, tx, 420, "Bad Extension", sip.NewHeader("Unsupported", tags))
		return
	}
	if req.Contact() == nil || req.From() == nil || req.To() == nil {
		b.respond(req, tx, 400, "Bad Request (missing Contact, From or To)")
		return
	}
	switch req.Recipient.Scheme {
	case "sip", "sips", "tel":
	default:
		b.respond(req, tx, 416, "Unsupported URI Scheme")
		return
	}
	// RFC 3261 (§17.2.1) wants a provisional response when the final one may take more than
	// 200 ms; 100 Trying also stops the caller's INVITE retransmissions. A redirect or an
	// answer follows the session write at once, normally within milliseconds, so none is
	// sent for them: sipgo's server transaction sends 100 Trying itself when no response
	// went out within 200 ms. A flow or a bridged callee may take longer: they get it now.
	sipCallID := callIDOf(req)
	log := callLog{b.log, []any{"sip_call_id", sipCallID}}

	mapped := b.mapper.Map(requestHeaders(req))
	for _, s := range mapped.Skipped {
		log.Warn("sip header not mapped", "header", s.Source, "reason", s.Reason)
	}
	if mapped.UUIErr != nil {
		log.Warn("sip user-to-user kept raw", "variable", sipcodec.UUIRawVar, "error", mapped.UUIErr)
	}
	vars := b.mappedVariables(mapped, log)

	nc := session.NewCall{
		ID:   uuid.Must(uuid.NewV7()).String(),
		From: callerOf(req), To: userOf(req.Recipient), Direction: session.DirectionInbound,
		SIPCallID: sipCallID, Variables: vars,
	}
	// Known before it exists, so that an end over REST that comes before the dialog is
	// registered is not missed (see followEnds).
	b.expect(nc.ID)
	defer b.unexpect(nc.ID)
	call, sess, err := b.createCall(nc, statelessOf(tx) != nil)
	if session.ErrorCode(err) == session.CodeNotFound {
		log.Warn("sip call to a number nobody serves refused", "to", nc.To, "error", err)
		b.respond(req, tx, 404, "Not Found")
		return
	}
	if err != nil {
		code, reason := sipStatus(err)
		if code == 503 {
			// The store takes no writes (full, unreachable): an SBC fails over to another node.
			b.storeLog.Failed(err, "sip_call_id", sipCallID)
			b.respond(req, tx, code, reason, sip.NewHeader("Retry-After", retryAfterStore))
			return
		}
		log.Error("sip create call failed", "error", err)
		b.respond(req, tx, code, reason)
		return
	}
	log = log.with("call_id", call.ID)
	switch {
	case call.Flow != "":
		b.respond(req, tx, 100, "Trying")
		b.flowInvite(req, tx, call, sess, log)
	case b.cfg.Mode == ModeRedirect:
		b.redirect(req, tx, call, sess, log)
	case b.cfg.Mode == ModeBridge:
		b.respond(req, tx, 100, "Trying")
		b.bridgeInbound(req, tx, call, sess, log)
	default:
		b.answer(req, tx, call, log)
	}
}

// createCall creates an inbound call: through the flow engine, which routes it by the number
// dialled (the routing table, else sip.flow) and starts its flow, when there is one; a call
// that gets no flow takes the configured mode. A number the routing table does not serve is
// refused with CodeNotFound (404), unless KeepUnrouted.
func (b *Bridge) createCall(nc session.NewCall, stateless bool) (*session.Call, *session.Session, error) {
	ctx, cancel := context.WithTimeout(b.ctx, flowTimeout)
	defer cancel()
	o := flow.CallOptions{
		WriteOptions:   session.WriteOptions{Actor: Actor, Origin: session.OriginSIP},
		Fallback:       b.cfg.Flow,
		RefuseUnrouted: !b.cfg.KeepUnrouted,
	}
	if b.cfg.Mode == ModeRedirect {
		// callctx leaves the call with the 302: the call is recorded ended, in one write.
		o.EndUnrouted = EndRedirected
	}
	if b.cfg.Flows == nil || stateless {
		// Answered statelessly: it was found that no flow takes calls (see readFilter), and a
		// routing table published since does not apply to this one.
		nc.EndReason = o.EndUnrouted
		return b.svc.CreateCall(ctx, nc, o.WriteOptions)
	}
	return b.cfg.Flows.CreateCall(ctx, nc, o)
}

// mappedVariables turns what the mapper made of a request's headers into session variables:
// each value converted to its rule's type (one that does not convert is kept as text in
// sip.raw.<variable> and logged; one that was not UTF-8 was kept escaped, which is logged), leaving out (and logging) what the session's limits and
// rules would refuse, so that neither bad nor oversized context ever fails a call.
func (b *Bridge) mappedVariables(mapped sipcodec.Mapped, log logger) map[string]json.RawMessage {
	for _, h := range mapped.Escaped {
		log.Warn("sip header value is not UTF-8: kept percent-encoded", "header", h)
	}
	raw, unconverted := mapped.Values(b.svc.Limits().MaxValueBytes)
	for _, u := range unconverted {
		log.Warn("sip value kept as text: it does not convert to its type", "variable", u.Var, "type", string(u.Type), "kept_in", u.RawVar, "reason", u.Reason)
	}
	fit, left := b.svc.Limits().Fit(raw, session.OriginSIP)
	for _, f := range left {
		log.Warn("sip header not mapped", "variable", f.Name, "reason", f.Message)
	}
	return fit
}

// answer answers the call (callctx sends no media) and parks it until it is hung up or
// transferred away. It returns when the call has ended.
func (b *Bridge) answer(req *sip.Request, tx sip.ServerTransaction, call *session.Call, log logger) {
	c, err := b.newInCall(req, tx, call)
	if err != nil {
		b.failDialog(req, tx, call, err, log)
		return
	}
	defer b.forget(c)
	b.park(c, log, nil)
}

// park answers the pending INVITE of c (see parkSDP) and holds the call until it is
// hung up or transferred away; then (when the caller has acknowledged) it runs drive, if
// any, in the background. It returns when the call has ended, after recording its end.
func (b *Bridge) park(c *inCall, log logger, drive func()) {
	sdp, err := b.parkSDP(c.dlg.InviteRequest, nil)
	if err != nil {
		log.Warn("sip SDP offer refused", "error", err)
		c.setReason(EndError)
		if err := c.dlg.Respond(488, "Not Acceptable Here", nil, sdpWarning(b.host, err)); err != nil {
			log.Warn("sip respond failed", "code", 488, "error", err)
		}
		b.endCall(c.id, c.reason(), log)
		return
	}
	c.mu.Lock()
	c.sdp = sdp
	c.mu.Unlock()
	res := sip.NewSDPResponseFromRequest(c.dlg.InviteRequest, sdp)
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Server", b.cfg.UserAgent))
	if err := c.dlg.WriteResponse(res); err != nil && !hungUpAfterAck(c) {
		// No ACK within 64*T1, a CANCEL that won the race, or a transport failure.
		reason := EndNoAck
		if errors.Is(err, sip.ErrTransactionCanceled) || c.dlg.Context().Err() != nil && c.reason() == "" {
			reason = EndCancel
		}
		log.Warn("sip answer not confirmed", "error", err)
		c.setReason(reason)
		if reason == EndNoAck {
			c.hangup(EndNoAck)
			c.wait()
		}
		b.endCall(c.id, c.reason(), log)
		return
	}
	c.mu.Lock()
	c.confirmed = true
	c.mu.Unlock()
	if drive != nil {
		b.track(drive)
	}
	c.wait()
	c.awaitTransfer()
	b.endCall(c.id, c.reason(), log)
}

// hungUpAfterAck reports whether the caller's BYE ended the dialog before WriteResponse saw
// it confirmed: a caller that hangs up at once sends ACK and BYE back to back, callctx takes
// them on two goroutines, and sipgo then reports "No ACK received" for a call that was
// answered and hung up, whichever of the two it took first.
func hungUpAfterAck(c *inCall) bool {
	return c.reason() == EndHangup && ended(c.dlg)
}

// parkSDP returns the SDP of a parked call's 200 to req: the answer to req's offer (see
// sipcodec.AnswerSDP) or, when req has none, callctx's offer. prev is what callctx gave
// before in the dialog (nil for the INVITE), which a re-INVITE without an offer gets again.
// An offer that is not SDP is an error, to be answered 488.
func (b *Bridge) parkSDP(req *sip.Request, prev []byte) ([]byte, error) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	offer := sipcodec.SessionDescription(ct, req.Body())
	switch {
	case offer != nil:
		return sipcodec.AnswerSDP(offer, prev, b.host, rand.Int64N(1<<40))
	case prev != nil:
		return prev, nil
	}
	return sipcodec.OfferSDP(b.host, rand.Int64N(1<<40)), nil
}

// sdpWarning is the Warning header (RFC 3261 §20.43) of a 488 that refuses an SDP offer.
func sdpWarning(host string, err error) sip.Header {
	text := strings.Map(func(r rune) rune {
		if r < ' ' || r == '"' || r == '\\' || r == 0x7f {
			return ' '
		}
		return r
	}, err.Error())
	return sip.NewHeader("Warning", `399 `+host+` "`+text+`"`)
}

// awaitTransfer lets the transfers of an ended call record their outcome before its end is
// recorded, so that a transfer.status event comes before call.ended. The session accepts a
// transfer's outcome after the end too (see session.Service.Merge); this keeps the order.
func (c *inCall) awaitTransfer() {
	c.mu.Lock()
	c.ending = true
	c.mu.Unlock()
	recorded := make(chan struct{})
	go func() {
		c.running.Wait()
		close(recorded)
	}()
	select {
	case <-recorded:
	case <-time.After(notifyGrace + storeTimeout):
	}
}

// failDialog ends a call whose dialog could not be set up: most often the caller cancelled
// while its session was being written (sipgo has answered the CANCEL and the INVITE then).
func (b *Bridge) failDialog(req *sip.Request, tx sip.ServerTransaction, call *session.Call, err error, log logger) {
	select {
	case <-tx.Done():
		b.endCall(call.ID, EndCancel, log)
		return
	default:
	}
	log.Error("sip dialog", "error", err)
	b.respond(req, tx, 500, "Server Internal Error")
	b.endCall(call.ID, EndError, log)
}

type logger interface {
	Warn(string, ...any)
	Error(string, ...any)
	Info(string, ...any)
}

// callLog is a logger with a call's attributes, added when a line is
// written: slog.Logger.With copies the handler, on every call whether it
// logs or not.
type callLog struct {
	l     *slog.Logger
	attrs []any
}

// with returns the logger with more attributes.
func (c callLog) with(kv ...any) callLog {
	return callLog{c.l, append(c.attrs[:len(c.attrs):len(c.attrs)], kv...)}
}

func (c callLog) Warn(msg string, args ...any)  { c.l.Warn(msg, c.args(args)...) }
func (c callLog) Error(msg string, args ...any) { c.l.Error(msg, c.args(args)...) }
func (c callLog) Info(msg string, args ...any)  { c.l.Info(msg, c.args(args)...) }

func (c callLog) args(more []any) []any {
	return append(c.attrs[:len(c.attrs):len(c.attrs)], more...)
}

func (b *Bridge) newInCall(req *sip.Request, tx sip.ServerTransaction, call *session.Call) (*inCall, error) {
	dlg, err := b.dialogUA(req).ReadInvite(req, tx)
	if err != nil {
		return nil, err
	}
	c := &inCall{b: b, id: call.ID, from: call.From, flow: call.Flow, dlg: dlg, done: make(chan struct{})}
	b.mu.Lock()
	b.calls[c.id] = c
	b.inbound[dlg.ID] = c
	reason, endedEarly := b.expected[c.id]
	delete(b.expected, c.id)
	b.mu.Unlock()
	if endedEarly && reason != "" {
		c.hangup(reason)
	}
	return c, nil
}

// duaFor returns the dialog user agent (and so the Contact) of the transport req came in on.
func (b *Bridge) duaFor(req *sip.Request) *sipgo.DialogUA {
	if d := b.dua[transportOf(req)]; d != nil {
		return d
	}
	return b.dua["udp"]
}

func (b *Bridge) forget(c *inCall) {
	b.mu.Lock()
	delete(b.calls, c.id)
	delete(b.inbound, c.dlg.ID)
	b.mu.Unlock()
	c.dlg.Close()
}

// endCall records the end of a call; it runs after the SIP side is done, with its own
// deadline, so that a slow store never holds a SIP transaction.
func (b *Bridge) endCall(id, reason string, log logger) {
	if reason == "" {
		reason = EndHangup
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, err := b.svc.EndCall(ctx, id, reason, Actor); err != nil {
		log.Error("sip end call failed", "reason", reason, "error", err)
	}
}

func (c *inCall) setReason(r string) {
	c.mu.Lock()
	if c.endReason == "" {
		c.endReason = r
	}
	c.mu.Unlock()
}

// hangingUp reports whether callctx is hanging up the call (it sent or is sending BYE).
func (c *inCall) hangingUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hungUp
}

// endsAs sets the reason the call ends with, whatever was set before.
func (c *inCall) endsAs(r string) {
	c.mu.Lock()
	c.endReason = r
	c.mu.Unlock()
}

func (c *inCall) reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endReason
}

// onBye ends the call at the caller's request and, for a bridged call, hangs up the other
// leg too.
func (c *inCall) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c.setReason(EndHangup)
	if err := c.dlg.ReadBye(req, tx); err != nil {
		c.b.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.mu.Lock()
	peer := c.peer
	c.mu.Unlock()
	if peer != nil {
		peer.hangup(EndHangup)
	}
}

// hangup sends BYE to the caller (once) with reason as the call's end reason. It does not
// wait for the call's handler to finish.
func (c *inCall) hangup(reason string) {
	c.setReason(reason)
	c.mu.Lock()
	if c.hungUp {
		c.mu.Unlock()
		return
	}
	c.hungUp = true
	peer := c.peer
	c.mu.Unlock()
	if peer != nil {
		peer.hangup(reason)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		defer cancel()
		if c.dlg.LoadState() < sip.DialogStateEstablished {
			// Not answered yet (a bridged call still ringing): whoever waits for the answer
			// sees finish and rejects the INVITE.
			c.finish()
			return
		}
		if err := c.b.bye(ctx, c.dlg); err != nil {
			c.b.log.Warn("sip bye failed", "call_id", c.id, "error", err)
		}
		// Whatever the peer said (or if it said nothing), the call is over for callctx.
		c.finish()
	}()
}

// finish releases whoever waits for the call to end, even when the dialog never reached
// its ended state (a BYE nobody answered).
func (c *inCall) finish() { c.doneOnce.Do(func() { close(c.done) }) }

// wait blocks until the caller's dialog has ended or callctx gave up on it.
func (c *inCall) wait() {
	select {
	case <-c.dlg.Context().Done():
	case <-c.done:
	}
}

// requireTags returns the option tags of Require headers, which callctx supports none of.
func requireTags(req *sip.Request) string {
	var tags []string
	for _, h := range req.GetHeaders("Require") {
		for _, t := range strings.Split(h.Value(), ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return strings.Join(tags, ", ")
}

// requestHeaders lists a request's headers as name/value pairs for the Mapper.
func requestHeaders(req *sip.Request) []sipcodec.Header {
	hs := req.Headers()
	out := make([]sipcodec.Header, 0, len(hs))
	for _, h := range hs {
		out = append(out, sipcodec.Header{Name: h.Name(), Value: h.Value()})
	}
	return out
}

// callerOf is who called: the first P-Asserted-Identity when present, else the From URI.
func callerOf(req *sip.Request) string {
	if h := req.GetHeader("P-Asserted-Identity"); h != nil {
		first, _, _ := strings.Cut(h.Value(), ",")
		var u sip.Uri
		params := sip.NewParams()
		if _, err := sip.ParseAddressValue(strings.TrimSpace(first), &u, &params); err == nil {
			if s := userOf(u); s != "" {
				return s
			}
		}
	}
	if f := req.From(); f != nil {
		return userOf(f.Address)
	}
	return ""
}

// expect notes a call ID the bridge is about to create.
func (b *Bridge) expect(id string) {
	b.mu.Lock()
	b.expected[id] = ""
	b.mu.Unlock()
}

func (b *Bridge) unexpect(id string) {
	b.mu.Lock()
	delete(b.expected, id)
	b.mu.Unlock()
}

// followEnds hangs up the calls the bridge holds when someone else ends them (POST
// /v1/calls/{id}/end, a flow): callctx must not keep a SIP call whose session has ended. One
// subscription serves every call; if it falls behind and is dropped, the bridge subscribes
// again and checks the calls it holds.
func (b *Bridge) followEnds() {
	for first := true; ; first = false {
		// Calls starting and ending only; of other nodes' events, call.ended only.
		sub := b.svc.SubscribeCalls()
		if !first {
			b.checkHeld()
		}
		for open := true; open; {
			select {
			case <-b.ctx.Done():
				sub.Close()
				return
			case e, ok := <-sub.Events():
				if !ok {
					open = false
					break
				}
				if e.Type != session.EventCallEnded || e.Actor == Actor || e.Call == nil {
					continue
				}
				reason := e.Call.EndReason
				b.mu.Lock()
				c := b.calls[e.CallID]
				if _, ok := b.expected[e.CallID]; ok && c == nil {
					b.expected[e.CallID] = reason
				}
				b.mu.Unlock()
				if c != nil {
					c.hangup(reason)
				}
			}
		}
		b.log.Warn("sip end-of-call feed fell behind; checking held calls")
	}
}

// checkHeld hangs up every held call whose session has ended.
func (b *Bridge) checkHeld() {
	b.mu.Lock()
	calls := make([]*inCall, 0, len(b.calls))
	for _, c := range b.calls {
		calls = append(calls, c)
	}
	b.mu.Unlock()
	for _, c := range calls {
		if call, err := b.svc.Call(b.ctx, c.id); err == nil && call.State == session.StateEnded {
			c.hangup(call.EndReason)
		}
	}
}
