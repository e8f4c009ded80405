package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callctx/callctx/session"
	redis "github.com/redis/go-redis/v9"
)

// The outbox on Redis, shared by the nodes. A call's flow state and outbox
// entries live with the call ({id}:f, {id}:o). The pending entries are
// indexed in a slot of their own ({o}:due, by due time), beside the claims
// that say which node delivers each one ({o}:owner) and the nodes' leases
// ({o}:nodes). Every node renews its lease with a heartbeat.
//
// An entry is claimed by the node that queues it (its flow engine delivers
// what it queues). PendingOutbox returns the entries this node may deliver:
// its own, and those of nodes whose lease ran out, which it claims in the
// same atomic step. A node that dies (or stops) loses its lease, and the
// next node to ask takes its deliveries over. An attempt is recorded only
// by the entry's owner: a node that was taken for dead and comes back gets
// CodeConflict and drops the entry.
//
// So an entry is delivered by one node at a time. It can still be sent
// twice: when its owner dies after sending but before recording the
// attempt, or stays cut off from Redis longer than its lease while it
// sends. Every attempt carries the entry's ID as Idempotency-Key, so
// receivers can tell.

// DefaultOutboxLease is how long a node's claims outlive its last
// heartbeat.
const DefaultOutboxLease = 10 * time.Second

func (s *Store) flowKey(id string) string  { return s.prefix + "{" + id + "}:f" }
func (s *Store) entryKey(id string) string { return s.prefix + "{" + id + "}:o" }

// outboxKeys returns the keys of the outbox scripts for a call: its
// session, flow state and entries, then (outside Cluster mode) the pending
// index and the claims.
func (s *Store) outboxKeys(callID string) []string {
	k := []string{s.sessKey(callID), s.flowKey(callID), s.entryKey(callID)}
	if !s.split {
		k = append(k, s.kDue, s.kOwner)
	}
	return k
}

func member(e *session.OutboxEntry) string { return e.CallID + "/" + e.ID }

// dueScore is an entry's place in the pending index: its due time in
// microseconds, or "" for a finished entry.
func dueScore(e *session.OutboxEntry) string {
	if !e.Pending() {
		return ""
	}
	return strconv.FormatInt(e.Due.UnixMicro(), 10)
}

// SaveFlowRun implements session.Store.
func (s *Store) SaveFlowRun(ctx context.Context, callID string, state []byte, queue []*session.OutboxEntry) error {
	for _, e := range queue {
		if e.CallID != callID {
			return session.Internal(fmt.Errorf("save flow run of %s: an outbox entry of call %s", callID, e.CallID))
		}
	}
	_, err := s.queue(ctx, callID, state, true, queue)
	return err
}

// EnqueueOutbox implements session.Store. Entries of several calls are
// checked first and then queued call by call: unlike bbolt, a failure of
// Redis part-way can leave the entries of some calls queued.
func (s *Store) EnqueueOutbox(ctx context.Context, entries []*session.OutboxEntry) ([]*session.OutboxEntry, error) {
	calls, byCall := session.GroupByCall(entries)
	if len(calls) > 1 {
		if err := s.checkNewEntries(ctx, byCall); err != nil {
			return nil, err
		}
	}
	var queued []*session.OutboxEntry
	for _, id := range calls {
		q, err := s.queue(ctx, id, nil, false, byCall[id])
		if err != nil {
			return nil, err
		}
		queued = append(queued, q...)
	}
	return queued, nil
}

// checkNewEntries refuses a batch of several calls' entries before any is
// queued: CodeNotFound for a missing call, CodeConflict for an existing ID.
func (s *Store) checkNewEntries(ctx context.Context, byCall map[string][]*session.OutboxEntry) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	pipe := s.rdb.Pipeline()
	exists := map[string]*redis.IntCmd{}
	var dup []*redis.BoolCmd
	var dupIDs []string
	for id, es := range byCall {
		exists[id] = pipe.Exists(ctx, s.sessKey(id))
		for _, e := range es {
			dup = append(dup, pipe.HExists(ctx, s.entryKey(id), e.ID))
			dupIDs = append(dupIDs, e.ID)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return storeErr("enqueue outbox", err)
	}
	for id, c := range exists {
		if c.Val() == 0 {
			return notFound(id)
		}
	}
	for i, c := range dup {
		if c.Val() {
			return session.Errorf(session.CodeConflict, "the outbox entry %s exists already", dupIDs[i])
		}
	}
	return nil
}

