package metrics

import (
	"context"
	"time"

	"github.com/callctx/callctx/session"
)

// Store returns inner counting its writes in callctx_session_writes_total.
// Everything else passes through untouched, including methods the Store
// interface may gain. With a nil m it returns inner.
func (m *Metrics) Store(inner session.Store) session.Store {
	if m == nil {
		return inner
	}
	return &store{Store: inner, m: m}
}

// store counts the writes of a session.Store.
type store struct {
	session.Store
	m *Metrics
}

var _ session.Store = (*store)(nil)

func (s *store) count(op string, err error, changed bool) {
	result := "ok"
	switch {
	case err != nil:
		result = string(session.ErrorCode(err))
	case !changed:
		result = "unchanged"
	}
	s.m.sessionWrites.WithLabelValues(op, result).Inc()
	s.countError(op, err)
}

// countError counts a write the store itself failed.
func (s *store) countError(op string, err error) {
	switch code := session.ErrorCode(err); code {
	case session.CodeStorageFull, session.CodeUnavailable, session.CodeInternal:
		s.m.storeErrors.WithLabelValues(op, string(code)).Inc()
	}
}

func (s *store) CreateCall(ctx context.Context, c *session.Call, sess *session.Session, h *session.HistoryEntry, f *session.Firing) error {
	err := s.Store.CreateCall(ctx, c, sess, h, f)
	s.count("create", err, true)
	return err
}

func (s *store) Apply(ctx context.Context, callID string, p *session.Patch) (*session.Session, *session.HistoryEntry, error) {
	sess, h, err := s.Store.Apply(ctx, callID, p)
	s.count("write", err, h != nil)
	return sess, h, err
}

func (s *store) EndCall(ctx context.Context, callID string, at time.Time, reason string, p *session.Patch) (*session.Call, *session.Session, *session.HistoryEntry, bool, error) {
	c, sess, h, ended, err := s.Store.EndCall(ctx, callID, at, reason, p)
	s.count("end", err, ended)
	return c, sess, h, ended, err
}
