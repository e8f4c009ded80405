package bolt_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
	"github.com/callctx/callctx/session/storetest"
)

// MustOpenStore opens a store in a temporary directory and checks the
// database's consistency when the test ends.
func MustOpenStore(tb testing.TB) *bolt.Store { return bolttest.MustOpen(tb, bolt.Options{}) }

func TestStore_Contract(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) session.Store { return MustOpenStore(t) })
}

func TestOpen_ErrInUse(t *testing.T) {
	dir := t.TempDir()
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = bolt.Open(dir, bolt.Options{LockTimeout: 50e6})
	if !errors.Is(err, bolt.ErrInUse) {
		t.Fatalf("second open: %v, want ErrInUse", err)
	}
}

func TestStore_Reopen(t *testing.T) {
	dir := t.TempDir()
	st := bolttest.MustOpenDir(t, dir, bolt.Options{})
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, session.WriteOptions{Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Merge(ctx, c.ID, nil, session.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = bolttest.MustOpenDir(t, dir, bolt.Options{})
	got, err := session.NewService(st, session.Options{}).Session(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || string(got.Variables["call.id"]) != `"`+c.ID+`"` {
		t.Fatalf("after reopen: %+v", got)
	}
}

// TestStore_PurgeRemovesHistory: the retention sweep leaves no history
// entries of a purged call behind in the shared log, and keeps the others'.
func TestStore_PurgeRemovesHistory(t *testing.T) {
	st := MustOpenStore(t)
	clock := storetest.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	svc := session.NewService(st, session.Options{Now: clock.Now, Retention: time.Hour})
	ctx := context.Background()
	var ids []string
	for i := 0; i < 3; i++ {
		c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, session.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	// Interleave the writes so that the calls' entries alternate in the log.
	for i := 0; i < 5; i++ {
		for _, id := range ids {
			if _, _, err := svc.Merge(ctx, id, map[string]json.RawMessage{"ivr.n": json.RawMessage(strconv.Itoa(i))}, session.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	svc.EndCall(ctx, ids[1], "", "t")
	if got, want := st.LogLen(), 3*(1+5)+1; got != want {
		t.Fatalf("log holds %d entries, want %d", got, want)
	}
	clock.Advance(2 * time.Hour)
	if n, err := svc.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("swept %d, %v", n, err)
	}
	if got, want := st.LogLen(), 2*(1+5); got != want {
		t.Fatalf("after the sweep the log holds %d entries, want %d", got, want)
	}
	for _, id := range []string{ids[0], ids[2]} {
		h, err := svc.History(ctx, id, 0, 0)
		if err != nil || len(h) != 6 || h[0].Version != 1 || h[5].Version != 6 {
			t.Fatalf("history of %s after the sweep: %d entries, %v", id, len(h), err)
		}
	}
	// A purged call is gone from every read path, and its ID can be used
	// again for a new call that starts at version 1.
	if _, _, err := svc.SessionJSON(ctx, ids[1]); session.ErrorCode(err) != session.CodeNotFound {
		t.Fatalf("purged session still readable: %v", err)
	}
	if _, _, err := svc.CreateCall(ctx, session.NewCall{ID: ids[1], From: "x", To: "y"}, session.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	js, version, err := svc.SessionJSON(ctx, ids[1])
	if err != nil || version != 1 || !strings.Contains(string(js), `"call.from":"x"`) {
		t.Fatalf("the reused ID reads v%d %s, %v", version, js, err)
	}
}

// The read cache holds active calls' sessions only: an ended call is read
// from the file, correctly, and leaves a tombstone for a while (until it is
// purged at the latest).
func TestStore_CacheHoldsActiveSessions(t *testing.T) {
	st := MustOpenStore(t)
	clock := storetest.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	svc := session.NewService(st, session.Options{Now: clock.Now, Retention: time.Hour})
	ctx := context.Background()
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, session.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Merge(ctx, c.ID, map[string]json.RawMessage{"ivr.email": json.RawMessage(`"a@b.c"`)}, session.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if record, _ := st.CacheHolds(c.ID); !record {
		t.Fatal("an active call's session is not cached")
	}
	if _, err := svc.EndCall(ctx, c.ID, "caller-hangup", "t"); err != nil {
		t.Fatal(err)
	}
	if record, entry := st.CacheHolds(c.ID); record || !entry {
		t.Fatalf("after the end: record cached %v, tombstone %v; want a tombstone only", record, entry)
	}
	js, version, err := svc.SessionJSON(ctx, c.ID)
	if err != nil || version != 3 || !strings.Contains(string(js), `"state":"ended"`) || !strings.Contains(string(js), `"ivr.email":"a@b.c"`) {
		t.Fatalf("the ended session reads v%d %s, %v", version, js, err)
	}
	if s, err := svc.Session(ctx, c.ID); err != nil || s.State != session.StateEnded || s.Version != 3 {
		t.Fatalf("the ended session decodes to %+v, %v", s, err)
	}
	if _, _, err := svc.Merge(ctx, c.ID, map[string]json.RawMessage{"ivr.email": json.RawMessage(`"x@y.z"`)}, session.WriteOptions{}); session.ErrorCode(err) != session.CodeConflict {
		t.Fatalf("a write to the ended call: %v", err)
	}
	clock.Advance(2 * time.Hour)
	if n, err := svc.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("swept %d, %v", n, err)
	}
	if _, entry := st.CacheHolds(c.ID); entry {
		t.Fatal("the purged call's tombstone is still in the cache")
	}
}

// A tombstone keeps out a write committed before the end whose session
// reaches the cache after it, and is dropped after a while, so that the
// cache does not grow with every call that ended.
func TestStore_TombstonesExpire(t *testing.T) {
	st := MustOpenStore(t)
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	var ids []string
	for range 3 {
		c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, session.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.EndCall(ctx, c.ID, "", "t"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	if _, tomb := st.CacheHolds(ids[0]); !tomb {
		t.Fatal("no tombstone right after the end")
	}
	st.AgeTombstones()
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, session.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.EndCall(ctx, c.ID, "", "t") // an end rotates the tombstones
	st.AgeTombstones()
	c2, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, session.WriteOptions{})
	svc.EndCall(ctx, c2.ID, "", "t")
	for _, id := range ids {
		if record, tomb := st.CacheHolds(id); record || tomb {
			t.Fatalf("call %s ended long ago: record %v, tombstone %v; want neither", id, record, tomb)
		}
		if s, err := svc.Session(ctx, id); err != nil || s.State != session.StateEnded {
			t.Fatalf("the ended session reads %+v, %v", s, err)
		}
	}
}

// A call created ended (the SIP bridge's redirect) is not cached either.
func TestStore_CacheSkipsCallsCreatedEnded(t *testing.T) {
	st := MustOpenStore(t)
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b", EndReason: "redirected"}, session.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if record, entry := st.CacheHolds(c.ID); record || entry {
		t.Fatalf("record cached %v, tombstone %v; want neither: nothing can write it before its end", record, entry)
	}
	if s, err := svc.Session(ctx, c.ID); err != nil || s.State != session.StateEnded {
		t.Fatalf("the session reads %+v, %v", s, err)
	}
}

// fireEach is a session.Automations whose every event fires one entry of
// the automation "echo".
type fireEach struct{ n atomic.Int64 }

func (f *fireEach) Fire(ev *session.Event) []*session.OutboxEntry {
	id := fmt.Sprintf("e-%06d", f.n.Add(1))
	return []*session.OutboxEntry{{ID: id, CallID: ev.CallID, Created: ev.At, Due: ev.At, Automation: "echo", Event: ev.Type, Data: json.RawMessage(`{}`)}}
}

func (f *fireEach) Queued(_, _ []*session.OutboxEntry) {}

// TestStore_MaxEventFiringsSurvivesRestart: the guard against automation
// loops counts what the store holds, so a restart does not reset it.
func TestStore_MaxEventFiringsSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	client := session.WriteOptions{Actor: "test", Origin: session.OriginClient}
	auto := &fireEach{}
	open := func() (*bolt.Store, *session.Service) {
		st := bolttest.MustOpenDir(t, dir, bolt.Options{})
		svc := session.NewService(st, session.Options{})
		svc.SetAutomations(auto)
		return st, svc
	}
	st, svc := open()
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	write := func(svc *session.Service, from, to int) {
		for i := from; i < to; i++ {
			if _, _, err := svc.Merge(ctx, c.ID, map[string]json.RawMessage{"app.n": json.RawMessage(strconv.Itoa(i))}, client); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(svc, 0, 60)
	st.Close()
	st, svc = open()
	write(svc, 60, 120)
	entries, err := st.CallOutbox(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(entries), session.MaxEventFirings; got != want {
		t.Fatalf("%d entries after 121 events across a restart, want %d", got, want)
	}
}
