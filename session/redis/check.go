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
	want := map[string]map[string]bool{s.kCalls: {}, s.kActive: {}, s.kEnded: {}, s.kByEnd: {}, s.kDue: {}}
	var errs []error
	for _, key := range keys {
		id := strings.TrimSuffix(strings.TrimPrefix(key, s.prefix+"{"), "}")
		blob, err := s.rdb.Get(ctx, key).Result()
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		sess, h, err := decodeBlob(id, blob)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n, b := 0, 0
		for name, v := range sess.Variables {
			n++
			b += len(name) + len(v)
			if !json.Valid(v) {
				errs = append(errs, fmt.Errorf("call %s: %s is not JSON", id, name))
			}
		}
		if h.count != n || h.bytes != b {
			errs = append(errs, fmt.Errorf("call %s: the header says %d variables, %d bytes; there are %d, %d", id, h.count, h.bytes, n, b))
		}
		f, err := s.rdb.HMGet(ctx, s.callKey(id), callFields...).Result()
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		c, start, err := callFromFields(id, f)
		switch {
		case err != nil:
			errs = append(errs, err)
			continue
		case c == nil:
			errs = append(errs, fmt.Errorf("call %s: a session without its call", id))
			continue
		case c.State != sess.State:
			errs = append(errs, fmt.Errorf("call %s: the call is %s, its session %s", id, c.State, sess.State))
		case len(start) != 16 || !isHex([]byte(start)):
			errs = append(errs, fmt.Errorf("call %s: start %q", id, start))
		}
		hist, err := s.rdb.LRange(ctx, s.histKey(id), 0, -1).Result()
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		if uint64(len(hist)) != sess.Version {
			errs = append(errs, fmt.Errorf("call %s: version %d but %d history entries", id, sess.Version, len(hist)))
		}
		for i, js := range hist {
			var e struct{ Version uint64 }
			if err := json.Unmarshal([]byte(js), &e); err != nil || e.Version != uint64(i+1) {
				errs = append(errs, fmt.Errorf("call %s: history entry %d is not version %d (%v)", id, i, i+1, err))
			}
		}
		entries, err := s.rdb.HGetAll(ctx, s.entryKey(id)).Result()
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		for eid, js := range entries {
			if strings.HasPrefix(eid, "#") {
				continue // a count (scriptSaveRun)
			}
			var e session.OutboxEntry
			if err := json.Unmarshal([]byte(js), &e); err != nil || e.ID != eid || e.CallID != id {
				errs = append(errs, fmt.Errorf("call %s: outbox entry %s does not decode as its own (%v)", id, eid, err))
				continue
			}
			if e.Pending() {
				want[s.kDue][member(&e)] = true
			}
		}
		m0 := start + id
		want[s.kCalls][m0] = true
		switch sess.State {
		case session.StateActive:
			want[s.kActive][m0] = true
		case session.StateEnded:
			endHex, _ := s.rdb.HGet(ctx, s.callKey(id), "endhex").Result()
			want[s.kEnded][m0] = true
			want[s.kByEnd][endHex+m0] = true
		default:
			errs = append(errs, fmt.Errorf("call %s: state %q", id, sess.State))
		}
	}
	claims, err := s.rdb.HKeys(ctx, s.kOwner).Result()
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	for _, m := range claims {
		if !want[s.kDue][m] {
			errs = append(errs, fmt.Errorf("a claim on %q, which is not pending", m))
		}
	}
	for index, members := range want {
		got, err := s.rdb.ZRange(ctx, index, 0, -1).Result()
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		seen := map[string]bool{}
		for _, m := range got {
			seen[m] = true
			if !members[m] {
				errs = append(errs, fmt.Errorf("index %s holds %q, which no call matches", index, m))
			}
		}
		for m := range members {
			if !seen[m] {
				errs = append(errs, fmt.Errorf("index %s lacks %q", index, m))
			}
		}
	}
	return errors.Join(errs...)
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
