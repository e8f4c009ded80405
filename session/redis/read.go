package redis

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/callctx/callctx/session"
	redis "github.com/redis/go-redis/v9"
)

// decodeCall returns the call a call's hash describes.
func decodeCall(id, callJSON, state, endedAt, reason string) (*session.Call, error) {
	c := new(session.Call)
	if err := json.Unmarshal([]byte(callJSON), c); err != nil {
		return nil, fmt.Errorf("decode call %s: %w", id, err)
	}
	if session.State(state) == session.StateEnded {
		t, err := time.Parse(time.RFC3339Nano, endedAt)
		if err != nil {
			return nil, fmt.Errorf("call %s: endedAt: %w", id, err)
		}
		c.State, c.EndedAt, c.EndReason = session.StateEnded, t, reason
	}
	return c, nil
}

// callFields are the fields of a call's hash that make the call.
var callFields = []string{"call", "state", "ended", "reason", "start"}

// callFromFields decodes HMGET callFields; nil when the call is gone.
func callFromFields(id string, f []any) (c *session.Call, start string, err error) {
	callJSON, ok := f[0].(string)
	if !ok {
		return nil, "", nil
	}
	st, _ := f[1].(string)
	e, _ := f[2].(string)
	r, _ := f[3].(string)
	start, _ = f[4].(string)
	c, err = decodeCall(id, callJSON, st, e, r)
	return c, start, err
}

// Call implements session.Store.
func (s *Store) Call(ctx context.Context, id string) (*session.Call, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	args := make([]any, 0, 2+len(callFields))
	args = append(args, "hmget", s.callKey(id))
	for _, f := range callFields {
		args = append(args, f)
	}
	cmd := redis.NewSliceCmd(ctx, args...)
	if err := s.batch.do(ctx, cmd); err != nil {
		return nil, storeErr("read call", err)
	}
	c, _, err := callFromFields(id, cmd.Val())
	if err == nil && c == nil {
		return nil, notFound(id)
	}
	return c, storeErr("read call", err)
}

// sessionBlob reads a session's stored string.
func (s *Store) sessionBlob(ctx context.Context, callID string) (string, error) {
	if err := s.begin(); err != nil {
		return "", err
	}
	defer s.end()
	cmd := redis.NewStringCmd(ctx, "get", s.sessKey(callID))
	err := s.batch.do(ctx, cmd)
	if errors.Is(err, redis.Nil) {
		return "", notFound(callID)
	}
	if err != nil {
		return "", storeErr("read session", err)
	}
	return cmd.Val(), nil
}

// Session implements session.Store.
func (s *Store) Session(ctx context.Context, callID string) (*session.Session, error) {
	blob, err := s.sessionBlob(ctx, callID)
	if err != nil {
		return nil, err
	}
	sess, _, err := decodeBlob(callID, blob)
	return sess, storeErr("read session", err)
}

// SessionJSON implements session.Store.
func (s *Store) SessionJSON(ctx context.Context, callID string) ([]byte, uint64, error) {
	blob, err := s.sessionBlob(ctx, callID)
	if err != nil {
		return nil, 0, err
	}
	js, version, err := blobJSON(callID, blob)
	return js, version, storeErr("read session", err)
}

// ActiveCalls returns how many calls are active, from the active index
// (for the callctx_calls_active gauge). In Cluster mode an interrupted
// end can leave an entry there for a while, so the count may be a little
// high.
func (s *Store) ActiveCalls(ctx context.Context) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	defer s.end()
	n, err := s.rdb.ZCard(ctx, s.kActive).Result()
	return int(n), storeErr("count active calls", err)
}

// History implements session.Store.
func (s *Store) History(ctx context.Context, callID string, after uint64, limit int) ([]session.HistoryEntry, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	if after > 1<<40 {
		after = 1 << 40 // beyond any version; LRANGE wants an int64
	}
	stop := int64(-1)
	if limit > 0 {
		stop = int64(after) + int64(limit) - 1
	}
	pipe := s.rdb.Pipeline()
	exists := pipe.Exists(ctx, s.sessKey(callID))
	lr := pipe.LRange(ctx, s.histKey(callID), int64(after), stop)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, storeErr("read history", err)
	}
	if exists.Val() == 0 {
		return nil, notFound(callID)
	}
	entries, err := decodeHistory(callID, lr.Val())
	if err != nil {
		return nil, storeErr("read history", err)
	}
	return entries, nil
}

// decodeHistory decodes the history entries LRANGE returned.
func decodeHistory(callID string, raw []string) ([]session.HistoryEntry, error) {
	entries := make([]session.HistoryEntry, len(raw))
	for i, js := range raw {
		if err := json.Unmarshal([]byte(js), &entries[i]); err != nil {
			return nil, fmt.Errorf("decode history %s: %w", callID, err)
		}
	}
	return entries, nil
}

// errBadCursor is the error of a cursor that no page handed out.
var errBadCursor = &session.Error{Code: session.CodeInvalid, Message: "the cursor is not valid", Fields: []session.FieldError{{Name: "cursor", Message: "pass the next value of a previous page unchanged"}}}

// ListCalls implements session.Store. Each index entry is checked against
// the call it names: an entry whose call is gone, started at another time
// or is in another state is skipped (Cluster mode can leave such entries
// behind an interrupted write).
func (s *Store) ListCalls(ctx context.Context, opts session.ListOptions) (*session.CallPage, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	upper := "+"
	if opts.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(opts.Cursor)
		if err != nil || len(b) <= 16 || !isHex(b[:16]) {
			return nil, errBadCursor
		}
		upper = "(" + string(b)
	}
	index := s.kCalls
	switch opts.State {
	case session.FilterActive, "":
		index = s.kActive
	case session.FilterEnded:
		index = s.kEnded
	}
	page := &session.CallPage{Items: []*session.Call{}}
	last := ""
	batch := int64(opts.Limit + 1)
	for {
		members, err := s.rdb.ZRevRangeByLex(ctx, index, &redis.ZRangeBy{Max: upper, Min: "-", Count: batch}).Result()
		if err != nil {
			return nil, storeErr("list calls", err)
		}
		if len(members) == 0 {
			return page, nil
		}
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(members))
		for i, m := range members {
			cmds[i] = pipe.HMGet(ctx, s.callKey(m[16:]), callFields...)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, storeErr("list calls", err)
		}
		for i, m := range members {
			c, start, err := callFromFields(m[16:], cmds[i].Val())
			if err != nil {
				return nil, storeErr("list calls", err)
			}
			if c == nil || start != m[:16] || (opts.State == session.FilterActive || opts.State == "") && c.State != session.StateActive ||
				opts.State == session.FilterEnded && c.State != session.StateEnded {
				continue
			}
			if len(page.Items) == opts.Limit {
				page.Next = base64.RawURLEncoding.EncodeToString([]byte(last))
				return page, nil
			}
			page.Items = append(page.Items, c)
			last = m
		}
		if int64(len(members)) < batch {
			return page, nil
		}
		upper = "(" + members[len(members)-1]
	}
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
