package sipbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// udpLimit is the size above which sipgo refuses to send a message over UDP (its MTU check
// is 1500-200 bytes). viaReserve is room for the Via header the client adds after we measure.
const (
	udpLimit   = 1300
	viaReserve = 160
)

// outLeg is a call the bridge placed (callctx is its UAC): the target of a bridged call or of
// an invite-mode transfer. It is recorded as a call whose ParentID is the inbound call.
type outLeg struct {
	b      *Bridge
	id     string // callctx call ID of the leg
	parent *inCall
	dlg    *sipgo.DialogClientSession

	mu        sync.Mutex
	endReason string
	hungUp    bool
	referred  bool // its far end handed the call back by REFER: its BYE no longer ends the call
	done      chan struct{}
	doneOnce  sync.Once
}

func (o *outLeg) setReferred()   { o.mu.Lock(); o.referred = true; o.mu.Unlock() }
func (o *outLeg) clearReferred() { o.mu.Lock(); o.referred = false; o.mu.Unlock() }

// hangupAfter hangs the leg up once d has passed, unless it ends first.
func (o *outLeg) hangupAfter(d time.Duration, reason string) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		o.hangup(reason)
	case <-o.done:
	case <-o.dlg.Context().Done():
	case <-o.b.ctx.Done():
	}
}

func (o *outLeg) setReason(r string) {
	o.mu.Lock()
	if o.endReason == "" {
		o.endReason = r
	}
	o.mu.Unlock()
}

func (o *outLeg) finish() { o.doneOnce.Do(func() { close(o.done) }) }

// onBye ends the leg at the far end's request and hangs up the caller too.
func (o *outLeg) onBye(req *sip.Request, tx sip.ServerTransaction) {
	o.setReason(EndHangup)
	if err := o.dlg.ReadBye(req, tx); err != nil {
		o.b.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	o.finish()
	if p := o.parent; p != nil {
		// The caller goes too, unless this leg is no longer the one bridged, or its far end
		// handed the call back by REFER and left: the transfer it asked for goes on.
		o.mu.Lock()
		referred := o.referred
		o.mu.Unlock()
		p.mu.Lock()
		current := p.peer == o
		if current && referred {
			p.peer = nil
		}
		p.mu.Unlock()
		if current && !referred {
			p.hangup(EndCalleeHangup)
		}
	}
}

// hangup sends BYE on the leg, once.
func (o *outLeg) hangup(reason string) {
	o.setReason(reason)
	o.mu.Lock()
	if o.hungUp {
		o.mu.Unlock()
		return
	}
	o.hungUp = true
	o.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		defer cancel()
		if err := o.b.bye(ctx, o.dlg); err != nil {
			o.b.log.Warn("sip bye failed", "call_id", o.id, "error", err)
		}
		o.finish()
	}()
}

// watch records the leg's end once its dialog is over.
func (o *outLeg) watch() {
	defer o.b.wg.Done()
	select {
	case <-o.dlg.Context().Done():
	case <-o.done:
	}
	o.b.mu.Lock()
	delete(o.b.outbound, o.dlg.ID)
	o.b.mu.Unlock()
	o.dlg.Close()
	o.mu.Lock()
	reason := o.endReason
	o.mu.Unlock()
	o.b.endCall(o.id, reason, o.b.log.With("call_id", o.id))
}

// dialRequest is a call the bridge places for an inbound call.
type dialRequest struct {
	parent     *inCall
	to         target
	headers    []sipcodec.Header // checked already
	referredBy string            // a checked URI, or ""
	// onProvisional sees every 1xx response (to relay 180/183 to the caller).
	onProvisional func(*sip.Response)
}

// errDialFailed wraps a non-2xx final response of a placed call.
type errDialFailed struct{ res *sip.Response }

func (e errDialFailed) Error() string {
	return fmt.Sprintf("the target answered %d %s", e.res.StatusCode, e.res.Reason)
}

