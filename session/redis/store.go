// Package redis implements session.Store on Redis, for several callctx
// nodes that share one Redis deployment (a single server, a Sentinel-managed
// primary, or a Cluster).
//
// Every write is one round trip: a Lua script that checks the version
// (If-Match), merges (null deletes; nothing changes, no version), enforces
// the limits from counters kept beside the variables, appends the history
// entry, updates the cross-call indexes and publishes a notice for the
// other nodes, atomically. A write is acknowledged only after Redis
// answered it; how durable that answer is depends on Redis' appendfsync
// (docs/redis.md).
//
// Keys (prefix "callctx:" by default) carry the call ID as a hash tag, so
// one call's keys share a Cluster slot:
//
//	callctx:{<id>}      string: the session (see blob.go)
//	callctx:{<id>}:h    list: history entries as JSON, version v at index v-1
//	callctx:{<id>}:c    hash: the call as JSON, its start (hex), state, end time, reason
//	callctx:{i}:calls   sorted set (by member): <start hex><id>, every call
//	callctx:{i}:active  the same, active calls
//	callctx:{i}:ended   the same, ended calls
//	callctx:{i}:byend   <end hex><start hex><id>, ended calls, for the sweep
//	callctx:{<id>}:f    string: the call's flow state (outbox.go)
//	callctx:{<id>}:o    hash: its outbox entries by ID
//	callctx:{o}:due     sorted set: pending outbox entries; :owner their claims, :nodes the leases
//	callctx:{o}:rpc:<n> list: requests for node n (rpc.go)
//
// The indexes span calls, so in Cluster mode they live in a slot of their
// own and cannot change in the same script as a call: there, creating and
// ending a call take separate, ordered steps (index first where a stale
// entry is harmless), and reads check every index entry against the call
// itself. See docs/redis.md.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/callctx/callctx/session"
	redis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

var (
	_ session.Store       = (*Store)(nil)
	_ session.EventSource = (*Store)(nil)
)

// Options say which Redis to use and how. Exactly one of URL,
// SentinelAddrs and ClusterAddrs is set.
type Options struct {
	// URL of a single server: redis://[user:password@]host:port[/db], or
	// rediss:// for TLS.
	URL string
	// SentinelMaster and SentinelAddrs select a Sentinel-managed primary.
	SentinelMaster   string
	SentinelAddrs    []string
	SentinelPassword string
	// ClusterAddrs are seed nodes of a Redis Cluster.
	ClusterAddrs []string
	// Username and Password authenticate with Redis (they override the
	// URL's).
	Username, Password string

	// Prefix starts every key and the event channel; DefaultPrefix when
	// empty. Several deployments can share one Redis with different
	// prefixes.
	Prefix string
	// PoolSize is the number of connections per Redis server;
	// DefaultPoolSize when 0.
	PoolSize int
	// DialTimeout bounds connecting, Timeout each command; the defaults
	// make a write against an unreachable Redis fail within seconds.
	DialTimeout time.Duration
	Timeout     time.Duration
	// ExpireAfter, when positive, puts a TTL on an ended call's keys, as a
	// safety net behind the retention sweep (make it longer than the
	// retention period).
	ExpireAfter time.Duration
	// NodeID names this node in event notices and outbox claims; random
	// when empty. Two live nodes must not share one.
	NodeID string
	// OutboxLease is how long this node's outbox claims outlive its last
	// heartbeat: after that, other nodes take its deliveries over.
	// DefaultOutboxLease when 0.
	OutboxLease time.Duration
	// SplitIndexes updates the cross-call indexes in separate steps, as
	// Cluster mode must. It is implied by ClusterAddrs; tests set it to run
	// that path against a single server.
	SplitIndexes bool
}

// Defaults for Options.
const (
	DefaultPrefix      = "callctx:"
	DefaultPoolSize    = 64
	DefaultDialTimeout = time.Second
	DefaultTimeout     = 2 * time.Second
)

