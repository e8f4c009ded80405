package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/redis"
	"github.com/callctx/callctx/session/redis/redistest"
	"github.com/callctx/callctx/session/storetest"
)

// server is the redis-server the package's tests share; each store gets a
// prefix of its own, so tests never see each other's keys.
var server *redistest.Server

func TestMain(m *testing.M) {
	redis.LogTo(slog.New(slog.DiscardHandler)) // the tests kill Redis on purpose: no dial-failure noise
	s, err := redistest.Start(redistest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

var prefixes atomic.Int64

// MustOpenStore opens a store on the shared server (or as opts say) under
// a fresh prefix, and checks its invariants when the test ends.
func MustOpenStore(tb testing.TB, opts redis.Options) *redis.Store {
	tb.Helper()
	if opts.URL == "" && len(opts.ClusterAddrs) == 0 && len(opts.SentinelAddrs) == 0 {
		opts.URL = server.URL()
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
		re, err := redis.Open(opts) // the suite closes the store it was given
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
	storetest.Run(t, func(t *testing.T) session.Store { return MustOpenStore(t, redis.Options{}) })
}

// TestStore_ContractSplitIndexes runs the contract over the Cluster-mode
// way of keeping the indexes, on a single server.
func TestStore_ContractSplitIndexes(t *testing.T) {
	storetest.Run(t, func(t *testing.T) session.Store { return MustOpenStore(t, redis.Options{SplitIndexes: true}) })
}

// TestStore_ContractCluster runs the contract on a real three-node Redis
// Cluster: keys of one call share a slot, the indexes live in another.
func TestStore_ContractCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	storetest.Run(t, func(t *testing.T) session.Store {
		return MustOpenStore(t, redis.Options{ClusterAddrs: c.Addrs()})
	})
}

// TestStore_ContractSentinel runs the contract through a Sentinel that
// names the primary.
func TestStore_ContractSentinel(t *testing.T) {
	primary := redistest.MustStart(t, redistest.Options{})
	sentinel := redistest.StartSentinel(t, "callctx", primary)
	storetest.Run(t, func(t *testing.T) session.Store {
		return MustOpenStore(t, redis.Options{SentinelMaster: "callctx", SentinelAddrs: []string{sentinel.Addr()}})
	})
}