// dial records the new leg as a call (ParentID = the inbound call, listed in its sip.legs),
// sends the INVITE and waits for the final response; ctx cancels it (with a CANCEL). On a
// 2xx it returns the leg, acknowledged and registered. On a non-2xx it returns
// errDialFailed, and the leg's call is ended as rejected.
func (b *Bridge) dial(ctx context.Context, d dialRequest) (*outLeg, *sip.Response, error) {
	if st, down := b.targetDown(d.to); down {
		return nil, nil, targetDownError{st}
	}
	sipCallID := uuid.NewString()
	wctx, cancel := context.WithTimeout(b.ctx, storeTimeout)
	call, _, err := b.svc.CreateCall(wctx, session.NewCall{
		From: d.parent.from, To: userOf(d.to.uri), Direction: session.DirectionOutbound,
		SIPCallID: sipCallID, ParentID: d.parent.id,
	}, session.WriteOptions{Actor: Actor, Origin: session.OriginSIP})
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("record the new leg: %w", err)
	}
	log := b.log.With("call_id", call.ID, "parent_id", d.parent.id, "sip_call_id", sipCallID)
	d.parent.addLeg(call.ID)

	req := sip.NewRequest(sip.INVITE, d.to.uri)
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: d.parent.from, Host: b.host}, Params: sip.NewParams()}
	if from.Address.User == "" {
		from.Address.User = "callctx"
	}
	from.Params.Add("tag", sip.GenerateTagN(16))
	to := sip.ToHeader{Address: sip.Uri{Scheme: d.to.uri.Scheme, User: d.to.uri.User, Host: d.to.uri.Host, Port: d.to.uri.Port}}
	cid := sip.CallIDHeader(sipCallID)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&cid)
	if mf := d.parent.dlg.InviteRequest.MaxForwards(); mf != nil {
		v := sip.MaxForwardsHeader(max(mf.Val(), 1) - 1)
		req.AppendHeader(&v)
	}
	for _, h := range d.headers {
		req.AppendHeader(sip.NewHeader(h.Name, h.Value))
	}
	if d.referredBy != "" {
		req.AppendHeader(sip.NewHeader("Referred-By", "<"+d.referredBy+">"))
	}
	req.AppendHeader(sip.NewHeader("User-Agent", b.cfg.UserAgent))
	req.AppendHeader(sip.NewHeader("Allow", allowed))
	// The placed call offers the caller's media: its INVITE's SDP.
	if offer := d.parent.dlg.InviteRequest; len(offer.Body()) > 0 {
		ct := "application/sdp"
		if h := offer.ContentType(); h != nil {
			ct = h.Value()
		}
		req.AppendHeader(sip.NewHeader("Content-Type", ct))
		req.SetBody(offer.Body())
	}
	transport := "udp"
	if tp, ok := d.to.uri.UriParams.Get("transport"); ok && tp != "" {
		transport = sip.NetworkToLower(tp)
	} else if d.to.uri.Scheme == "sips" {
		transport = "tls"
	} else if len(req.String())+viaReserve > udpLimit {
		// RFC 3261 §18.1.1: a request this large must go over a congestion-controlled
		// transport. The context travels over TCP rather than being cut.
		transport = "tcp"
	}
	req.SetTransport(sip.NetworkToLower(transport))
	dua := b.dua[transport]
	if dua == nil {
		b.endCall(call.ID, EndError, log)
		return nil, nil, fmt.Errorf("transport %s is not enabled on this bridge", transport)
	}
	req.AppendHeader(sip.HeaderClone(&dua.ContactHDR))

	dlg, err := dua.WriteInvite(ctx, req)
	if err != nil {
		b.endCall(call.ID, EndError, log)
		return nil, nil, fmt.Errorf("send INVITE: %w", err)
	}
	o := &outLeg{b: b, id: call.ID, parent: d.parent, dlg: dlg, done: make(chan struct{})}
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		if res.IsProvisional() && d.onProvisional != nil {
			d.onProvisional(res)
		}
		return nil
	}})
	var rejected *sipgo.ErrDialogResponse
	switch {
	case err == nil:
		b.cfg.Observer.SIPRequest(false, string(sip.INVITE), dlg.InviteResponse.StatusCode)
	case errors.As(err, &rejected):
		b.cfg.Observer.SIPRequest(false, string(sip.INVITE), rejected.Res.StatusCode)
	default:
		b.cfg.Observer.SIPRequest(false, string(sip.INVITE), 0)
	}
	if err != nil {
		dlg.Close()
		switch {
		case errors.As(err, &rejected):
			b.endCall(call.ID, EndRejected, log)
			return nil, rejected.Res, errDialFailed{rejected.Res}
		case ctx.Err() != nil:
			b.endCall(call.ID, EndCancel, log)
			return nil, nil, fmt.Errorf("cancelled: %w", ctx.Err())
		default:
			b.endCall(call.ID, EndError, log)
			return nil, nil, fmt.Errorf("wait for answer: %w", err)
		}
	}
	if err := dlg.Ack(ctx); err != nil {
		log.Warn("sip ack failed", "error", err)
	}
	b.mu.Lock()
	b.outbound[dlg.ID] = o
	b.wg.Add(1)
	b.mu.Unlock()
	go o.watch()
	return o, dlg.InviteResponse, nil
}

// addLeg lists a placed call in the inbound call's sip.legs.
func (c *inCall) addLeg(id string) {
	c.mu.Lock()
	c.legs = append(c.legs, id)
	legs := slices.Clone(c.legs)
	c.mu.Unlock()
	v, _ := json.Marshal(legs)
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, _, err := c.b.svc.Merge(ctx, c.id, map[string]json.RawMessage{session.VarLegs: v}, session.WriteOptions{Actor: Actor, Origin: session.OriginSIP}); err != nil {
		c.b.log.Warn("sip record leg failed", "call_id", c.id, "leg", id, "error", err)
	}
}

