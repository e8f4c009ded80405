package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/callctx/callctx/session"
)

// The writes run their transactions on the store's one writing goroutine
// (writer.go), one after another, so the work inside them bounds the write
// rate. Each write is therefore prepared outside: it reads what it changes
// (an active call's session from the read cache, decoded already), applies
// its change, runs the flow code that decides which automations the change
// fires (Patch.Firing), and encodes every record; inside the transaction it
// only checks that what it read is still what is stored, and puts the
// prepared bytes. Every change to a session record bumps its version, so
// an equal version means an identical record. When another write got there
// first, the write is prepared again, outside, from the newest state: flow
// code never runs inside the writer.

// CreateCall implements session.Store. The store keeps sess (for reads):
// the caller must not change it afterwards.
func (s *Store) CreateCall(ctx context.Context, c *session.Call, sess *session.Session, h *session.HistoryEntry, f *session.Firing) error {
	callJSON := exactly(nil, c.AppendJSON)
	rec, logEntry := encodeSession(sess), encodeLogEntry(0, h)
	queue := f.Fire(sess, h)
	queueRecs, err := encodeEntries(queue)
	if err != nil {
		return err
	}
	id := []byte(c.ID)
	var (
		result          error
		queued, dropped []*session.OutboxEntry
	)
	err = s.write(func(t *wtx) error {
		result = nil
		if t.get(bCalls, id) != nil {
			result = session.Errorf(session.CodeConflict, "a call with ID %s exists already", c.ID)
			return nil
		}
		startKey := timeKey(c.StartedAt, c.ID)
		if c.State == session.StateEnded {
			t.put(bByEnd, timeKey(c.EndedAt, c.ID), nil)
		} else {
			t.put(bActive, startKey, nil)
		}
		t.put(bCalls, id, callJSON)
		t.put(bByStart, startKey, []byte{stateByte(c.State)})
		putRecords(t, c.ID, rec, logEntry)
		queued, dropped = putEntries(t, queue, queueRecs)
		return nil
	})
	if err != nil {
		return storeErr("create call", err)
	}
	if result != nil {
		return result
	}
	f.Done(queued, dropped)
	if c.State == session.StateActive { // one created ended (a redirect) is not cached, as EndCall
		s.cache.put(c.ID, rec, sess, callJSON, c)
	}
	return nil
}

// Apply implements session.Store. The session it returns is shared with
// the store's cache: the caller must not change it.
func (s *Store) Apply(ctx context.Context, callID string, p *session.Patch) (*session.Session, *session.HistoryEntry, error) {
	id := []byte(callID)
	fromCache := true
	for {
		prep, err := s.prepareApply(callID, p, fromCache)
		if err != nil {
			return nil, nil, storeErr("apply write", err)
		}
		if prep.err != nil || prep.entry == nil {
			// Refused, or nothing to change: true as of the snapshot just read.
			return prep.result()
		}
		var missing, stale bool
		err = s.write(func(t *wtx) error {
			missing, stale = false, false
			v := t.get(bSessions, id)
			switch {
			case v == nil:
				missing = true
			case recordVersion(v) != prep.base:
				stale = true
			default:
				putRecords(t, callID, prep.sessRec, prep.logEntry)
				prep.queued, prep.dropped = putEntries(t, prep.queue, prep.queueRecs)
			}
			return nil
		})
		switch {
		case err != nil:
			return nil, nil, storeErr("apply write", err)
		case missing:
			return nil, nil, notFound(callID) // purged meanwhile
		case stale:
			fromCache = false // the write that got there first may not be cached yet
			continue
		}
		if prep.sess.State == session.StateEnded {
			// A write an ended session accepts (Patch.AllowEnded): reads stay
			// with bbolt, as for every ended call.
			s.cache.end(callID, prep.sess.Version)
		} else {
			s.cache.put(callID, prep.sessRec, prep.sess, nil, nil)
		}
		p.Firing.Done(prep.queued, prep.dropped)
		return prep.result()
	}
}

// prepareApply prepares p on the newest session of callID: the cached
// one, when fromCache and it is cached and the change is a real one (a
// refusal or a no-op is decided on the stored record), else the stored
// one.
func (s *Store) prepareApply(callID string, p *session.Patch, fromCache bool) (*prepared, error) {
	if e, ok := s.cache.get(callID); ok && fromCache {
		prep, err := prepare(e.sess, recordHead(e.rec), p, false)
		if err != nil || (prep.err == nil && prep.entry != nil) {
			return prep, err
		}
	}
	var prep *prepared
	err := s.read(func(r *reader) error {
		v := r.get(bSessions, []byte(callID))
		if v == nil {
			return notFound(callID)
		}
		var err error
		prep, err = prepareRecord(v, p)
		return err
	})
	return prep, err
}

// prepared is a write computed against one version of a session record.
type prepared struct {
	base     uint64 // the version the write was computed against
	sess     *session.Session
	entry    *session.HistoryEntry // nil: nothing changes
	sessRec  []byte                // head filled in by putRecords
	logEntry []byte
	err      error // the write is refused (a domain error)
	// The outbox entries the write fires (Patch.Firing), and their
	// encodings, queued in its transaction; what putEntries queued of them
	// and left out.
	queue           []*session.OutboxEntry
	queueRecs       [][]byte
	queued, dropped []*session.OutboxEntry
}

