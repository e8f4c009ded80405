package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/callctx/callctx/session"
	bolt "go.etcd.io/bbolt"
)

// SaveFlowRun implements session.Store.
func (s *Store) SaveFlowRun(ctx context.Context, callID string, state []byte, queue []*session.OutboxEntry) error {
	encoded, err := encodeEntries(queue)
	if err != nil {
		return err
	}
	state = bytes.Clone(state)
	var result error
	err = s.write(func(t *wtx) error {
		result = nil
		if t.get(bCalls, []byte(callID)) == nil {
			result = notFound(callID)
			return nil
		}
		if result = checkNewEntries(t, queue); result != nil {
			return nil
		}
		t.put(bFlowRuns, []byte(callID), state)
		putEntries(t, queue, encoded)
		return nil
	})
	if err != nil {
		return storeErr("save flow run", err)
	}
	return result
}

// FlowRun implements session.Store.
func (s *Store) FlowRun(ctx context.Context, callID string) ([]byte, error) {
	var state []byte
	err := s.read(func(r *reader) error {
		v := r.get(bFlowRuns, []byte(callID))
		if v == nil {
			return session.Errorf(session.CodeNotFound, "the call %s has no flow run", callID)
		}
		state = bytes.Clone(v)
		return nil
	})
	return state, storeErr("read flow run", err)
}

// EnqueueOutbox implements session.Store.
func (s *Store) EnqueueOutbox(ctx context.Context, entries []*session.OutboxEntry) ([]*session.OutboxEntry, error) {
	encoded, err := encodeEntries(entries)
	if err != nil {
		return nil, err
	}
	var (
		result error
		queued []*session.OutboxEntry
	)
	err = s.write(func(t *wtx) error {
		result, queued = nil, nil
		for _, e := range entries {
			if t.get(bCalls, []byte(e.CallID)) == nil {
				result = notFound(e.CallID)
				return nil
			}
		}
		if result = checkNewEntries(t, entries); result != nil {
			return nil
		}
		queued, _ = putEntries(t, entries, encoded)
		return nil
	})
	if err != nil {
		return nil, storeErr("enqueue outbox", err)
	}
	if result != nil {
		return nil, result
	}
	return queued, nil
}

// UpdateOutbox implements session.Store.
func (s *Store) UpdateOutbox(ctx context.Context, e *session.OutboxEntry) error {
	raw, err := session.EncodeJSON(e)
	if err != nil {
		return session.Internal(fmt.Errorf("encode outbox entry: %w", err))
	}
	var result error
	err = s.write(func(t *wtx) error {
		result = nil
		old := t.get(bOutbox, []byte(e.ID))
		if old == nil {
			result = session.Errorf(session.CodeNotFound, "there is no outbox entry %s", e.ID)
			return nil
		}
		prev, err := decodeEntry(old)
		if err != nil {
			return fmt.Errorf("decode outbox entry %s: %w", e.ID, err)
		}
		if prev.Pending() {
			t.del(bOutboxDue, timeKey(prev.Due, e.ID))
		}
		if e.Pending() {
			t.put(bOutboxDue, timeKey(e.Due, e.ID), nil)
		}
		t.put(bOutbox, []byte(e.ID), raw)
		return nil
	})
	if err != nil {
		return storeErr("update outbox", err)
	}
	return result
}

