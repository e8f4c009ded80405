package session

import (
	"time"
)

// failingFor is how long a store write failure keeps the Service reporting
// the store as failing (WriteFailure) when no write has succeeded since:
// long enough for a readiness probe to see it, short enough that a store
// that mended without anyone writing is reported healthy again soon.
const failingFor = 30 * time.Second

// writeFailure is the last write the store itself failed.
type writeFailure struct {
	err error
	at  time.Time
}

// noteWrite records how the store took a write: a failure of the store
// itself (no room, I/O, unreachable, internal) is remembered until a write
// succeeds; a refusal by the rules (invalid, conflict, …) says nothing about
// the store.
func (s *Service) noteWrite(err error) {
	switch ErrorCode(err) {
	case "":
		if s.failure.Load() != nil {
			s.failure.Store(nil)
		}
	case CodeStorageFull, CodeUnavailable, CodeInternal:
		s.failure.Store(&writeFailure{err: err, at: s.now()})
	}
}

// WriteFailure returns the error of the store's last failed write when no
// write has succeeded since and it happened within the last 30 seconds;
// else nil. Readiness reports it: a node whose store takes no writes (a
// full disk) should get no traffic.
func (s *Service) WriteFailure() error {
	f := s.failure.Load()
	if f == nil || s.now().Sub(f.at) > failingFor {
		return nil
	}
	return f.err
}
