package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/callctx/callctx/session"
	redis "github.com/redis/go-redis/v9"
)

// safeName reports whether a variable name can be spliced into JSON and
// stored beside the '#' metadata fields: the domain allows only letters,
// digits, '_', '-' and '.', and this is the store's own check of that.
func safeName(name string) bool {
	if name == "" || name[0] == '#' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return false
		}
	}
	return true
}

// patchArgs appends the name, value pairs of a write to args; an empty
// value deletes.
func patchArgs(args []any, set map[string]json.RawMessage) ([]any, error) {
	for name, v := range set {
		if !safeName(name) {
			return nil, session.Internal(fmt.Errorf("variable name %q cannot be stored", name))
		}
		if v == nil {
			args = append(args, name, "")
		} else {
			args = append(args, name, []byte(v))
		}
	}
	return args, nil
}

// CreateCall implements session.Store. The outbox entries f gives are
// queued right after the call is stored, before CreateCall returns (see
// fire).
func (s *Store) CreateCall(ctx context.Context, c *session.Call, sess *session.Session, h *session.HistoryEntry, f *session.Firing) error {
	if err := s.createCall(ctx, c, sess, h); err != nil {
		return err
	}
	return s.fire(ctx, c.ID, f, sess, h)
}

// fire queues the outbox entries of a committed change (see
// session.Firing). Redis runs the write in a script that computes the
// session after it, which the entries depend on, so they go in a second
// round trip, before the write is acknowledged. When that fails, the write
// is committed but not acknowledged: its caller gets the error (an
// acknowledged write never lacks its automations).
func (s *Store) fire(ctx context.Context, callID string, f *session.Firing, sess *session.Session, h *session.HistoryEntry) error {
	entries := f.Fire(sess, h)
	if len(entries) == 0 {
		return nil
	}
	queued, err := s.queue(context.WithoutCancel(ctx), callID, nil, false, entries)
	if err != nil {
		return err
	}
	var dropped []*session.OutboxEntry
	if len(queued) < len(entries) {
		in := make(map[*session.OutboxEntry]bool, len(queued))
		for _, e := range queued {
			in[e] = true
		}
		for _, e := range entries {
			if !in[e] {
				dropped = append(dropped, e)
			}
		}
	}
	f.Done(queued, dropped)
	return nil
}

func (s *Store) createCall(ctx context.Context, c *session.Call, sess *session.Session, h *session.HistoryEntry) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	for name := range sess.Variables {
		if !safeName(name) {
			return session.Internal(fmt.Errorf("variable name %q cannot be stored", name))
		}
	}
	callJSON := string(c.AppendJSON(make([]byte, 0, 256)))
	histJSON := string(h.AppendJSON(nil))
	start := hexTime(c.StartedAt)
	args := []any{s.channel, s.node, c.ID, encodeBlob(sess), sess.Version, histJSON, callJSON, start, string(c.State)}
	member := start + c.ID
	// A call may be created ended (a redirected INVITE): then it is indexed
	// as ended at once.
	index := []redis.Z{{Member: member}}
	idxKeys := []string{s.kCalls, s.kActive}
	if c.State == session.StateEnded {
		endHex := hexTime(c.EndedAt)
		args = append(args, c.EndedAt.Format(time.RFC3339Nano), c.EndReason, endHex, s.expireAfter.Milliseconds())
		index = append(index, redis.Z{Member: endHex + member})
		idxKeys = []string{s.kCalls, s.kEnded, s.kByEnd}
	}
	keys := s.keys(c.ID)
	if s.split {
		// Index first: an entry whose call does not exist (yet) is skipped
		// by reads, while a call missing from the index would be invisible.
		_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.ZAdd(ctx, idxKeys[0], index[0])
			pipe.ZAdd(ctx, idxKeys[1], index[0])
			if len(idxKeys) == 3 {
				pipe.ZAdd(ctx, idxKeys[2], index[1])
			}
			return nil
		})
		if err != nil {
			return storeErr("index call", err)
		}
	} else {
		keys = append(keys, s.kCalls, s.kActive, s.kEnded, s.kByEnd)
	}
	res, err := s.evalSha(ctx, scriptCreate, keys, args...).Slice()
	if err != nil {
		return storeErr("create call", err)
	}
	if status, _ := res[0].(int64); status == 0 {
		if existing, _ := res[1].(string); s.split && existing != start {
			// Ours, added ahead of a create that was refused.
			s.rdb.ZRem(ctx, idxKeys[0], member)
			s.rdb.ZRem(ctx, idxKeys[1], member)
			if len(idxKeys) == 3 {
				s.rdb.ZRem(ctx, idxKeys[2], index[1].Member)
			}
		}
		return session.Errorf(session.CodeConflict, "a call with ID %s exists already", c.ID)
	}
	return nil
}

