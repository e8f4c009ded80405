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
	"encoding/hex"
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

var _ session.SharedStore = (*Store)(nil)

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
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	u, target, err := opts.client()
	if err != nil {
		return nil, err
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

// withDefaults fills the zero fields of opts and checks the prefix and the
// node ID.
func (opts Options) withDefaults() (Options, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return opts, fmt.Errorf("redis prefix %q: braces are reserved for hash tags", opts.Prefix)
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
		return opts, fmt.Errorf("redis node ID %q: no spaces", opts.NodeID)
	}
	if len(opts.ClusterAddrs) > 0 {
		opts.SplitIndexes = true
	}
	return opts, nil
}

// client returns the client library's options for the one deployment opts
// name (a URL, Sentinel or Cluster), and where it is, without credentials,
// for logs.
func (opts Options) client() (u *redis.UniversalOptions, target string, err error) {
	u = &redis.UniversalOptions{
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
	n := 0
	if opts.URL != "" {
		n++
		o, err := redis.ParseURL(opts.URL)
		if err != nil {
			return nil, "", fmt.Errorf("redis url: %w", err)
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
			return nil, "", errors.New("redis sentinel: the master name is missing")
		}
		u.Addrs, u.MasterName = opts.SentinelAddrs, opts.SentinelMaster
		target = "sentinel " + opts.SentinelMaster + "@" + strings.Join(opts.SentinelAddrs, ",")
	}
	if len(opts.ClusterAddrs) > 0 {
		n++
		u.Addrs, u.IsClusterMode = opts.ClusterAddrs, true
		target = "cluster " + strings.Join(opts.ClusterAddrs, ",")
	}
	if n != 1 {
		return nil, "", errors.New("redis: give exactly one of a URL, Sentinel addresses or Cluster addresses")
	}
	return u, target, nil
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
	if full(err) {
		return &session.Error{Code: session.CodeStorageFull, Message: "the session store is out of memory (Redis maxmemory); nothing was written; try again later", Err: err}
	}
	if unavailable(err) {
		return &session.Error{Code: session.CodeUnavailable, Message: "the session store is unavailable; try again shortly", Err: err}
	}
	return session.Internal(err)
}

// full reports whether Redis refused a write for want of memory (maxmemory
// reached under the noeviction policy callctx needs).
func full(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "OOM ")
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
		case "LOADING", "MASTERDOWN", "MISCONF", "CLUSTERDOWN", "READONLY", "TRYAGAIN", "BUSY", "NOREPLICAS", "MOVED", "ASK":
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