// PendingOutbox implements session.Store.
func (s *Store) PendingOutbox(ctx context.Context) ([]*session.OutboxEntry, error) {
	var out []*session.OutboxEntry
	err := s.readApplied(func(tx *bolt.Tx) error {
		box := tx.Bucket(bucketNames[bOutbox])
		cur := tx.Bucket(bucketNames[bOutboxDue]).Cursor()
		for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
			e, err := decodeEntry(box.Get(k[8:]))
			if err != nil {
				return fmt.Errorf("outbox entry %s: %w", k[8:], err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, storeErr("read pending outbox", err)
	}
	return out, nil
}

// CallOutbox implements session.Store.
func (s *Store) CallOutbox(ctx context.Context, callID string) ([]*session.OutboxEntry, error) {
	out := []*session.OutboxEntry{}
	err := s.readApplied(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketNames[bCalls]).Get([]byte(callID)) == nil {
			return notFound(callID)
		}
		box := tx.Bucket(bucketNames[bOutbox])
		prefix := callPrefix(callID)
		cur := tx.Bucket(bucketNames[bOutboxCall]).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			e, err := decodeEntry(box.Get(k[len(prefix):]))
			if err != nil {
				return fmt.Errorf("outbox entry %s: %w", k[len(prefix):], err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, storeErr("read call outbox", err)
	}
	return out, nil
}

func encodeEntries(entries []*session.OutboxEntry) ([][]byte, error) {
	out := make([][]byte, len(entries))
	for i, e := range entries {
		if e.ID == "" || e.CallID == "" {
			return nil, session.Internal(fmt.Errorf("outbox entry without ID or call ID"))
		}
		raw, err := session.EncodeJSON(e)
		if err != nil {
			return nil, session.Internal(fmt.Errorf("encode outbox entry: %w", err))
		}
		out[i] = raw
	}
	return out, nil
}

func checkNewEntries(t *wtx, entries []*session.OutboxEntry) error {
	for _, e := range entries {
		if t.get(bOutbox, []byte(e.ID)) != nil {
			return session.Errorf(session.CodeConflict, "the outbox entry %s exists already", e.ID)
		}
	}
	return nil
}

// putEntries queues entries in t, leaving out those fired by events past
// session.MaxEventFirings (counted per call and automation in
// outbox_fired), and returns the entries queued and those left out.
func putEntries(t *wtx, entries []*session.OutboxEntry, encoded [][]byte) (queued, dropped []*session.OutboxEntry) {
	if len(entries) == 0 {
		return nil, nil
	}
	queued = make([]*session.OutboxEntry, 0, len(entries))
	for i, e := range entries {
		if name, ok := session.FiringCount(e); ok {
			key := append(callPrefix(e.CallID), name...)
			n := uint32(0)
			if v := t.get(bOutboxFired, key); len(v) == 4 {
				n = binary.BigEndian.Uint32(v)
			}
			if n >= session.MaxEventFirings {
				dropped = append(dropped, e)
				continue
			}
			t.put(bOutboxFired, key, binary.BigEndian.AppendUint32(nil, n+1))
		}
		t.put(bOutbox, []byte(e.ID), encoded[i])
		t.put(bOutboxCall, append(callPrefix(e.CallID), e.ID...), nil)
		if e.Pending() {
			t.put(bOutboxDue, timeKey(e.Due, e.ID), nil)
		}
		queued = append(queued, e)
	}
	return queued, dropped
}

func decodeEntry(raw []byte) (*session.OutboxEntry, error) {
	if raw == nil {
		return nil, fmt.Errorf("missing")
	}
	e := new(session.OutboxEntry)
	if err := json.Unmarshal(raw, e); err != nil {
		return nil, err
	}
	return e, nil
}

// callPrefix is call ID, 0x00: call IDs never hold 0x00.
func callPrefix(callID string) []byte {
	k := make([]byte, len(callID)+1, len(callID)+1+40)
	copy(k, callID)
	return k
}

// deleteFlowData deletes the flow state and outbox entries of a purged call.
func deleteFlowData(tx *bolt.Tx, callID string) error {
	if err := tx.Bucket(bucketNames[bFlowRuns]).Delete([]byte(callID)); err != nil {
		return err
	}
	box, due, byCall := tx.Bucket(bucketNames[bOutbox]), tx.Bucket(bucketNames[bOutboxDue]), tx.Bucket(bucketNames[bOutboxCall])
	prefix := callPrefix(callID)
	if err := deletePrefix(tx.Bucket(bucketNames[bOutboxFired]), prefix); err != nil {
		return err
	}
	var keys [][]byte
	cur := byCall.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		id := k[len(prefix):]
		if raw := box.Get(id); raw != nil {
			e, err := decodeEntry(raw)
			if err != nil {
				return fmt.Errorf("decode outbox entry %s: %w", id, err)
			}
			if e.Pending() {
				if err := due.Delete(timeKey(e.Due, e.ID)); err != nil {
					return err
				}
			}
		}
		if err := putAll(box.Delete(id), byCall.Delete(k)); err != nil {
			return err
		}
	}
	return nil
}

// deletePrefix deletes every key of b that starts with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	cur := b.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
