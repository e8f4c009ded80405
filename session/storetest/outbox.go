package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// TestOutbox checks SaveFlowRun, FlowRun and the outbox methods.
func TestOutbox(t *testing.T, open Open) {
	ct := contract{open}
	t.Run("FlowRun", ct.outboxFlowRun)
	t.Run("Enqueue", ct.outboxEnqueue)
	t.Run("Update", ct.outboxUpdate)
	t.Run("ConcurrentEnqueue", ct.outboxConcurrentEnqueue)
	t.Run("Sweep", ct.outboxSweep)
}

// outboxWorld is a store with two active calls, c (in a flow) and other,
// and a clock at t0.
type outboxWorld struct {
	st       session.Store
	svc      *session.Service
	clock    *Clock
	t0       time.Time
	c, other *session.Call
}

func (ct contract) outboxWorld(t *testing.T) *outboxWorld {
	t.Helper()
	w := &outboxWorld{st: ct.open(t), clock: NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))}
	w.t0 = w.clock.Now()
	w.svc = session.NewService(w.st, session.Options{Now: w.clock.Now, Retention: time.Hour})
	var err error
	if w.c, _, err = w.svc.CreateCall(ctx, session.NewCall{From: "a", To: "b", Flow: "order-status"}, client); err != nil {
		t.Fatal(err)
	}
	if w.other, _, err = w.svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *outboxWorld) entry(id, call string, due time.Time, data string) *session.OutboxEntry {
	return &session.OutboxEntry{ID: id, CallID: call, Created: w.t0, Due: due, Data: json.RawMessage(data)}
}

// queueThree saves c's flow state with e2 (due in a second) and e1 (due
// now), and queues e3 (due a second ago) for other.
func (w *outboxWorld) queueThree(t *testing.T) {
	t.Helper()
	err := w.st.SaveFlowRun(ctx, w.c.ID, []byte(`{"node":"welcome"}`), []*session.OutboxEntry{
		w.entry("e2", w.c.ID, w.t0.Add(time.Second), `{"n":2}`),
		w.entry("e1", w.c.ID, w.t0, `{"n":1}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if q, err := w.st.EnqueueOutbox(ctx, []*session.OutboxEntry{w.entry("e3", w.other.ID, w.t0.Add(-time.Second), `{"n":3}`)}); err != nil || len(q) != 1 {
		t.Fatalf("EnqueueOutbox = %d queued, %v", len(q), err)
	}
}

func outboxIDs(es []*session.OutboxEntry) string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return fmt.Sprint(out)
}

func (ct contract) outboxFlowRun(t *testing.T) {
	w := ct.outboxWorld(t)
	wantCode(t, w.st.SaveFlowRun(ctx, "nope", []byte(`{}`), nil), session.CodeNotFound)
	_, err := w.st.FlowRun(ctx, w.c.ID)
	wantCode(t, err, session.CodeNotFound)
	w.queueThree(t)
	state, err := w.st.FlowRun(ctx, w.c.ID)
	if err != nil || string(state) != `{"node":"welcome"}` {
		t.Fatalf("FlowRun = %s, %v", state, err)
	}
	// A duplicate ID refuses the whole step: neither state nor entries change.
	err = w.st.SaveFlowRun(ctx, w.c.ID, []byte(`{"node":"later"}`), []*session.OutboxEntry{w.entry("e1", w.c.ID, w.t0, `{}`)})
	wantCode(t, err, session.CodeConflict)
	if state, _ := w.st.FlowRun(ctx, w.c.ID); string(state) != `{"node":"welcome"}` {
		t.Fatalf("state after a refused save: %s", state)
	}
	if all, _ := w.st.CallOutbox(ctx, w.c.ID); outboxIDs(all) != "[e1 e2]" || string(all[0].Data) != `{"n":1}` {
		t.Fatalf("entries after a refused save: %s", outboxIDs(all))
	}
}

func (ct contract) outboxEnqueue(t *testing.T) {
	w := ct.outboxWorld(t)
	_, err := w.st.EnqueueOutbox(ctx, []*session.OutboxEntry{w.entry("x", "nope", w.t0, `{}`)})
	wantCode(t, err, session.CodeNotFound)
	w.queueThree(t)
	pending, err := w.st.PendingOutbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outboxIDs(pending), "[e3 e1 e2]"; got != want {
		t.Fatalf("PendingOutbox = %s, want %s (soonest first)", got, want)
	}
	all, err := w.st.CallOutbox(ctx, w.c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outboxIDs(all), "[e1 e2]"; got != want {
		t.Fatalf("CallOutbox = %s, want %s", got, want)
	}
	if string(all[0].Data) != `{"n":1}` || !all[0].Due.Equal(w.t0) || !all[0].Created.Equal(w.t0) {
		t.Fatalf("entry read back as %+v", all[0])
	}
}

// outboxUpdate finishes e1 and reschedules e2 to after e3.
func (ct contract) outboxUpdate(t *testing.T) {
	w := ct.outboxWorld(t)
	w.queueThree(t)
	if err := w.st.UpdateOutbox(ctx, w.entry("e1", w.c.ID, time.Time{}, `{"n":1,"delivered":true}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.st.UpdateOutbox(ctx, w.entry("e2", w.c.ID, w.t0.Add(time.Hour), `{"n":2,"attempts":1}`)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, w.st.UpdateOutbox(ctx, w.entry("nope", w.c.ID, w.t0, `{}`)), session.CodeNotFound)
	pending, _ := w.st.PendingOutbox(ctx)
	if got, want := outboxIDs(pending), "[e3 e2]"; got != want {
		t.Fatalf("PendingOutbox after updates = %s, want %s", got, want)
	}
	all, _ := w.st.CallOutbox(ctx, w.c.ID)
	if string(all[0].Data) != `{"n":1,"delivered":true}` || all[0].Pending() {
		t.Fatalf("finished entry read back as %+v", all[0])
	}
	if !all[1].Due.Equal(w.t0.Add(time.Hour)) {
		t.Fatalf("rescheduled entry due %v", all[1].Due)
	}
}

// outboxConcurrentEnqueue: concurrent queueing (the batched write path)
// loses nothing.
func (ct contract) outboxConcurrentEnqueue(t *testing.T) {
	w := ct.outboxWorld(t)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.st.EnqueueOutbox(ctx, []*session.OutboxEntry{w.entry(fmt.Sprintf("c%02d", i), w.other.ID, w.t0, `{}`)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if all, _ := w.st.CallOutbox(ctx, w.other.ID); len(all) != 40 {
		t.Fatalf("CallOutbox after concurrent queueing: %d entries, want 40", len(all))
	}
}

// outboxSweep: the retention sweep takes the flow state and the entries
// with the call, and leaves other calls' entries.
func (ct contract) outboxSweep(t *testing.T) {
	w := ct.outboxWorld(t)
	w.queueThree(t)
	if _, err := w.svc.EndCall(ctx, w.c.ID, "", "crm"); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(2 * time.Hour)
	if n, err := w.svc.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	_, err := w.st.FlowRun(ctx, w.c.ID)
	wantCode(t, err, session.CodeNotFound)
	_, err = w.st.CallOutbox(ctx, w.c.ID)
	wantCode(t, err, session.CodeNotFound)
	pending, _ := w.st.PendingOutbox(ctx)
	if got, want := outboxIDs(pending), "[e3]"; got != want {
		t.Fatalf("pending after the sweep = %s, want %s", got, want)
	}
}
