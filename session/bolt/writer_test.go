package bolt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
)

// commitLog records what Options.OnCommit reports.
type commitLog struct {
	mu      sync.Mutex
	batches []int
	took    []time.Duration
}

func (l *commitLog) observe(writes int, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = append(l.batches, writes)
	l.took = append(l.took, took)
}

func (l *commitLog) snapshot() ([]int, []time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.batches...), append([]time.Duration(nil), l.took...)
}

func openObserved(t *testing.T, opts bolt.Options) (*session.Service, *bolt.Store, *commitLog) {
	t.Helper()
	log := &commitLog{}
	opts.OnCommit = log.observe
	st := bolttest.MustOpen(t, opts)
	return session.NewService(st, session.Options{}), st, log
}

// createWriteEnd runs a call's three store writes one after the other:
// its creation, one variable, its end.
func createWriteEnd(t *testing.T, svc *session.Service) {
	t.Helper()
	ctx := context.Background()
	client := session.WriteOptions{Actor: "test", Origin: session.OriginClient}
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Merge(ctx, c.ID, map[string]json.RawMessage{"ivr.x": json.RawMessage(`1`)}, client); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.EndCall(ctx, c.ID, "", "test"); err != nil {
		t.Fatal(err)
	}
}

// TestStore_OnWrite: each write reports its time in the store once, and
// that time holds its commit: a lone write waits for nothing else, so it
// took at least as long as the commit that made it durable.
func TestStore_OnWrite(t *testing.T) {
	var mu sync.Mutex
	var writes []time.Duration
	svc, _, log := openObserved(t, bolt.Options{OnWrite: func(took time.Duration) {
		mu.Lock()
		writes = append(writes, took)
		mu.Unlock()
	}})
	createWriteEnd(t, svc)
	_, commits := log.snapshot()
	mu.Lock()
	defer mu.Unlock()
	if len(writes) != len(commits) || len(writes) != 3 {
		t.Fatalf("%d writes reported, %d commits, want 3 of each", len(writes), len(commits))
	}
	for i := range writes {
		if writes[i] < commits[i] {
			t.Errorf("write %d: %v in the store, less than its commit's %v", i, writes[i], commits[i])
		}
	}
}