// Store is the Redis session.Store. It is safe for concurrent use, and
// several Stores (on several nodes) may share one Redis.
type Store struct {
	rdb         redis.UniversalClient
	prefix      string
	channel     string
	node        string
	split       bool
	expireAfter time.Duration
	kCalls      string
	kActive     string
	kEnded      string
	kByEnd      string
	kDue        string // pending outbox entries (outbox.go)
	kOwner      string // their claims
	kLeases     string // the nodes' leases
	lease       time.Duration
	target      string // for logs: where Redis is, without credentials
	batch       *batcher
	stopBeat    chan struct{}
	beatDone    chan struct{}

	mu     sync.RWMutex // guards closed; held shared by operations in flight
	closed bool
}

// Open returns a store over the Redis that opts name. It does not wait for
// Redis to answer: a node may start while Redis is away, and Ping (the
// readiness check) says when it is back.
func Open(opts Options) (*Store, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redis prefix %q: braces are reserved for hash tags", opts.Prefix)
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = DefaultPoolSize
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.NodeID == "" {
		b := make([]byte, 8)
		rand.Read(b)
		opts.NodeID = hex.EncodeToString(b)
	}
	if strings.ContainsAny(opts.NodeID, " \t\r\n") {
		return nil, fmt.Errorf("redis node ID %q: no spaces", opts.NodeID)
	}
	u := &redis.UniversalOptions{
		Username:              opts.Username,
		Password:              opts.Password,
		SentinelPassword:      opts.SentinelPassword,
		MaxRetries:            -1, // a write is never sent twice: its first try may have committed
		DialTimeout:           opts.DialTimeout,
		DialerRetries:         1,
		ReadTimeout:           opts.Timeout,
		WriteTimeout:          opts.Timeout,
		PoolTimeout:           opts.Timeout,
		ContextTimeoutEnabled: true,
		PoolSize:              opts.PoolSize,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
	var target string
	n := 0
	if opts.URL != "" {
		n++
		o, err := redis.ParseURL(opts.URL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		u.Addrs, u.DB, u.TLSConfig = []string{o.Addr}, o.DB, o.TLSConfig
		if u.Username == "" {
			u.Username = o.Username
		}
		if u.Password == "" {
			u.Password = o.Password
		}
		target = o.Addr
	}
	if len(opts.SentinelAddrs) > 0 {
		n++
		if opts.SentinelMaster == "" {
			return nil, errors.New("redis sentinel: the master name is missing")
		}
		u.Addrs, u.MasterName = opts.SentinelAddrs, opts.SentinelMaster
		target = "sentinel " + opts.SentinelMaster + "@" + strings.Join(opts.SentinelAddrs, ",")
	}
	if len(opts.ClusterAddrs) > 0 {
		n++
		u.Addrs, u.IsClusterMode = opts.ClusterAddrs, true
		opts.SplitIndexes = true
		target = "cluster " + strings.Join(opts.ClusterAddrs, ",")
	}
	if n != 1 {
		return nil, errors.New("redis: give exactly one of a URL, Sentinel addresses or Cluster addresses")
	}
	p := opts.Prefix
	s := &Store{
		rdb:         redis.NewUniversalClient(u),
		prefix:      p,
		channel:     p + "events",
		node:        opts.NodeID,
		split:       opts.SplitIndexes,
		expireAfter: opts.ExpireAfter,
		kCalls:      p + "{i}:calls",
		kActive:     p + "{i}:active",
		kEnded:      p + "{i}:ended",
		kByEnd:      p + "{i}:byend",
		kDue:        p + "{o}:due",
		kOwner:      p + "{o}:owner",
		kLeases:     p + "{o}:nodes",
		lease:       opts.OutboxLease,
		target:      target,
		stopBeat:    make(chan struct{}),
		beatDone:    make(chan struct{}),
	}
	if s.lease <= 0 {
		s.lease = DefaultOutboxLease
	}
	s.batch = newBatcher(s.rdb, opts.Timeout)
	s.beat(false) // a node is alive once Open returns: other nodes may ask it at once
	go s.heartbeat(s.stopBeat, s.beatDone)
	return s, nil
}

// OutboxLease is how long this node's claim on its automations lasts
// without a heartbeat (Options.OutboxLease, or its default).
func (s *Store) OutboxLease() time.Duration { return s.lease }

// Target says which Redis the store uses, without credentials.
func (s *Store) Target() string { return s.target }

// NodeID returns the ID this node's event notices carry.
func (s *Store) NodeID() string { return s.node }

// callKey and histKey name a call's keys; the braces make the call ID the
// Cluster hash tag.
func (s *Store) sessKey(id string) string { return s.prefix + "{" + id + "}" }
func (s *Store) histKey(id string) string { return s.prefix + "{" + id + "}:h" }
func (s *Store) callKey(id string) string { return s.prefix + "{" + id + "}:c" }

// keys returns a call's keys in the order the scripts take them.
func (s *Store) keys(id string, more ...string) []string {
	return append([]string{s.sessKey(id), s.histKey(id), s.callKey(id)}, more...)
}

// begin registers an operation in flight; Close waits for it.
func (s *Store) begin() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return session.Errorf(session.CodeUnavailable, "the session store is closed")
	}
	return nil
}

