package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/callctx/callctx/session"
	redis "github.com/redis/go-redis/v9"
)

// Check verifies the store's invariants over every call under its prefix,
// as bbolt's consistency check does for that store: each session decodes
// and its counters match its variables, its call is there and agrees on
// the state, its history holds one entry per version, the indexes list
// exactly the calls they should, and the pending outbox and its claims
// exactly the pending entries.
// It reads every key, so it is for tests and for operators, not for a busy
// production Redis. In Cluster mode an interrupted create or end can leave
// index entries behind that reads skip; Check reports them.
func (s *Store) Check(ctx context.Context) error {
	keys, err := s.scanCalls(ctx)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	c := &checker{s: s, want: map[string]map[string]bool{s.kCalls: {}, s.kActive: {}, s.kEnded: {}, s.kByEnd: {}, s.kDue: {}}}
	for _, key := range keys {
		if err := c.call(ctx, key); err != nil {
			return fmt.Errorf("check: %w", err)
		}
	}
	if err := c.indexes(ctx); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	return errors.Join(c.errs...)
}

// checker is one run of Check: what it found wrong, and the members each
// index should hold according to the calls read so far. Its methods return
// only the errors of Redis itself.
type checker struct {
	s    *Store
	want map[string]map[string]bool // index key → members
	errs []error
}

func (c *checker) fail(format string, a ...any) { c.errs = append(c.errs, fmt.Errorf(format, a...)) }

// call checks the call whose session is at key: the session, its call,
// history and outbox; and notes the index members the call should have.
func (c *checker) call(ctx context.Context, key string) error {
	s := c.s
	id := strings.TrimSuffix(strings.TrimPrefix(key, s.prefix+"{"), "}")
	blob, err := s.rdb.Get(ctx, key).Result()
	if err != nil {
		return err
	}
	sess, h, err := decodeBlob(id, blob)
	if err != nil {
		c.errs = append(c.errs, err)
		return nil
	}
	c.variables(id, sess, h)
	start, ok, err := c.callHash(ctx, id, sess)
	if err != nil || !ok {
		return err
	}
	if err := c.history(ctx, id, sess.Version); err != nil {
		return err
	}
	if err := c.outbox(ctx, id); err != nil {
		return err
	}
	m := start + id
	c.want[s.kCalls][m] = true
	switch sess.State {
	case session.StateActive:
		c.want[s.kActive][m] = true
	case session.StateEnded:
		endHex, _ := s.rdb.HGet(ctx, s.callKey(id), "endhex").Result()
		c.want[s.kEnded][m] = true
		c.want[s.kByEnd][endHex+m] = true
	default:
		c.fail("call %s: state %q", id, sess.State)
	}
	return nil
}

// variables checks that each variable is JSON and that the blob's header
// counts them right.
func (c *checker) variables(id string, sess *session.Session, h blobHeader) {
	n, b := 0, 0
	for name, v := range sess.Variables {
		n++
		b += len(name) + len(v)
		if !json.Valid(v) {
			c.fail("call %s: %s is not JSON", id, name)
		}
	}
	if h.count != n || h.bytes != b {
		c.fail("call %s: the header says %d variables, %d bytes; there are %d, %d", id, h.count, h.bytes, n, b)
	}
}

// callHash checks the call beside the session and returns its start (the
// indexes' member prefix); ok is false when there is no call to go on with.
func (c *checker) callHash(ctx context.Context, id string, sess *session.Session) (start string, ok bool, err error) {
	f, err := c.s.rdb.HMGet(ctx, c.s.callKey(id), callFields...).Result()
	if err != nil {
		return "", false, err
	}
	call, start, err := callFromFields(id, f)
	switch {
	case err != nil:
		c.errs = append(c.errs, err)
		return "", false, nil
	case call == nil:
		c.fail("call %s: a session without its call", id)
		return "", false, nil
	case call.State != sess.State:
		c.fail("call %s: the call is %s, its session %s", id, call.State, sess.State)
	case len(start) != 16 || !isHex([]byte(start)):
		c.fail("call %s: start %q", id, start)
	}
	return start, true, nil
}

// history checks that the history holds one entry per version, in order.
func (c *checker) history(ctx context.Context, id string, version uint64) error {
	hist, err := c.s.rdb.LRange(ctx, c.s.histKey(id), 0, -1).Result()
	if err != nil {
		return err
	}
	if uint64(len(hist)) != version {
		c.fail("call %s: version %d but %d history entries", id, version, len(hist))
	}
	for i, js := range hist {
		var e struct{ Version uint64 }
		if err := json.Unmarshal([]byte(js), &e); err != nil || e.Version != uint64(i+1) {
			c.fail("call %s: history entry %d is not version %d (%v)", id, i, i+1, err)
		}
	}
	return nil
}

// outbox checks that the call's outbox entries decode as their own, and
// notes the pending ones as due.
func (c *checker) outbox(ctx context.Context, id string) error {
	entries, err := c.s.rdb.HGetAll(ctx, c.s.entryKey(id)).Result()
	if err != nil {
		return err
	}
	for eid, js := range entries {
		if strings.HasPrefix(eid, "#") {
			continue // a count (scriptSaveRun)
		}
		var e session.OutboxEntry
		if err := json.Unmarshal([]byte(js), &e); err != nil || e.ID != eid || e.CallID != id {
			c.fail("call %s: outbox entry %s does not decode as its own (%v)", id, eid, err)
			continue
		}
		if e.Pending() {
			c.want[c.s.kDue][member(&e)] = true
		}
	}
	return nil
}

// indexes checks that the outbox claims are on pending entries and that
// each index holds exactly the members the calls call for.
func (c *checker) indexes(ctx context.Context) error {
	s := c.s
	claims, err := s.rdb.HKeys(ctx, s.kOwner).Result()
	if err != nil {
		return err
	}
	for _, m := range claims {
		if !c.want[s.kDue][m] {
			c.fail("a claim on %q, which is not pending", m)
		}
	}
	for index, members := range c.want {
		got, err := s.rdb.ZRange(ctx, index, 0, -1).Result()
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, m := range got {
			seen[m] = true
			if !members[m] {
				c.fail("index %s holds %q, which no call matches", index, m)
			}
		}
		for m := range members {
			if !seen[m] {
				c.fail("index %s lacks %q", index, m)
			}
		}
	}
	return nil
}

// scanCalls returns the keys of every call's hash under the prefix.
func (s *Store) scanCalls(ctx context.Context) ([]string, error) {
	pattern := globEscape(s.prefix) + "{*}" // a session; the history ends in ":h", the call's hash in ":c", the indexes in ":<name>"
	scan := func(ctx context.Context, c redis.UniversalClient) ([]string, error) {
		var keys []string
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		return keys, it.Err()
	}
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return scan(ctx, s.rdb)
	}
	var mu sync.Mutex
	var all []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		keys, err := scan(ctx, c)
		mu.Lock()
		all = append(all, keys...)
		mu.Unlock()
		return err
	})
	return all, err
}

// globEscape escapes the characters SCAN's MATCH pattern treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
