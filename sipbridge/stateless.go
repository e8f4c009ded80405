package sipbridge

import (
	"bytes"
	"net"
	"strconv"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/callctx/callctx/session"
)

// Stateless redirects.
//
// In redirect mode callctx answers an INVITE that arrives over UDP as a stateless UAS (RFC
// 3261 §8.2.7, which names redirect servers as its use; Kamailio's sl_send_reply is one):
// the INVITE is taken from the socket before sipgo's transaction layer sees it, the 302 is
// written straight back to the address it came from, and the caller's ACK of it, which is
// hop by hop and asks for nothing (§17.1.1.3), is dropped there too. No server transaction
// is made for the call, with its goroutine, its timers and its retransmissions of the 302
// until the ACK: a caller that did not get the 302 sends its INVITE again (Timer A), and the
// copy gets the same 302 again, for the same call, from answered.
//
// It applies while no call can get a flow (no routing table and no sip.flow): a flow may
// answer the call, which needs a dialog and so a transaction. Over TCP and TLS, and for an
// INVITE inside a dialog, sipgo's transactions are used as in every other mode.

var (
	invitePrefix = []byte("INVITE ")
	ackPrefix    = []byte("ACK ")
	doneChan     = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
)

// readFilter sees each UDP datagram before sipgo parses it (sip.TransportReadFilter). It
// takes the INVITEs of new calls and the ACKs of their answers when calls are answered
// statelessly, and leaves everything else, and what it cannot read, to sipgo.
//
// When a flow may take calls again (a routing table was published), what was answered
// statelessly in the last seconds is still: an INVITE's copy gets its 302 again, and the ACK
// is dropped.
func (b *Bridge) readFilter(info sip.TransportReadProps, data []byte) ([]byte, error) {
	invite := bytes.HasPrefix(data, invitePrefix)
	if !invite && !bytes.HasPrefix(data, ackPrefix) || info.Transport != "UDP" || b.cfg.Mode != ModeRedirect {
		return data, nil
	}
	// While no call can get a flow (see above), new calls are answered statelessly.
	stateless := b.cfg.Flows == nil || b.cfg.Flow == "" && b.cfg.Flows.Snapshot().Routing() == nil
	if !stateless && b.answered.empty() {
		return data, nil
	}
	p := b.parser
	if !invite {
		p = b.ackParser
	}
	msg, err := p.ParseSIP(data)
	if err != nil {
		return data, nil // sipgo logs what it cannot parse
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.Via() == nil || req.CallID() == nil || invite && (req.CSeq() == nil || req.From() == nil || req.To() == nil) {
		return data, nil // sipgo refuses a malformed request
	}
	req.SetTransport(info.Transport)
	req.SetSource(info.RemoteAddr.String())
	k := b.settled.key(req)
	if !invite {
		if b.answered.has(k) {
			return nil, nil
		}
		return data, nil // an ACK of a transaction sipgo holds, or of an answer forgotten
	}
	if hasToTag(req) || !stateless && !b.answered.has(k) {
		return data, nil // inside a dialog, or a call a flow may take
	}
	go b.serveStateless(req, k, info.RemoteAddr)
	return nil, nil
}

// newACKParser returns a parser that reads of a request only what readFilter needs of an
// ACK: its Via and Call-ID, and its Content-Length for the body. sipgo keeps the other
// headers as text, and From, To and Contact are the costly ones to parse.
func newACKParser() *sip.Parser {
	all := sip.DefaultHeadersParser()
	only := make(map[string]sip.HeaderParser)
	for _, name := range []string{"via", "v", "call-id", "i", "content-length", "l"} {
		only[name] = all[name]
	}
	return sip.NewParser(sip.WithHeadersParsers(only))
}

// serveStateless handles an INVITE taken by readFilter, or a copy of one.
func (b *Bridge) serveStateless(req *sip.Request, k uint64, from net.Addr) {
	tx := &statelessTx{b: b, key: k, to: from}
	id, state := b.answered.claim(k)
	switch state {
	case claimBusy:
		return // a copy of an INVITE being answered: its answer is on its way
	case claimDone:
		b.redirectAgain(req, tx, id)
		return
	}
	b.onNewInvite(req, tx)
	if tx.callID == uuid.Nil {
		b.answered.release(k) // refused: a copy is handled as the INVITE was
	}
}

// redirectAgain answers a copy of an INVITE that was redirected: the same 302, for the same
// call, with its context as it is now.
func (b *Bridge) redirectAgain(req *sip.Request, tx *statelessTx, id uuid.UUID) {
	log := callLog{b.log, []any{"sip_call_id", callIDOf(req), "call_id", id.String()}}
	sess, err := b.svc.Session(b.ctx, id.String())
	if err != nil {
		// Gone (retention), or the bridge is stopping: the copy goes unanswered.
		if session.ErrorCode(err) != session.CodeNotFound && b.ctx.Err() == nil {
			log.Warn("sip redirect not repeated", "error", err)
		}
		return
	}
	if err := b.sendRedirect(req, tx, id.String(), sess, log); err != nil {
		log.Warn("sip redirect not repeated", "error", err)
	}
}

// statelessTx is the server transaction of an INVITE answered statelessly: a response is
// written to the socket at once, with a To tag that is the same for every copy of the
// INVITE; there is nothing to wait for.
type statelessTx struct {
	b      *Bridge
	key    uint64   // the INVITE's (settled.key)
	to     net.Addr // where it came from
	callID uuid.UUID
}

var _ sip.ServerTransaction = (*statelessTx)(nil)

// Respond writes to the bridge's socket itself: sipgo's server would look the caller's
// address up in its transport's connection pool, which learns an address only from a
// datagram the read filter passed on.
func (t *statelessTx) Respond(res *sip.Response) error {
	if res.StatusCode > 100 {
		if to := res.To(); to != nil {
			to.Params.Add("tag", strconv.FormatUint(t.key, 36))
		}
	}
	buf := responseBuffers.Get().(*bytes.Buffer)
	defer responseBuffers.Put(buf)
	buf.Reset()
	res.StringWrite(buf)
	_, err := t.b.udp.WriteTo(buf.Bytes(), t.to)
	return err
}

var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// redirected records the call a 302 sends the INVITE to, for its copies.
func (t *statelessTx) redirected(callID string) {
	if id, err := uuid.Parse(callID); err == nil {
		t.callID = id
		t.b.answered.done(t.key, id)
	}
}

func (t *statelessTx) Acks() <-chan *sip.Request          { return nil }
func (t *statelessTx) OnCancel(sip.FnTxCancel) bool       { return false }
func (t *statelessTx) Terminate()                         {}
func (t *statelessTx) OnTerminate(sip.FnTxTerminate) bool { return false }
func (t *statelessTx) Done() <-chan struct{}              { return doneChan }
func (t *statelessTx) Err() error                         { return nil }

// statelessOf returns the stateless transaction under the bridge's wrappers of tx, nil
// when tx is sipgo's.
func statelessOf(tx sip.ServerTransaction) *statelessTx {
	for {
		switch t := tx.(type) {
		case *statelessTx:
			return t
		case settlingTx:
			tx = t.ServerTransaction
		case *observedTx:
			tx = t.ServerTransaction
		default:
			return nil
		}
	}
}

// answered remembers the INVITEs answered statelessly, by settled.key, for T4 to 2×T4
// (5–10 s, see recent): a copy of an INVITE being answered is dropped, and one of an INVITE
// redirected gets the 302 again. A caller sends copies T1 (500 ms) apart, doubling, until it
// has a response. At 18,000 calls a second it holds up to 180,000 entries, about 5 MB.
type answered struct {
	recent[uuid.UUID] // the call each was redirected to; zero while it is answered
}

func newAnswered() *answered { return &answered{} }

const (
	claimNew  = iota // not seen: the claimer answers it
	claimBusy        // a copy of an INVITE being answered
	claimDone        // a copy of an INVITE redirected to the call returned
)

// claim reports what k is, and claims it when it is new.
func (a *answered) claim(k uint64) (uuid.UUID, int) {
	id, seen := a.putNew(k, uuid.Nil)
	switch {
	case !seen:
		return id, claimNew
	case id == uuid.Nil:
		return id, claimBusy
	default:
		return id, claimDone
	}
}

// done records that k was redirected to the call id.
func (a *answered) done(k uint64, id uuid.UUID) { a.put(k, id) }

// release forgets k.
func (a *answered) release(k uint64) { a.remove(k) }

// has reports whether k is remembered.
func (a *answered) has(k uint64) bool {
	_, ok := a.get(k)
	return ok
}