// queue stores a call's flow state (when withState) and queues its entries,
// claimed by this node, leaving out those fired by events past
// session.MaxEventFirings; it returns those it queued.
func (s *Store) queue(ctx context.Context, callID string, state []byte, withState bool, entries []*session.OutboxEntry) ([]*session.OutboxEntry, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	flag := "0"
	if withState {
		flag = "1"
	}
	args := make([]any, 0, 5+4*len(entries))
	args = append(args, s.node, flag, state, callID, session.MaxEventFirings)
	var pending []redis.Z
	for _, e := range entries {
		if e.ID == "" || strings.Contains(e.ID, "/") || strings.HasPrefix(e.ID, "#") {
			return nil, session.Internal(fmt.Errorf("outbox entry ID %q cannot be stored", e.ID))
		}
		js, err := session.EncodeJSON(e)
		if err != nil {
			return nil, session.Internal(fmt.Errorf("encode outbox entry: %w", err))
		}
		counted, ok := session.FiringCount(e)
		if !ok {
			counted = ""
		}
		args = append(args, e.ID, js, dueScore(e), counted)
		if e.Pending() {
			pending = append(pending, redis.Z{Score: float64(e.Due.UnixMicro()), Member: member(e)})
		}
	}
	if s.split && len(pending) > 0 {
		// Index (claimed) first: an index entry without data is dropped by
		// the next claim; an entry missing from the index would never go out.
		_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.ZAdd(ctx, s.kDue, pending...)
			for _, z := range pending {
				pipe.HSet(ctx, s.kOwner, z.Member, s.node)
			}
			return nil
		})
		if err != nil {
			return nil, storeErr("index outbox", err)
		}
	}
	res, err := s.evalSha(ctx, scriptSaveRun, s.outboxKeys(callID), args...).Result()
	if err != nil {
		return nil, storeErr("save flow run", err)
	}
	switch r := res.(type) {
	case int64:
		if s.split {
			s.dropIndex(ctx, pending)
		}
		return nil, notFound(callID)
	case []any:
		if n, _ := r[0].(int64); n < 0 {
			id, _ := r[1].(string)
			return nil, session.Errorf(session.CodeConflict, "the outbox entry %s exists already", id)
		}
		left := map[string]bool{}
		for _, id := range r[1:] {
			eid, _ := id.(string)
			left[eid] = true
		}
		queued := make([]*session.OutboxEntry, 0, len(entries))
		var unindex []redis.Z
		for _, e := range entries {
			if !left[e.ID] {
				queued = append(queued, e)
			} else if s.split && e.Pending() {
				unindex = append(unindex, redis.Z{Member: member(e)})
			}
		}
		if len(unindex) > 0 {
			s.dropIndex(ctx, unindex)
		}
		return queued, nil
	}
	return nil, session.Internal(fmt.Errorf("save flow run: unexpected reply %T", res))
}

// dropIndex removes index entries this node added ahead of a refused write.
func (s *Store) dropIndex(ctx context.Context, pending []redis.Z) {
	for _, z := range pending {
		m := z.Member.(string)
		s.rdb.ZRem(ctx, s.kDue, m)
		s.rdb.HDel(ctx, s.kOwner, m)
	}
}

// FlowRun implements session.Store.
func (s *Store) FlowRun(ctx context.Context, callID string) ([]byte, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	cmd := redis.NewStringCmd(ctx, "get", s.flowKey(callID))
	err := s.batch.do(ctx, cmd)
	if errors.Is(err, redis.Nil) {
		return nil, session.Errorf(session.CodeNotFound, "the call %s has no flow run", callID)
	}
	if err != nil {
		return nil, storeErr("read flow run", err)
	}
	return []byte(cmd.Val()), nil
}

