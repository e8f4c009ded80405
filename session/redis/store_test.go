package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/redis"
	"github.com/callctx/callctx/session/redis/redistest"
	"github.com/callctx/callctx/session/storetest"
)

// shared is the redis-server the package's tests share, started by the
// first test that needs it; each store gets a prefix of its own, so tests
// never see each other's keys.
var shared struct {
	once sync.Once
	srv  *redistest.Server
	err  error
}

// server returns the shared redis-server, starting it on first use. Without
// redis-server the test ends as redistest.Need says.
func server(tb testing.TB) *redistest.Server {
	tb.Helper()
	redistest.Need(tb)
	shared.once.Do(func() { shared.srv, shared.err = redistest.Start(redistest.Options{}) })
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.srv
}

func TestMain(m *testing.M) {
	redis.LogTo(slog.New(slog.DiscardHandler)) // the tests kill Redis on purpose: no dial-failure noise
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Close()
	}
	os.Exit(code)
}

var prefixes atomic.Int64

// sharedPrefix returns a fresh key prefix for stores that must share one
// (several nodes of one test), so that a test run again (-count) starts clean.
func sharedPrefix(name string) string { return fmt.Sprintf("%s%d:", name, prefixes.Add(1)) }

// MustOpenStore opens a store on the shared server (or as opts say) under
// a fresh prefix, and checks its invariants when the test ends.
func MustOpenStore(tb testing.TB, opts redis.Options) *redis.Store {
	tb.Helper()
	if opts.URL == "" && len(opts.ClusterAddrs) == 0 && len(opts.SentinelAddrs) == 0 {
		opts.URL = server(tb).URL()
	}
	if opts.Prefix == "" {
		opts.Prefix = fmt.Sprintf("t%d:", prefixes.Add(1))
	}
	st, err := redis.Open(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		st.Close()
		opts.Timeout, opts.DialTimeout = 0, 0 // the defaults, whatever the test tried
		re, err := redis.Open(opts)           // the suite closes the store it was given
		if err != nil {
			tb.Fatalf("reopen for check: %v", err)
		}
		defer re.Close()
		if err := re.Check(context.Background()); err != nil {
			tb.Errorf("consistency check: %v", err)
		}
	})
	return st
}

func TestStore_Contract(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) session.Store { return MustOpenStore(t, redis.Options{}) })
}

// TestStore_ContractSplitIndexes runs the contract over the Cluster-mode
// way of keeping the indexes, on a single server.
func TestStore_ContractSplitIndexes(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) session.Store { return MustOpenStore(t, redis.Options{SplitIndexes: true}) })
}

// TestStore_ContractCluster runs the contract on a real three-node Redis
// Cluster: keys of one call share a slot, the indexes live in another.
func TestStore_ContractCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	storetest.TestStore(t, func(t *testing.T) session.Store {
		return MustOpenStore(t, redis.Options{ClusterAddrs: c.Addrs()})
	})
}

// TestStore_ContractSentinel runs the contract through a Sentinel that
// names the primary.
func TestStore_ContractSentinel(t *testing.T) {
	primary := redistest.MustStart(t, redistest.Options{})
	sentinel := redistest.StartSentinel(t, "callctx", primary)
	storetest.TestStore(t, func(t *testing.T) session.Store {
		return MustOpenStore(t, redis.Options{SentinelMaster: "callctx", SentinelAddrs: []string{sentinel.Addr()}})
	})
}

// TestStore_SentinelFailover: the primary dies; Sentinel promotes its
// replica, and the same store carries on against it by itself. Writes
// that reached the replica before the crash are there; replication is
// asynchronous, so later ones could be lost (docs/redis.md).
func TestStore_SentinelFailover(t *testing.T) {
	primary := redistest.MustStart(t, redistest.Options{})
	replica := redistest.MustStart(t, redistest.Options{Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.Port)}})
	sentinel := redistest.StartSentinel(t, "callctx", primary)
	st := MustOpenStore(t, redis.Options{SentinelMaster: "callctx", SentinelAddrs: []string{sentinel.Addr()},
		Timeout: 500 * time.Millisecond, DialTimeout: 500 * time.Millisecond})
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		if _, _, err := svc.Merge(ctx, c.ID, vars(`{"ivr.n":`+strconv.Itoa(i)+`}`), client); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the replica has every write, then crash the primary.
	for deadline := time.Now().Add(20 * time.Second); ; {
		info, _ := redistest.Command(replica.Addr(), "INFO", "replication")
		if strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica does not follow the primary: %s", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := redistest.Command(primary.Addr(), "WAIT", "1", "3000"); err != nil || n != ":1" {
		t.Fatalf("WAIT: %q, %v", n, err)
	}
	primary.Kill()
	deadline := time.Now().Add(30 * time.Second)
	var s *session.Session
	for {
		s, _, err = svc.Merge(ctx, c.ID, vars(`{"ivr.after":true}`), client)
		if err == nil {
			break
		}
		if code := session.ErrorCode(err); code != session.CodeUnavailable {
			t.Fatalf("during the failover: %v, want unavailable", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failover within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if string(s.Variables["ivr.n"]) != "10" || s.Version != 12 {
		t.Fatalf("after the failover: version %d, ivr.n=%s; want 12 and 10", s.Version, s.Variables["ivr.n"])
	}
	if role, _ := redistest.Command(replica.Addr(), "ROLE"); role == "" {
		t.Fatal("the replica does not answer")
	}
}
