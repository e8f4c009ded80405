package sipbridge

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// settled remembers for a while the INVITEs whose server transaction callctx ended at the
// caller's ACK, so that a copy of one that the network delivers after the ACK is dropped,
// as the transaction would have dropped it, instead of being taken for a new call.
//
// sipgo keeps such a transaction for T4 (5 s, Timer I) after a 3xx–6xx is acknowledged,
// about 5.5 KB each with the parsed INVITE and the response; at carrier rates that is
// hundreds of megabytes for the collector to mark. settled keeps one 64-bit hash of the
// INVITE's Call-ID and branch for as long, in maps without pointers that the collector does
// not scan.
type settled struct {
	seed maphash.Seed

	mu       sync.Mutex
	cur, old map[uint64]struct{} // the hashes added since turned, and in the T4 before
	turned   time.Time
}

func newSettled() *settled {
	return &settled{seed: maphash.MakeSeed(), cur: map[uint64]struct{}{}, old: map[uint64]struct{}{}}
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

// add records that req's transaction was ended at its ACK.
func (s *settled) add(req *sip.Request) {
	k := s.key(req)
	s.mu.Lock()
	s.turn(time.Now())
	s.cur[k] = struct{}{}
	s.mu.Unlock()
}

// has reports whether req is a copy of an INVITE whose transaction ended at its ACK less
// than T4 ago (at most 2×T4).
func (s *settled) has(req *sip.Request) bool {
	k := s.key(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.turn(time.Now())
	_, ok := s.cur[k]
	if !ok {
		_, ok = s.old[k]
	}
	return ok
}

// turn drops the older generation once the current one is T4 old.
func (s *settled) turn(now time.Time) {
	if now.Sub(s.turned) < sip.T4 {
		return
	}
	s.old, s.cur = s.cur, make(map[uint64]struct{}, len(s.cur))
	s.turned = now
}
