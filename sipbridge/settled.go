package sipbridge

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// settled remembers for a while the requests whose server transaction callctx ended early
// (see Bridge.settle): an INVITE answered (a 302 the caller acknowledged, or a 200), so that
// a copy of it (a retransmission, or a packet the network delayed or duplicated) is dropped
// instead of being taken for a new call; a BYE answered, so that a retransmission of it
// (its 200 was lost) gets 200 again, not 481.
//
// sipgo keeps such a transaction 5 s after a 3xx–6xx is acknowledged (Timer I), 32 s after
// a 2xx (Timer L, RFC 6026) and 32 s after answering a BYE over UDP (Timer J), each a few
// KB with the parsed request and the response; at carrier rates that is hundreds of
// megabytes for the collector to mark. settled keeps one 64-bit hash of the request's
// Call-ID and branch (see recent): a copy of an INVITE arrives close to its answer, and a
// caller retransmits a BYE at most T2 (4 s) apart, each copy renewing the entry.
type settled struct {
	seed maphash.Seed
	reqs recent[struct{}]
}

func newSettled() *settled {
	return &settled{seed: maphash.MakeSeed()}
}

// key is the hash of req's Call-ID and top Via branch (RFC 3261 §17.2.3 matches a
// retransmission by its branch).
func (s *settled) key(req *sip.Request) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(callIDOf(req))
	h.WriteByte(0)
	if via := req.Via(); via != nil {
		branch, _ := via.Params.Get("branch")
		h.WriteString(branch)
	}
	return h.Sum64()
}

// add records that req's transaction was ended early.
func (s *settled) add(req *sip.Request) { s.reqs.put(s.key(req), struct{}{}) }

// has reports whether req is a copy of a request added, or seen by has, less than T4 ago
// (at most 2×T4). A copy renews the entry: a caller that keeps sending one is answered, or
// ignored, for as long as it does.
func (s *settled) has(req *sip.Request) bool {
	_, ok := s.reqs.get(s.key(req))
	return ok
}

// recent holds values by a 64-bit key (a request's, settled.key) for T4 to 2×T4 (5–10 s)
// after each was last put or found: two generations of maps, the one since turned and the
// one in the T4 before it. Its maps hold no pointers for a V without any, so the collector
// does not scan them. The zero value is ready to use.
type recent[V comparable] struct {
	mu       sync.Mutex
	cur, old map[uint64]V
	turned   time.Time
}

// get returns k's value; finding it renews it.
func (r *recent[V]) get(k uint64) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.getLocked(k)
}

func (r *recent[V]) getLocked(k uint64) (V, bool) {
	r.turn(time.Now())
	v, ok := r.cur[k]
	if !ok {
		if v, ok = r.old[k]; ok {
			r.cur[k] = v
		}
	}
	return v, ok
}

// put sets k's value.
func (r *recent[V]) put(k uint64, v V) {
	r.mu.Lock()
	r.turn(time.Now())
	r.cur[k] = v
	delete(r.old, k)
	r.mu.Unlock()
}

// putNew sets k's value to v unless k has one, and returns the value k has then and whether
// it had one before.
func (r *recent[V]) putNew(k uint64, v V) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if have, ok := r.getLocked(k); ok {
		return have, true
	}
	r.cur[k] = v
	return v, false
}

// remove forgets k.
func (r *recent[V]) remove(k uint64) {
	r.mu.Lock()
	delete(r.cur, k)
	delete(r.old, k)
	r.mu.Unlock()
}

// empty reports whether nothing is held.
func (r *recent[V]) empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.turn(time.Now())
	return len(r.cur) == 0 && len(r.old) == 0
}

// turn drops the older generation once the current one is T4 old.
func (r *recent[V]) turn(now time.Time) {
	if now.Sub(r.turned) < sip.T4 {
		return
	}
	r.old, r.cur = r.cur, make(map[uint64]V, len(r.cur))
	r.turned = now
}

// settle ends req's server transaction now that the caller has what it asked for, and
// remembers req in settled for what the transaction was still kept for.
func (b *Bridge) settle(req *sip.Request, tx sip.ServerTransaction) {
	b.settled.add(req)
	tx.Terminate()
}

// settlingTx is the server transaction of an initial INVITE or of a BYE, which settles
// itself once callctx answers it with a 2xx.
//
// A BYE's 200 goes through sipgo's state machine, and the transaction ends after it instead
// of 32 s later (Timer J); a retransmitted BYE then reaches onBye, which answers 200 again.
//
// An INVITE's 2xx goes around the state machine. sipgo v1.7.2 keeps a transaction that sent
// a 2xx in its Accepted state under Timer L (32 s, RFC 6026), and Terminate does not stop
// that timer: the transaction, with the INVITE, the response and the dialog, stays on the
// heap for 32 s whatever callctx does (at 4,000 calls a second, half a gigabyte). RFC 6026
// leaves the 2xx's retransmissions to the transaction user, and sipgo's dialog
// (DialogServerSession.WriteResponse) makes them until the ACK, so the transaction has
// nothing left to do once the 2xx is out: it is written to the transport, and settling ends
// the transaction (stopping its 100 Trying timer too) while guard drops the INVITE's copies;
// each retransmission of the 2xx renews the entry until the ACK. Every 2xx callctx sends to
// an initial INVITE goes through the dialog.
type settlingTx struct {
	sip.ServerTransaction
	b   *Bridge
	req *sip.Request
}

func (t settlingTx) Respond(res *sip.Response) error {
	if !res.IsSuccess() {
		return t.ServerTransaction.Respond(res)
	}
	var err error
	if t.req.IsInvite() {
		err = t.b.srv.WriteResponse(res)
	} else {
		err = t.ServerTransaction.Respond(res)
	}
	if err != nil {
		return err
	}
	t.b.settle(t.req, t.ServerTransaction)
	return nil
}

// settling hands h the transaction of an initial INVITE or a BYE as a settlingTx.
func (b *Bridge) settling(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if req.IsInvite() && !hasToTag(req) || req.Method == sip.BYE {
			tx = settlingTx{ServerTransaction: tx, b: b, req: req}
		}
		h(req, tx)
	}
}