// bridgeInbound places a call to the configured target for an inbound INVITE, carrying the
// context headers and the caller's SDP, relays provisional and final responses, and stays in
// the signalling path until either side hangs up.
func (b *Bridge) bridgeInbound(req *sip.Request, tx sip.ServerTransaction, call *session.Call, sess *session.Session, log logger) {
	c, err := b.newInCall(req, tx, call)
	if err != nil {
		b.failDialog(req, tx, call, err, log)
		return
	}
	defer b.forget(c)
	hs, errs := b.outgoing(call.ID, sess.Variables, b.cfg.Carry, nil)
	if len(errs) > 0 {
		log.Warn("sip context not carried on bridged call", "error", errs)
	}
	o, res, err := b.bridgeTo(c, *b.target, hs, log)
	if o == nil {
		b.rejectPending(c, res, err, log)
		return
	}
	b.holdBridged(c, o, log)
}

// bridgeTo places a call to t for the pending INVITE of c and, when it is answered, answers
// the caller with its SDP. On failure it returns no leg and the target's final response (or
// the error), leaving the caller's INVITE unanswered.
func (b *Bridge) bridgeTo(c *inCall, t target, hs []sipcodec.Header, log logger) (*outLeg, *sip.Response, error) {
	// The caller's CANCEL ends the dialog's context, which cancels the placed call.
	ctx, cancel := context.WithCancel(c.dlg.Context())
	defer cancel()
	go func() {
		select {
		case <-c.done: // hung up by callctx (the call was ended over REST, or shutdown)
		case <-b.ctx.Done():
		case <-ctx.Done():
		}
		cancel()
	}()
	o, res, err := b.dial(ctx, dialRequest{
		parent: c, to: t, headers: hs,
		onProvisional: func(r *sip.Response) {
			if r.StatusCode == 100 {
				return
			}
			var hs []sip.Header
			if h := r.ContentType(); h != nil && len(r.Body()) > 0 {
				hs = append(hs, sip.HeaderClone(h))
			}
			if err := c.dlg.Respond(r.StatusCode, r.Reason, r.Body(), hs...); err != nil {
				log.Warn("sip relay provisional failed", "code", r.StatusCode, "error", err)
			}
		},
	})
	if err != nil {
		if ctx.Err() != nil && c.dlg.Context().Err() == nil {
			err = errHungUp
		}
		return nil, res, err
	}
	c.mu.Lock()
	c.peer = o
	c.peerSDP, c.legSDP, c.callerOrigin = res.Body(), c.dlg.InviteRequest.Body(), sipcodec.SDPOrigin(c.dlg.InviteRequest.Body())
	c.mu.Unlock()
	answer := sip.NewResponseFromRequest(c.dlg.InviteRequest, 200, "OK", res.Body())
	if h := res.ContentType(); h != nil {
		answer.AppendHeader(sip.HeaderClone(h))
	}
	answer.AppendHeader(sip.NewHeader("Allow", allowed))
	if err := c.dlg.WriteResponse(answer); err != nil {
		log.Warn("sip bridged answer not confirmed", "error", err)
		c.hangup(EndNoAck)
	} else {
		c.mu.Lock()
		c.confirmed = true
		c.mu.Unlock()
	}
	return o, res, nil
}

// errHungUp says callctx gave up on a placed call because the inbound one was ended.
var errHungUp = errors.New("the call was ended by callctx")

// rejectPending answers the pending INVITE of c after a placed call failed, and ends it.
func (b *Bridge) rejectPending(c *inCall, res *sip.Response, err error, log logger) {
	var failed errDialFailed
	switch {
	case errors.As(err, &failed):
		c.setReason(EndRejected)
		if err := c.dlg.Respond(res.StatusCode, res.Reason, nil); err != nil {
			log.Warn("sip relay final failed", "code", res.StatusCode, "error", err)
		}
		b.endCall(c.id, EndRejected, log)
	case c.dlg.Context().Err() != nil:
		b.endCall(c.id, EndCancel, log) // the caller cancelled; sipgo answered 487
	case errors.Is(err, errHungUp):
		_ = c.dlg.Respond(480, "Temporarily Unavailable", nil)
		b.endCall(c.id, c.reason(), log)
	case errors.As(err, new(targetDownError)):
		log.Warn("sip bridged call refused: the target is down", "error", err)
		_ = c.dlg.Respond(503, "Service Unavailable (the target is down)", nil, sip.NewHeader("Retry-After", "30"))
		b.endCall(c.id, EndError, log)
	default:
		log.Warn("sip bridged call failed", "error", err)
		_ = c.dlg.Respond(502, "Bad Gateway", nil)
		b.endCall(c.id, EndError, log)
	}
}

// holdBridged stays with a bridged call until either side hangs up, then records its end.
func (b *Bridge) holdBridged(c *inCall, o *outLeg, log logger) {
	c.wait()
	c.awaitTransfer()
	c.mu.Lock()
	peer := c.peer // a transfer may have replaced o
	c.mu.Unlock()
	if peer != nil {
		peer.hangup(c.reason())
	}
	o.hangup(c.reason())
	b.endCall(c.id, c.reason(), log)
}