// prepare applies p to base, the session of a record whose newest history
// entry is head, leaving base as it is, fires p.Firing and encodes the
// results; with end, the session is ended too. It returns an error only
// for an outbox entry that cannot be encoded.
func prepare(base *session.Session, head uint64, p *session.Patch, end bool) (*prepared, error) {
	prep := &prepared{base: base.Version}
	prep.sess, prep.entry, prep.err = p.Applied(base)
	if prep.err != nil || prep.entry == nil {
		return prep, nil
	}
	if end {
		prep.sess.State = session.StateEnded
	}
	prep.sessRec = encodeSession(prep.sess)
	prep.logEntry = encodeLogEntry(head, prep.entry)
	prep.queue = p.Firing.Fire(prep.sess, prep.entry)
	var err error
	if prep.queueRecs, err = encodeEntries(prep.queue); err != nil {
		return nil, err
	}
	return prep, nil
}

// prepareRecord is prepare on the stored session record v.
func prepareRecord(v []byte, p *session.Patch) (*prepared, error) {
	base, err := decodeSession(v)
	if err != nil {
		return nil, err
	}
	return prepare(base, recordHead(v), p, false)
}

func (p *prepared) result() (*session.Session, *session.HistoryEntry, error) {
	if p.err != nil {
		return nil, nil, p.err
	}
	return p.sess, p.entry, nil
}

// EndCall implements session.Store. The session it returns is shared with
// the store's cache until the end commits: the caller must not change it.
func (s *Store) EndCall(ctx context.Context, callID string, at time.Time, reason string, p *session.Patch) (*session.Call, *session.Session, *session.HistoryEntry, bool, error) {
	id := []byte(callID)
	for fromCache := true; ; fromCache = false {
		var (
			prep    *ending
			rawCall []byte
			err     error
		)
		if e, ok := s.cache.get(callID); ok && fromCache && e.call != nil {
			// An active call: the call and its session as cached.
			rawCall = e.callRec
			prep, err = s.prepareEnd(callID, e.call, e.sess, recordHead(e.rec), at, reason, p)
		} else {
			err = s.read(func(r *reader) error {
				rawCall = bytes.Clone(r.get(bCalls, id))
				c, base, head, err := s.decodeForEnd(callID, rawCall, r.get(bSessions, id))
				if err != nil {
					return err
				}
				prep, err = s.prepareEnd(callID, c, base, head, at, reason, p)
				return err
			})
		}
		if err != nil {
			return nil, nil, nil, false, storeErr("end call", err)
		}
		if !prep.ended {
			return prep.call, prep.sess, nil, false, nil // ended already
		}
		stale := false
		err = s.write(func(t *wtx) error {
			rc, rs := t.get(bCalls, id), t.get(bSessions, id)
			if stale = !bytes.Equal(rc, rawCall) || rs == nil || recordVersion(rs) != prep.base; stale {
				return nil
			}
			startKey := timeKey(prep.call.StartedAt, callID)
			t.put(bCalls, id, prep.callJSON)
			t.put(bByStart, startKey, []byte{stateByte(session.StateEnded)})
			t.del(bActive, startKey)
			t.put(bByEnd, timeKey(at, callID), nil)
			putRecords(t, callID, prep.sessRec, prep.logEntry)
			prep.queued, prep.dropped = putEntries(t, prep.queue, prep.queueRecs)
			return nil
		})
		if err != nil {
			return nil, nil, nil, false, storeErr("end call", err)
		}
		if stale {
			continue // prepared again from what is stored now, outside the writer
		}
		s.cache.end(callID, prep.sess.Version)
		p.Firing.Done(prep.queued, prep.dropped)
		return prep.call, prep.sess, prep.entry, true, nil
	}
}

// ending is the end of a call computed against one version of its records:
// ended false when the call had ended already.
type ending struct {
	prepared
	call     *session.Call
	callJSON []byte
	ended    bool
}

// decodeForEnd decodes the stored call and session records of a call
// (the session from the cache when it holds that version): what
// prepareEnd works on. CodeNotFound when either is missing.
func (s *Store) decodeForEnd(callID string, rawCall, rawSess []byte) (*session.Call, *session.Session, uint64, error) {
	if rawCall == nil || rawSess == nil {
		return nil, nil, 0, notFound(callID)
	}
	c := new(session.Call)
	if err := json.Unmarshal(rawCall, c); err != nil {
		return nil, nil, 0, fmt.Errorf("decode call %s: %w", callID, err)
	}
	if err := checkRecord(rawSess); err != nil {
		return nil, nil, 0, fmt.Errorf("session %s: %w", callID, err)
	}
	if e, ok := s.cache.get(callID); ok && e.version == recordVersion(rawSess) {
		return c, e.sess, recordHead(rawSess), nil
	}
	base, err := decodeSession(rawSess)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("session %s: %w", callID, err)
	}
	return c, base, recordHead(rawSess), nil
}

// prepareEnd computes the end of call c, whose session is base with its
// newest history entry head. c is not changed: the ended call is a copy.
func (s *Store) prepareEnd(callID string, c *session.Call, base *session.Session, head uint64, at time.Time, reason string, p *session.Patch) (*ending, error) {
	if c.State == session.StateEnded {
		return &ending{prepared: prepared{base: base.Version, sess: base}, call: c}, nil
	}
	prep, err := prepare(base, head, p, true)
	if err != nil {
		return nil, err
	}
	if prep.err != nil || prep.entry == nil {
		// The Service builds the end-of-call patch, which always records
		// the end's time: refusing it, or finding nothing to change, is a bug.
		return nil, fmt.Errorf("end call %s: the end-of-call patch did not apply: %v", callID, prep.err)
	}
	ended := *c
	ended.State, ended.EndedAt, ended.EndReason = session.StateEnded, at, reason
	return &ending{prepared: *prep, call: &ended, callJSON: exactly(nil, ended.AppendJSON), ended: true}, nil
}