// writeArgs are the ARGV a write script shares: time as JSON, actor as
// JSON, time as text (the time as encoding/json writes a time.Time).
func writeArgs(p *session.Patch) (atJSON, actorJSON, at string) {
	at = p.At.Format(time.RFC3339Nano)
	return `"` + at + `"`, string(session.AppendJSONString(nil, p.Actor)), at
}

// scriptResult decodes {status, version, the session before, …}.
func scriptResult(id string, res []any) (status int64, version uint64, before *session.Session, err error) {
	status, _ = res[0].(int64)
	if status == 0 {
		return 0, 0, nil, nil
	}
	if len(res) < 3 {
		return 0, 0, nil, fmt.Errorf("unexpected script reply of %d items", len(res))
	}
	v, _ := res[1].(int64)
	blob, _ := res[2].(string)
	before, _, err = decodeBlob(id, blob)
	return status, uint64(v), before, err
}

// errDisagree reports a script whose verdict differs from the domain's
// rule: a bug, never expected.
func errDisagree(op, id string, status int64, ruleErr error) error {
	return session.Internal(fmt.Errorf("%s %s: the script's verdict %d disagrees with the domain rule (%v)", op, id, status, ruleErr))
}

// Apply implements session.Store. The outbox entries p.Firing gives are
// queued right after the write, before Apply returns (see fire).
func (s *Store) Apply(ctx context.Context, callID string, p *session.Patch) (*session.Session, *session.HistoryEntry, error) {
	sess, h, err := s.apply(ctx, callID, p)
	if err == nil && h != nil {
		if err := s.fire(ctx, callID, p.Firing, sess, h); err != nil {
			return nil, nil, err
		}
	}
	return sess, h, err
}

func (s *Store) apply(ctx context.Context, callID string, p *session.Patch) (*session.Session, *session.HistoryEntry, error) {
	if err := s.begin(); err != nil {
		return nil, nil, err
	}
	defer s.end()
	atJSON, actorJSON, at := writeArgs(p)
	lim := p.Limits.WithDefaults()
	allowEnded := "0"
	if p.AllowEnded {
		allowEnded = "1"
	}
	args := make([]any, 0, 10+2*len(p.Set))
	event := p.Event
	if event == "" {
		event = session.EventSessionUpdated
	}
	if !validEventType(string(event)) { // spliced into the history entry's JSON
		return nil, nil, session.Internal(fmt.Errorf("event type %q cannot be stored", event))
	}
	args = append(args, s.channel, s.node, callID, p.IfMatch, allowEnded, lim.MaxVariables, lim.MaxSessionBytes, atJSON, actorJSON, at, string(event))
	args, err := patchArgs(args, p.Set)
	if err != nil {
		return nil, nil, err
	}
	res, err := s.evalSha(ctx, scriptApply, s.keys(callID), args...).Slice()
	if err != nil {
		return nil, nil, storeErr("apply write", err)
	}
	status, version, sess, err := scriptResult(callID, res)
	if err != nil {
		return nil, nil, storeErr("apply write", err)
	}
	if status == 0 {
		return nil, nil, notFound(callID)
	}
	// The script decided and committed; the domain's rule, run on the
	// session as the script found it, gives the same result and the exact
	// error of every store.
	entry, ruleErr := p.Apply(sess)
	switch {
	case status == 1 && ruleErr != nil:
		return nil, nil, ruleErr
	case status == 2 && ruleErr == nil && entry == nil:
		return sess, nil, nil
	case status == 3 && ruleErr == nil && entry != nil && entry.Version == version:
		return sess, entry, nil
	}
	return nil, nil, errDisagree("apply write", callID, status, ruleErr)
}

