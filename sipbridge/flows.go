package sipbridge

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// flowTimeout bounds one step of a flow the bridge drives: a switch or wait node may hold a
// decision for flow.MaxWait.
const flowTimeout = flow.MaxWait + 5*time.Second

// The bridge drives the flow of every inbound call when Config.Flow names one: it is the
// "media platform" of its calls, for the actions SIP signalling can perform. Switch,
// automation and wait nodes run inside the flow engine as for any call. Then:
//
//   - before the call is answered, a transfer action with mode redirect answers the INVITE
//     with 302 to its target; mode invite bridges the caller to its target (a B2BUA leg);
//     hangup rejects the INVITE with 480; any other action answers and parks the call;
//   - once answered, transfer actions (refer or invite; redirect, no longer possible, becomes
//     refer) run through Transfer, exactly as POST /v1/calls/{id}/transfer does, and their
//     outcome goes back to the flow (answered or accepted: done; failed with no-answer:
//     timeout; otherwise failed); hangup hangs up;
//   - play, say and input need media, which the bridge does not have: they are reported
//     failed, so the flow takes their on_failure branch (or next).
//
// A failed transfer goes back to the flow, whose on_failure branch may try another target.

// flowInvite handles a new inbound call that has a flow: the flow's first actions decide
// what happens to the INVITE.
func (b *Bridge) flowInvite(req *sip.Request, tx sip.ServerTransaction, call *session.Call, sess *session.Session, log logger) {
	c, err := b.newInCall(req, tx, call)
	if err != nil {
		b.failDialog(req, tx, call, err, log)
		return
	}
	defer b.forget(c)
	run, err := b.flowNext(c, nil)
	for err == nil && run.Action != nil {
		a := run.Action
		status := flow.StatusFailed
		switch actionString(a, "type") {
		case "transfer":
			t, hs, terr := b.flowTarget(c, a, sess)
			if terr != nil {
				log.Warn("sip flow transfer refused", "node", nodeOf(run), "error", terr)
				break
			}
			switch actionString(a, "mode") {
			case "redirect":
				b.flowDone(c, run, log)
				b.redirectTo(c, t, hs, log)
				b.endCall(c.id, EndRedirected, log)
				return
			case "invite":
				o, res, derr := b.bridgeTo(c, t, hs, log)
				if o != nil {
					// callctx stays in a bridged call: the flow may go on (to wait for a REFER
					// that hands the call back, say).
					done := &flow.Outcome{Status: flow.StatusDone, Step: run.Step}
					b.drive(c, func() (*flow.Run, error) { return b.flowNextHeld(c, done) })
					b.holdBridged(c, o, log)
					return
				}
				if c.dlg.Context().Err() != nil || errors.Is(derr, errHungUp) {
					b.rejectPending(c, res, derr, log)
					return
				}
				status = dialStatus(res)
			default: // refer needs an answered call
				b.park(c, log, func() { b.drive(c, func() (*flow.Run, error) { return run, nil }) })
				return
			}
		case "hangup":
			b.flowDone(c, run, log)
			c.setReason(flowHangupReason(a))
			_ = c.dlg.Respond(480, "Temporarily Unavailable", nil)
			b.endCall(c.id, c.reason(), log)
			return
		}
		run, err = b.flowNext(c, &flow.Outcome{Status: status, Step: run.Step})
	}
	if err != nil {
		log.Warn("sip flow next", "error", err)
	}
	// The flow has nothing (more) for the INVITE: park the call.
	b.park(c, log, nil)
}

// drive performs the actions of a call's flow in the background, starting with what first
// returns, unless the bridge drives the call's flow already. Only one driver runs per call.
func (b *Bridge) drive(c *inCall, first func() (*flow.Run, error)) {
	c.mu.Lock()
	if c.driving {
		c.mu.Unlock()
		return
	}
	c.driving = true
	c.mu.Unlock()
	b.track(func() {
		defer func() {
			c.mu.Lock()
			c.driving = false
			c.mu.Unlock()
		}()
		run, err := first()
		if err != nil {
			b.log.Warn("sip flow next", "call_id", c.id, "error", err)
			return
		}
		b.driveFlow(c, run)
	})
}

// driveFlow performs the actions of a held call's flow, starting with run's.
func (b *Bridge) driveFlow(c *inCall, run *flow.Run) {
	log := b.log.With("call_id", c.id)
	var err error
	for err == nil && run != nil && run.Action != nil {
		a := run.Action
		switch actionString(a, "type") {
		case "transfer":
			run, err = b.flowTransfer(c, run)
		case "hangup":
			b.flowDone(c, run, log)
			c.hangup(flowHangupReason(a))
			return
		default: // media
			run, err = b.flowNext(c, &flow.Outcome{Status: flow.StatusFailed, Step: run.Step})
		}
	}
	if err != nil && !errors.Is(err, errCallGone) {
		log.Warn("sip flow next", "error", err)
	}
}

// errCallGone says a parked call ended while its flow was waiting for a transfer.
var errCallGone = errors.New("the call ended")