func (s *Store) end() { s.mu.RUnlock() }

// Close closes the connections after the operations in flight finished.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stopBeat)
	<-s.beatDone
	s.batch.close()
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("close redis client: %w", err)
	}
	return nil
}

// Ping implements session.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	return storeErr("ping", s.rdb.Ping(ctx).Err())
}

// storeErr turns a Redis failure into a session error: CodeUnavailable when
// Redis cannot be reached or cannot serve right now (the client may retry),
// CodeInternal otherwise.
func storeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *session.Error
	if errors.As(err, &se) {
		return err
	}
	err = fmt.Errorf("%s: %w", op, err)
	if unavailable(err) {
		return &session.Error{Code: session.CodeUnavailable, Message: "the session store is unavailable; try again shortly", Err: err}
	}
	return session.Internal(err)
}

// unavailable reports whether err means Redis is unreachable, restarting,
// failing over or overloaded, rather than a bug.
func unavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout):
		return true
	}
	var rerr redis.Error // a reply from Redis: its code comes first
	if errors.As(err, &rerr) {
		code, _, _ := strings.Cut(rerr.Error(), " ")
		switch code {
		case "LOADING", "OOM", "MASTERDOWN", "CLUSTERDOWN", "READONLY", "TRYAGAIN", "BUSY", "NOREPLICAS", "MOVED", "ASK":
			return true
		}
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "i/o timeout")
}

func notFound(id string) error {
	return session.Errorf(session.CodeNotFound, "there is no call %s", id)
}

// hexTime is the index form of a time: 16 hex digits of Unix nanoseconds,
// which sort as the times do.
func hexTime(t time.Time) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	n := uint64(t.UnixNano())
	for i := 15; i >= 0; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

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