// EndCall implements session.Store. p.Firing as for Apply.
func (s *Store) EndCall(ctx context.Context, callID string, at time.Time, reason string, p *session.Patch) (*session.Call, *session.Session, *session.HistoryEntry, bool, error) {
	c, sess, h, ended, err := s.endCall(ctx, callID, at, reason, p)
	if err == nil && ended {
		if err := s.fire(ctx, callID, p.Firing, sess, h); err != nil {
			return nil, nil, nil, false, err
		}
	}
	return c, sess, h, ended, err
}

func (s *Store) endCall(ctx context.Context, callID string, at time.Time, reason string, p *session.Patch) (*session.Call, *session.Session, *session.HistoryEntry, bool, error) {
	if err := s.begin(); err != nil {
		return nil, nil, nil, false, err
	}
	defer s.end()
	atJSON, actorJSON, pAt := writeArgs(p)
	endHex := hexTime(at)
	args := make([]any, 0, 10+2*len(p.Set))
	args = append(args, s.channel, s.node, callID, at.Format(time.RFC3339Nano), endHex, reason, atJSON, actorJSON, pAt, s.expireAfter.Milliseconds())
	args, err := patchArgs(args, p.Set)
	if err != nil {
		return nil, nil, nil, false, err
	}
	keys := s.keys(callID, s.flowKey(callID), s.entryKey(callID))
	var byEnd string // the by-end member this call adds ahead, in Cluster mode
	if s.split {
		// Index the end first: a by-end entry for a call that has not ended
		// is skipped by reads and dropped by the sweep, while an ended call
		// missing from it would never be purged.
		start, err := s.rdb.HGet(ctx, s.callKey(callID), "start").Result()
		if errors.Is(err, redis.Nil) {
			return nil, nil, nil, false, notFound(callID)
		}
		if err != nil {
			return nil, nil, nil, false, storeErr("end call", err)
		}
		byEnd = endHex + start + callID
		_, err = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.ZAdd(ctx, s.kByEnd, redis.Z{Member: byEnd})
			pipe.ZAdd(ctx, s.kEnded, redis.Z{Member: start + callID})
			return nil
		})
		if err != nil {
			return nil, nil, nil, false, storeErr("index end", err)
		}
	} else {
		keys = append(keys, s.kActive, s.kEnded, s.kByEnd)
	}
	res, err := s.evalSha(ctx, scriptEnd, keys, args...).Slice()
	if err != nil {
		return nil, nil, nil, false, storeErr("end call", err)
	}
	status, version, sess, err := scriptResult(callID, res)
	if err != nil {
		return nil, nil, nil, false, storeErr("end call", err)
	}
	if status == 0 {
		return nil, nil, nil, false, notFound(callID)
	}
	if len(res) != 8 {
		return nil, nil, nil, false, storeErr("end call", fmt.Errorf("unexpected script reply of %d items", len(res)))
	}
	f := make([]string, 5) // call JSON, start, end time, reason, end (hex)
	for i := range f {
		f[i], _ = res[3+i].(string)
	}
	c, err := decodeCall(callID, f[0], string(session.StateEnded), f[2], f[3])
	if err != nil {
		return nil, nil, nil, false, storeErr("end call", err)
	}
	if status == 2 {
		if s.split && f[4] != endHex {
			s.rdb.ZRem(ctx, s.kByEnd, byEnd) // ours was ahead of an end that had happened
		}
		return c, sess, nil, false, nil
	}
	if s.split {
		if err := s.rdb.ZRem(ctx, s.kActive, f[1]+callID).Err(); err != nil {
			return nil, nil, nil, false, storeErr("unindex active call", err)
		}
	}
	entry, ruleErr := p.Apply(sess)
	if ruleErr != nil || sess.Version != version {
		return nil, nil, nil, false, errDisagree("end call", callID, status, ruleErr)
	}
	sess.State = session.StateEnded
	return c, sess, entry, true, nil
}