// UpdateOutbox implements session.Store. Only the node that has claimed an
// entry records its attempts: CodeConflict for another node.
func (s *Store) UpdateOutbox(ctx context.Context, e *session.OutboxEntry) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	js, err := session.EncodeJSON(e)
	if err != nil {
		return session.Internal(fmt.Errorf("encode outbox entry: %w", err))
	}
	m, due := member(e), dueScore(e)
	gone := session.Errorf(session.CodeNotFound, "there is no outbox entry %s", e.ID)
	taken := session.Errorf(session.CodeConflict, "the outbox entry %s is delivered by another node now", e.ID)
	if !s.split {
		r, err := s.evalSha(ctx, scriptUpdateEntry, s.outboxKeys(e.CallID), s.node, m, e.ID, js, due).Int64()
		switch {
		case err != nil:
			return storeErr("update outbox", err)
		case r == 0:
			return gone
		case r < 0:
			return taken
		}
		return nil
	}
	// Cluster mode: the claim, then the data, then the index; an
	// interruption leaves the index pointing at data that says what
	// happened, and the next claim goes by the data.
	if r, err := s.evalSha(ctx, scriptUpdateIndex, []string{s.kDue, s.kOwner}, s.node, m, "check").Int64(); err != nil {
		return storeErr("update outbox", err)
	} else if r < 0 {
		return taken
	}
	r, err := s.evalSha(ctx, scriptUpdateData, []string{s.entryKey(e.CallID)}, e.ID, js).Int64()
	if err != nil {
		return storeErr("update outbox", err)
	}
	if r == 0 {
		s.dropIndex(ctx, []redis.Z{{Member: m}})
		return gone
	}
	if r, err := s.evalSha(ctx, scriptUpdateIndex, []string{s.kDue, s.kOwner}, s.node, m, due).Int64(); err != nil {
		return storeErr("update outbox", err)
	} else if r < 0 {
		return taken
	}
	return nil
}

// PendingOutbox implements session.Store: the pending entries this node
// may deliver now, soonest due first. It renews this node's lease and
// claims the entries of nodes whose lease ran out; a flow engine on a
// shared store calls it now and then to take over from nodes that died.
func (s *Store) PendingOutbox(ctx context.Context) ([]*session.OutboxEntry, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	members, err := s.evalSha(ctx, scriptClaim, []string{s.kDue, s.kOwner, s.kLeases}, s.node, s.lease.Milliseconds()).StringSlice()
	if err != nil {
		return nil, storeErr("claim outbox", err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	type ref struct{ member, callID, id string }
	refs := make([]ref, 0, len(members))
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, 0, len(members))
	for _, m := range members {
		callID, id, ok := strings.Cut(m, "/")
		if !ok {
			continue
		}
		refs = append(refs, ref{m, callID, id})
		cmds = append(cmds, pipe.HMGet(ctx, s.entryKey(callID), id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, storeErr("read pending outbox", err)
	}
	out := make([]*session.OutboxEntry, 0, len(refs))
	var stale []redis.Z
	for i, r := range refs {
		js, ok := cmds[i].Val()[0].(string)
		e := new(session.OutboxEntry)
		if ok {
			if err := json.Unmarshal([]byte(js), e); err != nil {
				return nil, storeErr("read pending outbox", fmt.Errorf("decode outbox entry %s: %w", r.id, err))
			}
		}
		if !ok || !e.Pending() {
			// Purged with its call, or finished by a step the index missed.
			stale = append(stale, redis.Z{Member: r.member})
			continue
		}
		out = append(out, e)
	}
	if len(stale) > 0 {
		s.dropIndex(ctx, stale)
	}
	slices.SortStableFunc(out, func(a, b *session.OutboxEntry) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// CallOutbox implements session.Store.
func (s *Store) CallOutbox(ctx context.Context, callID string) ([]*session.OutboxEntry, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	pipe := s.rdb.Pipeline()
	exists := pipe.Exists(ctx, s.sessKey(callID))
	all := pipe.HGetAll(ctx, s.entryKey(callID))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, storeErr("read call outbox", err)
	}
	if exists.Val() == 0 {
		return nil, notFound(callID)
	}
	out := make([]*session.OutboxEntry, 0, len(all.Val()))
	for id, js := range all.Val() {
		if strings.HasPrefix(id, "#") {
			continue // a count (scriptSaveRun)
		}
		e := new(session.OutboxEntry)
		if err := json.Unmarshal([]byte(js), e); err != nil {
			return nil, storeErr("read call outbox", fmt.Errorf("decode outbox entry %s: %w", id, err))
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *session.OutboxEntry) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// beat renews this node's lease once, or ends it when end is set; a
// failure is left to the next beat (or, if Redis stays away, to the lease
// running out).
func (s *Store) beat(end bool) {
	ms := s.lease.Milliseconds()
	if end {
		ms = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.lease/3)
	defer cancel()
	scriptHeartbeat.Run(ctx, s.rdb, []string{s.kLeases}, s.node, ms)
}

// heartbeat renews this node's lease until stop is closed, then ends it,
// so that the other nodes take its deliveries over at once.
func (s *Store) heartbeat(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			s.beat(true)
			return
		case <-t.C:
			s.beat(false)
		}
	}
}
