package sipbridge

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// reinviteTimeout bounds how long a relayed re-INVITE waits for the other side's answer.
const reinviteTimeout = 10 * time.Second

// onReinvite handles a re-INVITE in the dialog of a call callctx holds.
//
// A parked call's re-INVITE is answered per its offer in the same session (see
// sipcodec.AnswerSDP): a hold or a session refresh keeps the answer as it was. On a
// bridged call callctx answers a session refresh itself (RFC 4028: a re-INVITE whose SDP
// keeps the origin line, so its media did not change, or one without SDP) with the other
// side's SDP as it stands; a change of media (hold, resume, a new codec) is relayed to the
// other side as a re-INVITE of its own, and its answer, or its refusal, comes back. The far
// end of a bridged leg gets the same treatment.
func (b *Bridge) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c := b.inboundOf(req)
	var leg *outLeg // set when the re-INVITE comes from the far end of a placed leg
	if c == nil {
		if leg = b.outboundOf(req); leg == nil {
			b.respond(req, tx, 481, "Call/Transaction Does Not Exist")
			return
		}
		c = leg.parent
	}
	dlg := &c.dlg.Dialog
	if leg != nil {
		dlg = &leg.dlg.Dialog
	}
	if err := dlg.ReadRequest(req, tx); err != nil {
		b.respond(req, tx, 500, "Server Internal Error (CSeq out of order)")
		return
	}
	var sdp []byte
	var sdpErr error
	relay, busy := false, false
	c.mu.Lock()
	peer := c.peer
	switch {
	case peer == nil && leg == nil: // parked: answer the new offer in the same session
		if sdp, sdpErr = b.parkSDP(req, c.sdp); sdpErr == nil {
			c.sdp = sdp
		}
	case peer == nil || leg != nil && peer != leg: // a leg no longer bridged: nothing to offer
	default:
		// This side's current SDP origin, and the SDP callctx gave it (the other side's).
		origin, given := c.callerOrigin, c.peerSDP
		if leg != nil {
			origin, given = sipcodec.SDPOrigin(c.peerSDP), c.legSDP
		}
		switch {
		case given != nil && (len(req.Body()) == 0 || origin != "" && sipcodec.SDPOrigin(req.Body()) == origin):
			sdp = given // a session refresh
		case c.reinviting:
			busy = true
		default:
			relay, c.reinviting = true, true
		}
	}
	c.mu.Unlock()
	switch {
	case sdpErr != nil:
		b.log.Warn("sip SDP offer refused", "call_id", c.id, "error", sdpErr)
		b.respond(req, tx, 488, "Not Acceptable Here", sdpWarning(b.host, sdpErr))
	case relay:
		b.relayReinvite(c, peer, leg == nil, req, tx)
	case busy:
		b.respond(req, tx, 491, "Request Pending")
	default:
		b.answerReinvite(req, tx, sdp, c.id)
	}
}

// relayReinvite sends a re-INVITE carrying req's SDP to the other side of c, bridged with
// peer, and answers req with what came back: on a 2xx callctx ACKs the other side at once
// and answers 200 with its SDP, remembering both sides' new SDP; any other final response
// is passed back as it is (491, 488…), and no answer at all is a 408. fromCaller says
// which side req came from.
func (b *Bridge) relayReinvite(c *inCall, peer *outLeg, fromCaller bool, req *sip.Request, tx sip.ServerTransaction) {
	defer func() {
		c.mu.Lock()
		c.reinviting = false
		c.mu.Unlock()
	}()
	// The other side: its dialog and where requests in it go.
	var other interface {
		Do(context.Context, *sip.Request) (*sip.Response, error)
		WriteRequest(*sip.Request) error
	} = c.dlg
	target := c.remoteTarget()
	if fromCaller {
		other, target = peer.dlg, peer.remoteTarget()
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil))
	out := sip.NewRequest(sip.INVITE, target)
	if body := req.Body(); len(body) > 0 {
		if ct := req.ContentType(); ct != nil {
			out.AppendHeader(sip.HeaderClone(ct))
		}
		out.SetBody(body)
	}
	ctx, cancel := context.WithTimeout(b.ctx, reinviteTimeout)
	defer cancel()
	res, err := other.Do(ctx, out)
	b.cfg.Observer.SIPRequest(false, string(sip.INVITE), statusOf(res))
	if err != nil || res == nil {
		b.log.Warn("sip re-INVITE not answered", "call_id", c.id, "error", err)
		b.respond(req, tx, 408, "Request Timeout (the other side did not answer the re-INVITE)")
		return
	}
	if !res.IsSuccess() {
		b.respond(req, tx, res.StatusCode, res.Reason)
		return
	}
	if err := other.WriteRequest(sip.NewRequest(sip.ACK, target)); err != nil {
		b.log.Warn("sip ack of relayed re-INVITE failed", "call_id", c.id, "error", err)
	}
	c.mu.Lock()
	if fromCaller {
		c.legSDP, c.callerOrigin = req.Body(), sipcodec.SDPOrigin(req.Body())
		c.peerSDP = res.Body()
	} else {
		c.peerSDP = req.Body()
		c.legSDP, c.callerOrigin = res.Body(), sipcodec.SDPOrigin(res.Body())
	}
	c.mu.Unlock()
	answer := sip.NewResponseFromRequest(req, 200, "OK", res.Body())
	if ct := res.ContentType(); ct != nil && len(res.Body()) > 0 {
		answer.AppendHeader(sip.HeaderClone(ct))
	}
	answer.AppendHeader(sip.HeaderClone(&b.duaFor(req).ContactHDR))
	answer.AppendHeader(sip.NewHeader("Allow", allowed))
	if err := tx.Respond(answer); err != nil {
		b.log.Warn("sip respond failed", "method", "INVITE", "code", 200, "call_id", c.id, "error", err)
	}
}

func statusOf(res *sip.Response) int {
	if res == nil {
		return 0
	}
	return res.StatusCode
}

// answerReinvite answers a re-INVITE 200 with sdp, or 488 when there is none to give.
func (b *Bridge) answerReinvite(req *sip.Request, tx sip.ServerTransaction, sdp []byte, callID string) {
	if len(sdp) == 0 {
		b.respond(req, tx, 488, "Not Acceptable Here")
		return
	}
	res := sip.NewSDPResponseFromRequest(req, sdp)
	res.AppendHeader(sip.HeaderClone(&b.duaFor(req).ContactHDR))
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	if err := tx.Respond(res); err != nil {
		b.log.Warn("sip respond failed", "method", "INVITE", "code", 200, "call_id", callID, "error", err)
	}
}

// remoteTarget is where requests in the leg's dialog go: the far end's Contact.
func (o *outLeg) remoteTarget() sip.Uri {
	if res := o.dlg.InviteResponse; res != nil {
		if h := res.Contact(); h != nil {
			return *h.Address.Clone()
		}
	}
	return o.dlg.InviteRequest.Recipient
}
