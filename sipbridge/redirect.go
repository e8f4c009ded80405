package sipbridge

import (
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// withURIHeaders returns a copy of u carrying hs as URI headers, each name and value
// percent-encoded (sipgo writes URI headers as they are).
func withURIHeaders(u sip.Uri, hs []sipcodec.Header) sip.Uri {
	c := *u.Clone()
	c.Headers = make(sip.HeaderParams, 0, len(hs))
	for _, h := range hs {
		c.Headers = append(c.Headers, sip.HeaderKV{K: sipcodec.EscapeURIHeader(h.Name), V: sipcodec.EscapeURIHeader(h.Value)})
	}
	return c
}

// redirect answers the INVITE with 302, the context in the Contact URI's headers. The call
// was recorded ended (reason redirected) when it was created: callctx is out of the
// signalling path and will never see its end. Its session stays readable for the retention
// period; the next hop finds it by X-Callctx-Call-Id.
func (b *Bridge) redirect(req *sip.Request, tx sip.ServerTransaction, call *session.Call, sess *session.Session, log logger) {
	st := statelessOf(tx)
	if st != nil {
		// Before the 302 leaves: a copy of the INVITE that comes right after it gets it again.
		st.redirected(call.ID)
	}
	if err := b.sendRedirect(req, tx, call.ID, sess, log); err != nil {
		log.Error("sip redirect failed", "error", err)
		return
	}
	if st != nil {
		return // nothing to wait for (see stateless.go)
	}
	// Take the ACK here: sipgo hands it to a goroutine that blocks until someone reads it or
	// the transaction ends (Timer I, 5 s over UDP), and thousands of those per second are
	// stacks the garbage collector has to scan.
	t := time.NewTimer(sip.Timer_H)
	defer t.Stop()
	select {
	case <-tx.Acks():
		// The caller has the 302. Over UDP sipgo would keep the transaction five seconds
		// more (Timer I) to absorb retransmitted ACKs, which reach onAck without it and are
		// dropped there, and late copies of the INVITE, which guard drops.
		b.settle(req, tx)
	case <-tx.Done():
	case <-t.C:
	case <-b.stopping:
	}
}

// sendRedirect sends the 302 that redirects req's call, callID with the session sess.
func (b *Bridge) sendRedirect(req *sip.Request, tx sip.ServerTransaction, callID string, sess *session.Session, log logger) error {
	hs, errs := b.outgoing(callID, sess.Variables, b.cfg.Carry, nil)
	if len(errs) > 0 {
		log.Warn("sip context not carried on redirect", "error", errs)
	}
	if err := tx.Respond(b.moved(req, *b.target, hs, log)); err != nil {
		return fmt.Errorf("send 302: %w", err)
	}
	return nil
}

// moved builds the 302 that sends req to t, carrying hs (the call ID header first) in the
// Contact URI when t can carry headers. A response goes back the way the request came: over
// UDP it cannot move to TCP, and sipgo would refuse to send one too large, so then only the
// call ID header travels.
func (b *Bridge) moved(req *sip.Request, t target, hs []sipcodec.Header, log logger) *sip.Response {
	build := func(hs []sipcodec.Header) *sip.Response {
		res := sip.NewResponseFromRequest(req, 302, "Moved Temporarily", nil)
		if t.canCarryHeaders() {
			res.AppendHeader(&sip.ContactHeader{Address: withURIHeaders(t.uri, hs)})
		} else {
			res.AppendHeader(sip.NewHeader("Contact", "<"+t.String()+">"))
		}
		res.AppendHeader(sip.NewHeader("Server", b.cfg.UserAgent))
		return res
	}
	res := build(hs)
	// Measured only when there is context to drop: the size costs a serialisation of the 302.
	if len(hs) > 1 && transportOf(req) == "udp" {
		if n := len(res.String()); n > udpLimit {
			log.Warn("sip context too large for a UDP 302; sent the call ID only", "bytes", n, "headers", len(hs))
			res = build(hs[:1])
		}
	}
	return res
}