// flowTransfer runs a flow's transfer action on a parked call through the same code as
// Transfer, tells the flow the outcome as soon as it is recorded (before callctx hangs up
// after a success, while the session can still be written) and returns what comes next.
func (b *Bridge) flowTransfer(c *inCall, run *flow.Run) (*flow.Run, error) {
	a := run.Action
	mode := session.TransferRefer
	if actionString(a, "mode") == "invite" {
		mode = session.TransferInvite
	}
	// The flow ends with a transfer that went through: nothing needs a grace period.
	var grace time.Duration
	req := session.TransferRequest{Target: actionString(a, "target"), Mode: mode, Actor: "flow:" + run.Flow, HangupAfter: &grace}
	for _, h := range actionHeaders(a) {
		req.Headers = append(req.Headers, session.TransferHeader{Name: h.Name, Value: h.Value})
	}
	reported := make(chan struct{})
	var next *flow.Run
	var nerr error
	report := func(st session.TransferStatus, rc string) {
		next, nerr = b.flowNext(c, &flow.Outcome{Status: outcomeStatus(string(st), rc), Step: run.Step, Announced: true})
		close(reported)
	}
	ctx, cancel := context.WithTimeout(b.ctx, storeTimeout)
	_, err := b.transfer(ctx, c.id, req, report)
	cancel()
	if err != nil {
		b.log.Warn("sip flow transfer refused", "call_id", c.id, "node", nodeOf(run), "error", err)
		return b.flowNext(c, &flow.Outcome{Status: flow.StatusFailed, Step: run.Step})
	}
	select {
	case <-reported:
		return next, nerr
	case <-c.done:
	case <-c.dlg.Context().Done():
	case <-b.stopping:
	}
	// The transfer goroutine records the outcome (and reports it) before the call's end is
	// written (see awaitTransfer); wait for it as long.
	select {
	case <-reported:
		return next, nerr
	case <-time.After(notifyGrace + storeTimeout):
		return nil, errCallGone
	}
}

// outcomeStatus maps a transfer's recorded outcome to a flow outcome.
func outcomeStatus(status, reasonCode string) string {
	switch session.TransferStatus(status) {
	case session.TransferAnswered, session.TransferAccepted:
		return flow.StatusDone
	}
	if reasonCode == session.ReasonNoAnswer {
		return flow.StatusTimeout
	}
	return flow.StatusFailed
}

// dialStatus maps the final response of a failed placed call to a flow outcome.
func dialStatus(res *sip.Response) string {
	if res != nil && reasonCode(res.StatusCode) == session.ReasonNoAnswer {
		return flow.StatusTimeout
	}
	return flow.StatusFailed
}

// flowNext reports o (nil: none yet) to the call's flow and returns what comes next.
func (b *Bridge) flowNext(c *inCall, o *flow.Outcome) (*flow.Run, error) {
	ctx, cancel := context.WithTimeout(b.ctx, flowTimeout)
	defer cancel()
	return b.cfg.Flows.Next(ctx, c.id, o)
}

// flowNextHeld is flowNext for a call that stays with callctx meanwhile: a wait in the flow
// ends with the call.
func (b *Bridge) flowNextHeld(c *inCall, o *flow.Outcome) (*flow.Run, error) {
	ctx, cancel := context.WithTimeout(b.ctx, flowTimeout)
	defer cancel()
	stop := context.AfterFunc(c.dlg.Context(), cancel)
	defer stop()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return b.cfg.Flows.Next(ctx, c.id, o)
}

// flowDone tells the call's flow that run's action was done, when that action is its last
// (a redirect, a bridged call, a hangup): what comes next is not for the bridge.
func (b *Bridge) flowDone(c *inCall, run *flow.Run, log logger) {
	if _, err := b.flowNext(c, &flow.Outcome{Status: flow.StatusDone, Step: run.Step}); err != nil {
		log.Warn("sip flow next", "error", err)
	}
}

// flowTarget checks a transfer action's target and headers for use before the call is
// answered (redirect, invite): the context is the bridge's carry configuration plus the
// action's headers, which win.
func (b *Bridge) flowTarget(c *inCall, a flow.Action, sess *session.Session) (target, []sipcodec.Header, error) {
	t, err := parseTarget(actionString(a, "target"), b.cfg.SBC, false)
	if err != nil {
		return target{}, nil, err
	}
	explicit := actionHeaders(a)
	if errs := checkExplicit(c.id, explicit); len(errs) > 0 {
		return target{}, nil, errs
	}
	hs, errs := b.outgoing(c.id, sess.Variables, b.cfg.Carry, explicit)
	if len(errs) > 0 {
		b.log.Warn("sip context not carried", "call_id", c.id, "error", errs)
	}
	return t, hs, nil
}

// redirectTo answers the pending INVITE of c with 302 to t carrying hs.
func (b *Bridge) redirectTo(c *inCall, t target, hs []sipcodec.Header, log logger) {
	if err := c.dlg.WriteResponse(b.moved(c.dlg.InviteRequest, t, hs, log)); err != nil {
		log.Error("sip redirect failed", "error", fmt.Errorf("send 302: %w", err))
	}
}

// actionHeaders returns a transfer action's headers (its headers map and its uui) in a
// stable order.
func actionHeaders(a flow.Action) []sipcodec.Header {
	var hs []sipcodec.Header
	switch m := a["headers"].(type) {
	case map[string]string:
		for k, v := range m {
			hs = append(hs, sipcodec.Header{Name: k, Value: v})
		}
	case map[string]any:
		for k, v := range m {
			s, _ := v.(string)
			hs = append(hs, sipcodec.Header{Name: k, Value: s})
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
	if u := actionString(a, "uui"); u != "" {
		hs = append(hs, sipcodec.Header{Name: sipcodec.UUIHeader, Value: u})
	}
	return hs
}

func actionString(a flow.Action, key string) string {
	s, _ := a[key].(string)
	return s
}

func flowHangupReason(a flow.Action) string {
	if r := actionString(a, "reason"); r != "" {
		return r
	}
	return "flow-hangup"
}

func nodeOf(run *flow.Run) string {
	if len(run.Path) == 0 {
		return run.Node
	}
	return run.Path[len(run.Path)-1].Node
}
