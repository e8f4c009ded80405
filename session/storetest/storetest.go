// Package storetest is the contract every session.Store must meet, as
// exported tests in the manner of testing/fstest.TestFS: one TestXxx per
// part of the Store interface, each running one subtest per behaviour, and
// TestStore running them all. A store's tests call them with an Open that
// returns a fresh, empty store.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// Clock is a settable clock for retention tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Open returns a fresh, empty store; the suite closes it when the test ends.
type Open func(t *testing.T) session.Store

// TestStore runs the whole contract: the test of each part of the Store
// interface as a subtest. A store's tests call it with their Open.
func TestStore(t *testing.T, open Open) {
	for _, part := range []struct {
		name string
		test func(*testing.T, Open)
	}{
		{"CreateCall", TestCreateCall},
		{"Apply", TestApply},
		{"EndCall", TestEndCall},
		{"Reads", TestReads},
		{"History", TestHistory},
		{"Purge", TestPurge},
		{"Outbox", TestOutbox},
		{"Events", TestEvents},
	} {
		t.Run(part.name, func(t *testing.T) { part.test(t, open) })
	}
}

// contract opens the stores of the suite's tests; its methods are the
// behaviours the exported tests run as subtests.
type contract struct {
	openStore Open
}

// The suite's context, writer and clock start.
var (
	ctx       = context.Background()
	client    = session.WriteOptions{Actor: "crm", Origin: session.OriginClient}
	edgeStart = time.Date(2026, 11, 20, 9, 0, 0, 123456789, time.UTC)
)

// open returns a fresh store, closed when the test ends.
func (ct contract) open(t *testing.T) session.Store {
	t.Helper()
	st := ct.openStore(t)
	t.Cleanup(func() { st.Close() })
	return st
}

// newService returns a Service over a fresh store, with a settable clock,
// a retention of one hour and call IDs call-0001, call-0002, …
func (ct contract) newService(t *testing.T) (*session.Service, *Clock) {
	t.Helper()
	clock := NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	n := 0
	var mu sync.Mutex
	return session.NewService(ct.open(t), session.Options{
		Now:       clock.Now,
		Retention: time.Hour,
		NewID: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return fmt.Sprintf("call-%04d", n)
		},
	}), clock
}

// fresh returns a fresh store, a Service over it with opts and a clock
// at edgeStart (retention one hour unless opts say otherwise).
func (ct contract) fresh(t *testing.T, opts session.Options) (session.Store, *session.Service, *Clock) {
	t.Helper()
	st := ct.open(t)
	clock := NewClock(edgeStart)
	opts.Now = clock.Now
	if opts.Retention == 0 {
		opts.Retention = time.Hour
	}
	return st, session.NewService(st, opts), clock
}

// recorder is a session.Automations whose every event fires one entry of
// its automation "rec" that names the event and the version.
type recorder struct {
	mu      sync.Mutex
	n       int
	done    []*session.OutboxEntry
	dropped []*session.OutboxEntry
}

func (r *recorder) Fire(ev *session.Event) []*session.OutboxEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	data, _ := json.Marshal(map[string]any{"event": ev.Type, "version": ev.Version})
	return []*session.OutboxEntry{{ID: fmt.Sprintf("fired-%s-%05d", ev.CallID, r.n), CallID: ev.CallID, Created: ev.At, Due: ev.At,
		Automation: "rec", Event: ev.Type, Data: data}}
}

func (r *recorder) Queued(queued, dropped []*session.OutboxEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = append(r.done, queued...)
	r.dropped = append(r.dropped, dropped...)
}

// queued returns the entries of a call handed over as queued.
func (r *recorder) queued(callID string) []*session.OutboxEntry { return r.of(callID, &r.done) }

// left returns the entries of a call handed over as left out.
func (r *recorder) left(callID string) []*session.OutboxEntry { return r.of(callID, &r.dropped) }

func (r *recorder) of(callID string, list *[]*session.OutboxEntry) []*session.OutboxEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*session.OutboxEntry
	for _, e := range *list {
		if e.CallID == callID {
			out = append(out, e)
		}
	}
	return out
}

// entryData lists the event/version of recorder entries, in ID order.
func entryData(entries []*session.OutboxEntry) []string {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b *session.OutboxEntry) int { return strings.Compare(a.ID, b.ID) })
	out := make([]string, len(sorted))
	for i, e := range sorted {
		var d struct {
			Event   string
			Version uint64
		}
		json.Unmarshal(e.Data, &d)
		out[i] = fmt.Sprintf("%s/%d", d.Event, d.Version)
	}
	return out
}

func vars(s string) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		panic(err)
	}
	return m
}

func make100(c byte) []byte {
	b := make([]byte, 100)
	for i := range b {
		b[i] = c
	}
	return b
}

func wantCode(t *testing.T, err error, want session.Code) {
	t.Helper()
	if got := session.ErrorCode(err); got != want {
		t.Fatalf("error %v: code %q, want %q", err, got, want)
	}
}

// listAll pages through every call of a state and returns their IDs.
func listAll(t *testing.T, svc *session.Service, state session.StateFilter, limit int) string {
	t.Helper()
	got := []string{}
	cursor := ""
	for pages := 0; pages < 100; pages++ {
		p, err := svc.ListCalls(context.Background(), session.ListOptions{State: state, Limit: limit, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Items {
			got = append(got, c.ID)
		}
		if p.Next == "" {
			return fmt.Sprint(got)
		}
		cursor = p.Next
	}
	t.Fatal("paging does not end")
	return ""
}