// jsonText returns v as JSON, without HTML escaping: values inside it
// (json.RawMessage) must stay byte for byte as they were written.
func jsonText(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", session.Internal(fmt.Errorf("encode %T: %w", v, err))
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// CreateCall implements session.Store. The outbox entries f gives are
// queued right after the call is stored, before CreateCall returns (see
// fire).
func (s *Store) CreateCall(ctx context.Context, c *session.Call, sess *session.Session, h *session.HistoryEntry, f *session.Firing) error {
	if err := s.createCall(ctx, c, sess, h); err != nil {
		return err
	}
	s.fire(ctx, c.ID, f, sess, h)
	return nil
}

// fire queues the outbox entries of a committed change (see
// session.Firing). Redis runs the write in a script that computes the
// session after it, which the entries depend on, so they go in a second
// round trip, before the write is acknowledged. When that fails the change
// stays committed and its automations are left to the event subscriber
// (the Firing is not Done).
func (s *Store) fire(ctx context.Context, callID string, f *session.Firing, sess *session.Session, h *session.HistoryEntry) {
	entries := f.Run(sess, h)
	if len(entries) > 0 {
		if err := s.queue(context.WithoutCancel(ctx), callID, nil, false, entries); err != nil {
			return
		}
	}
	f.Done(entries)
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
	callJSON, err := jsonText(c)
	if err != nil {
		return err
	}
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
		s.fire(ctx, callID, p.Firing, sess, h)
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
		s.fire(ctx, callID, p.Firing, sess, h)
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
func (s *Store) History(ctx context.Context, callID string, after uint64) ([]session.HistoryEntry, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	if after > 1<<40 {
		after = 1 << 40 // beyond any version; LRANGE wants an int64
	}
	pipe := s.rdb.Pipeline()
	exists := pipe.Exists(ctx, s.sessKey(callID))
	lr := pipe.LRange(ctx, s.histKey(callID), int64(after), -1)
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

// Purge implements session.Store. Several nodes may sweep at once: each
// call is counted by the node whose removal of its by-end entry succeeded.
func (s *Store) Purge(ctx context.Context, before time.Time, max int) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	defer s.end()
	members, err := s.rdb.ZRangeByLex(ctx, s.kByEnd, &redis.ZRangeBy{Min: "-", Max: "(" + hexTime(before), Count: int64(max)}).Result()
	if err != nil {
		return 0, storeErr("purge ended calls", err)
	}
	var valid []string
	for _, m := range members {
		if len(m) > 32 && isHex([]byte(m[:32])) {
			valid = append(valid, m)
		}
	}
	if len(valid) == 0 {
		return 0, nil
	}
	if !s.split {
		n := 0
		err := s.runPipelined(ctx, scriptPurge, func(pipe redis.Pipeliner, sha string) []*redis.Cmd {
			cmds := make([]*redis.Cmd, len(valid))
			for i, m := range valid {
				id := m[32:]
				cmds[i] = pipe.EvalSha(ctx, sha, s.keys(id, s.flowKey(id), s.entryKey(id), s.kCalls, s.kActive, s.kEnded, s.kByEnd, s.kDue, s.kOwner), m, id)
			}
			return cmds
		}, func(cmds []*redis.Cmd) {
			for _, c := range cmds {
				if v, _ := c.Int64(); v == 1 {
					n++
				}
			}
		})
		return n, storeErr("purge ended calls", err)
	}
	// Cluster mode: the calls' keys first, then the index entries, by-end
	// last, so that an interrupted sweep leaves work the next one finds.
	// Pending outbox entries of purged calls leave the index at the next
	// claim, which finds their data gone.
	outcome := make([]string, len(valid))
	err = s.runPipelined(ctx, scriptPurgeData, func(pipe redis.Pipeliner, sha string) []*redis.Cmd {
		cmds := make([]*redis.Cmd, len(valid))
		for i, m := range valid {
			id := m[32:]
			cmds[i] = pipe.EvalSha(ctx, sha, s.keys(id, s.flowKey(id), s.entryKey(id)), m[:16])
		}
		return cmds
	}, func(cmds []*redis.Cmd) {
		for i, c := range cmds {
			outcome[i], _ = c.Text()
		}
	})
	if err != nil {
		return 0, storeErr("purge ended calls", err)
	}
	n := 0
	err = s.runPipelined(ctx, scriptPurgeIndex, func(pipe redis.Pipeliner, sha string) []*redis.Cmd {
		cmds := make([]*redis.Cmd, len(valid))
		for i, m := range valid {
			both := "1"
			if outcome[i] == "stale" {
				both = "0"
			}
			cmds[i] = pipe.EvalSha(ctx, sha, []string{s.kCalls, s.kActive, s.kEnded, s.kByEnd}, m, both)
		}
		return cmds
	}, func(cmds []*redis.Cmd) {
		for i, c := range cmds {
			if v, _ := c.Int64(); v == 1 && outcome[i] != "stale" {
				n++
			}
		}
	})
	return n, storeErr("purge ended calls", err)
}

// runPipelined runs the EVALSHA commands that build queues in one
// pipeline and hands them to done. When Redis does not know the script
// (NOSCRIPT: after a restart), nothing ran: it loads the script and runs
// the pipeline again. build must be safe to run twice.
func (s *Store) runPipelined(ctx context.Context, sc *redis.Script, build func(redis.Pipeliner, string) []*redis.Cmd, done func([]*redis.Cmd)) error {
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds := build(pipe, sc.Hash())
		_, err := pipe.Exec(ctx)
		if err != nil && attempt == 0 && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			if err := s.loadScript(ctx, sc); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		done(cmds)
		return nil
	}
}

// loadScript loads a script (on every primary in Cluster mode).
func (s *Store) loadScript(ctx context.Context, sc *redis.Script) error {
	return sc.Load(ctx, s.rdb).Err()
}
