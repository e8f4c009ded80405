package sipbridge

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
	id, state := b.answered.claim(k)
	if state == claimBusy {
		return nil, nil // a copy of an INVITE waiting or being answered: its answer is on its way
	}
	tx := &statelessTx{b: b, key: k, to: info.RemoteAddr, req: req, at: time.Now(), again: id}
	var took time.Duration
	late := id == refusedLate
	if state == claimNew {
		took, late = b.queue.behind()
	}
	if late {
		// A copy of an INVITE refused, or the calls answered last took longer than
		// lateAfter: this one would take as long. It is refused now, at a fraction of what
		// serving it costs, so that what the server does is answer the calls it takes in time.
		b.refuseLate(req, tx, took)
		b.cfg.Observer.SIPRequest(true, string(req.Method), 503)
		return nil, nil
	}
	if !b.queue.put(tx) {
		b.answered.release(k)
		b.lateLog.Failed(errQueueFull, "sip_call_id", callIDOf(req))
	}
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
func (b *Bridge) serveStateless(tx *statelessTx) {
	if tx.again != uuid.Nil {
		b.redirectAgain(tx.req, tx, tx.again)
		return
	}
	b.onNewInvite(tx.req, tx)
	if tx.callID == uuid.Nil {
		b.answered.release(tx.key) // refused: a copy is handled as the INVITE was
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
	req    *sip.Request
	key    uint64    // the INVITE's (settled.key)
	to     net.Addr  // where it came from
	at     time.Time // when readFilter took it
	again  uuid.UUID // the call a copy of a redirected INVITE was redirected to
	callID uuid.UUID // the call it is redirected to, once it is
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
	if res.StatusCode >= 200 && t.callID != refusedLate {
		t.b.queue.tookFrom(t.at)
	}
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

// The queue of new calls.
//
// readFilter hands the INVITEs it takes to a pool of workers through a queue, in the order
// they came, rather than to a goroutine each: a worker keeps the stack a call's handling has
// grown, where a new goroutine grows its own at every call.
//
// Overload. Past what the server can answer, calls wait longer and longer, their callers
// send their INVITEs again (Timer A) and give up (Timer B, 32 s), and every copy is more
// work. So a new call is refused 503 with a Retry-After at once, at a fraction of what
// serving it costs, while the calls answered last took longer than lateAfter from the
// socket to their answer (behind), and so is one that waited longer than that for a worker
// (guard, waitedTooLong); an SBC fails over on the 503. The bound is long enough that a server
// at its limit, whose answers are late now and then by a few hundred milliseconds, refuses
// nothing.
const (
	statelessWorkers = 4096             // at most; each waits for its call's durable write
	statelessQueued  = 16384            // INVITEs waiting for a worker; more are dropped, as a full socket would drop them
	statelessIdle    = 10 * time.Second // a worker with nothing to do for this long stops
	// DefaultLateAfter is how long a new call may take to be answered before new calls are
	// refused (behind), and wait for a worker before it is (waitedTooLong): by then its caller
	// has sent the INVITE again (Timer A, after T1) and is about to a second time.
	DefaultLateAfter = time.Second
	// answersFresh is how long the time the last answer took says how long the next will.
	answersFresh   = 100 * time.Millisecond
	retryAfterLate = "1" // seconds
)

// refusedLate stands in answered for the call of an INVITE refused by refuseLate.
var refusedLate = uuid.Max

var (
	errLate      = errors.New("new calls take too long to answer: refused 503")
	errQueueFull = errors.New("the queue of new calls is full: INVITE dropped")
)

// inviteQueue is the queue of new calls and its workers.
type inviteQueue struct {
	b         *Bridge
	ch        chan *statelessTx
	idleFor   time.Duration // statelessIdle
	lateAfter atomic.Int64  // DefaultLateAfter, in ns
	fresh     atomic.Int64  // answersFresh, in ns
	workers   atomic.Int32
	idle      atomic.Int32 // workers waiting for an INVITE
	took      atomic.Int64 // how long the last call answered took, in ns
	tookAt    atomic.Int64 // when it was answered, in ns since the Unix epoch
}

// tookFrom records that a call taken at at was answered now.
func (q *inviteQueue) tookFrom(at time.Time) {
	now := time.Now()
	q.took.Store(int64(now.Sub(at)))
	q.tookAt.Store(now.UnixNano())
}

// behind reports whether the calls answered last took longer than lateAfter, and how long
// the last took. A figure older than answersFresh says nothing.
func (q *inviteQueue) behind() (time.Duration, bool) {
	took := time.Duration(q.took.Load())
	if took <= time.Duration(q.lateAfter.Load()) || time.Since(time.Unix(0, q.tookAt.Load())) > time.Duration(q.fresh.Load()) {
		return took, false
	}
	return took, true
}

func newInviteQueue(b *Bridge) *inviteQueue {
	q := &inviteQueue{b: b, ch: make(chan *statelessTx, statelessQueued), idleFor: statelessIdle}
	q.lateAfter.Store(int64(DefaultLateAfter))
	q.fresh.Store(int64(answersFresh))
	return q
}

// put queues tx. It reports false when the queue is full.
func (q *inviteQueue) put(tx *statelessTx) bool {
	select {
	case q.ch <- tx:
	default:
		return false
	}
	q.more()
	return true
}

// more starts a worker when INVITEs wait, no worker is idle and there are fewer than
// statelessWorkers. put calls it after queueing, and a worker after taking an INVITE: a
// worker counts as idle until it has taken one, so a put may count on a worker that then
// takes an INVITE queued before it, and that worker sees the one left.
func (q *inviteQueue) more() {
	for q.idle.Load() == 0 && len(q.ch) > 0 {
		n := q.workers.Load()
		if n >= statelessWorkers {
			return
		}
		if q.workers.CompareAndSwap(n, n+1) {
			go q.work()
			return
		}
	}
}

// work serves queued INVITEs until none came for idleFor, or the bridge stops.
func (q *inviteQueue) work() {
	idle := time.NewTimer(q.idleFor)
	defer idle.Stop()
	for {
		q.idle.Add(1)
		select {
		case tx := <-q.ch:
			q.idle.Add(-1)
			q.more()
			q.b.serveStateless(tx)
			idle.Reset(q.idleFor)
		case <-idle.C:
			q.idle.Add(-1)
			q.workers.Add(-1)
			// A put between this worker's last look and its going may have counted on it.
			if len(q.ch) == 0 {
				return
			}
			q.workers.Add(1)
			idle.Reset(q.idleFor)
		case <-q.b.ctx.Done():
			q.idle.Add(-1)
			q.workers.Add(-1)
			return
		}
	}
}

// refuseLate answers 503 with a Retry-After to a new call that waited, or would wait, too
// long to be served. A stateless one is remembered as refused (refusedLate), so that its ACK
// is dropped on arrival and a copy gets the 503 again: a refusal costs a fraction of a call.
func (b *Bridge) refuseLate(req *sip.Request, tx sip.ServerTransaction, waited time.Duration) {
	if st := statelessOf(tx); st != nil {
		st.callID = refusedLate
		b.answered.done(st.key, refusedLate)
	}
	b.lateLog.Failed(errLate, "sip_call_id", callIDOf(req), "waited", waited.Round(time.Millisecond).String())
	b.respond(req, tx, 503, "Service Unavailable (overloaded)", sip.NewHeader("Retry-After", retryAfterLate))
}

// waitedTooLong reports whether a new call waited for a worker longer than lateAfter, and
// how long it waited.
func (q *inviteQueue) waitedTooLong(st *statelessTx) (time.Duration, bool) {
	waited := time.Since(st.at)
	return waited, waited > time.Duration(q.lateAfter.Load())
}