func TestStore_OnCommit(t *testing.T) {
	ctx := context.Background()

	t.Run("OneWriteOneCommit", func(t *testing.T) {
		svc, _, log := openObserved(t, bolt.Options{})
		createWriteEnd(t, svc)
		batches, took := log.snapshot()
		if got, want := fmt.Sprint(batches), "[1 1 1]"; got != want {
			t.Fatalf("batches=%s, want %s", got, want)
		}
		for i, d := range took {
			if d <= 0 {
				t.Errorf("commit %d took %v, want > 0 (an fsync happened)", i, d)
			}
		}
	})

	// Concurrent writers share commits: every write is counted exactly once,
	// and some commit held more than one, without any delay to tune.
	t.Run("ConcurrentWritesShareCommits", func(t *testing.T) {
		svc, _, log := openObserved(t, bolt.Options{})
		const writers, each = 32, 8
		ids := concurrently(t, svc, writers, each, false)
		batches, _ := log.snapshot()
		total, biggest := 0, 0
		for _, n := range batches {
			total += n
			biggest = max(biggest, n)
		}
		if got, want := total, writers+writers*each; got != want {
			t.Fatalf("writes counted=%d, want %d", got, want)
		}
		if biggest < 2 {
			t.Fatalf("largest commit=%d writes over %d commits; want concurrent writes to share one", biggest, len(batches))
		}
		for _, id := range ids {
			if sess, err := svc.Session(ctx, id); err != nil || sess.Version != 1+each {
				t.Fatalf("call %s: %v, want version %d", id, err, 1+each)
			}
		}
	})

	// Writers racing on one session all get their write in, each its own
	// version: a write prepared on a version another write replaced is
	// prepared again.
	t.Run("OneSessionManyWriters", func(t *testing.T) {
		svc, _, _ := openObserved(t, bolt.Options{})
		const writers, each = 16, 8
		id := concurrently(t, svc, writers, each, true)[0]
		sess, err := svc.Session(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sess.Version, uint64(1+writers*each); got != want || len(sess.Variables) < writers {
			t.Fatalf("version=%d, want %d: every write its own version", got, want)
		}
	})
}

// concurrently has writers goroutines write each variables, into a call
// each or, with shared, all into one call, and returns the calls.
func concurrently(t *testing.T, svc *session.Service, writers, each int, shared bool) []string {
	t.Helper()
	ctx := context.Background()
	client := session.WriteOptions{Actor: "test", Origin: session.OriginClient}
	ids := make([]string, writers)
	for w := range ids {
		if w > 0 && shared {
			ids[w] = ids[0]
			continue
		}
		c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		if err != nil {
			t.Fatal(err)
		}
		ids[w] = c.ID
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				v := json.RawMessage(fmt.Sprint(i))
				if _, _, err := svc.Merge(ctx, ids[w], map[string]json.RawMessage{fmt.Sprintf("ivr.w%d", w): v}, client); err != nil {
					errs <- err
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if shared {
		return ids[:1]
	}
	return ids
}

// TestStore_GroupFailure: a write that fails in the store fails alone;
// the writes committed beside it stand.
func TestStore_GroupFailure(t *testing.T) {
	ctx := context.Background()
	st := MustOpenStore(t)
	svc := session.NewService(st, session.Options{})
	client := session.WriteOptions{Actor: "test", Origin: session.OriginClient}
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	const writers = 16
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w == 0 {
				// bbolt refuses a key this long: the store's own failure.
				huge := &session.Call{ID: strings.Repeat("x", 40000), State: session.StateActive, StartedAt: time.Now()}
				sess := &session.Session{CallID: huge.ID, State: session.StateActive, Version: 1}
				errs[w] = st.CreateCall(ctx, huge, sess, &session.HistoryEntry{Version: 1}, nil)
				return
			}
			_, _, errs[w] = svc.Merge(ctx, c.ID, map[string]json.RawMessage{fmt.Sprintf("ivr.w%d", w): json.RawMessage(`1`)}, client)
		}()
	}
	wg.Wait()
	if got, want := session.ErrorCode(errs[0]), session.CodeInternal; got != want {
		t.Fatalf("the failing write: %v, want code %s", errs[0], want)
	}
	for w, err := range errs[1:] {
		if err != nil {
			t.Fatalf("writer %d: %v", w+1, err)
		}
	}
	sess, err := svc.Session(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sess.Version, uint64(writers); got != want {
		t.Fatalf("version=%d, want %d", got, want)
	}
}

// TestStore_WriteAfterClose: a write to a closed store is refused as
// unavailable, not lost or hung.
func TestStore_WriteAfterClose(t *testing.T) {
	st := bolttest.MustOpen(t, bolt.Options{})
	st.Close()
	c := &session.Call{ID: "c1", State: session.StateActive, StartedAt: time.Now()}
	err := st.CreateCall(context.Background(), c, &session.Session{CallID: "c1", Version: 1}, &session.HistoryEntry{Version: 1}, nil)
	if got, want := session.ErrorCode(err), session.CodeUnavailable; got != want {
		t.Fatalf("CreateCall after Close: %v, want code %s", err, want)
	}
}

func TestStore_ActiveCalls(t *testing.T) {
	ctx := context.Background()
	client := session.WriteOptions{Actor: "test", Origin: session.OriginClient}
	svc, st, _ := openObserved(t, bolt.Options{})
	count := func() int {
		t.Helper()
		n, err := st.ActiveCalls(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, want := count(), 0; got != want {
		t.Fatalf("ActiveCalls=%d, want %d", got, want)
	}
	var ids []string
	for range 3 {
		c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	if _, err := svc.EndCall(ctx, ids[1], "", "test"); err != nil {
		t.Fatal(err)
	}
	if got, want := count(), 2; got != want {
		t.Fatalf("ActiveCalls=%d, want %d", got, want)
	}
}
