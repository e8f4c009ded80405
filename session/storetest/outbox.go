package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// testOutbox checks SaveFlowRun, FlowRun and the outbox methods.
func (ct *contract) testOutbox(t *testing.T) {
	t.Run("FlowRunAndOutbox", func(t *testing.T) {
		st := ct.open(t)
		clock := NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
		svc := session.NewService(st, session.Options{Now: clock.Now, Retention: time.Hour})
		c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b", Flow: "order-status"}, client)
		if err != nil {
			t.Fatal(err)
		}
		other, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		t0 := clock.Now()
		entry := func(id, call string, due time.Time, data string) *session.OutboxEntry {
			return &session.OutboxEntry{ID: id, CallID: call, Created: t0, Due: due, Data: json.RawMessage(data)}
		}
		ids := func(es []*session.OutboxEntry) string {
			var out []string
			for _, e := range es {
				out = append(out, e.ID)
			}
			return fmt.Sprint(out)
		}

		wantCode(t, st.SaveFlowRun(ctx, "nope", []byte(`{}`), nil), session.CodeNotFound)
		_, err = st.FlowRun(ctx, c.ID)
		wantCode(t, err, session.CodeNotFound)

		err = st.SaveFlowRun(ctx, c.ID, []byte(`{"node":"welcome"}`), []*session.OutboxEntry{
			entry("e2", c.ID, t0.Add(time.Second), `{"n":2}`),
			entry("e1", c.ID, t0, `{"n":1}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		state, err := st.FlowRun(ctx, c.ID)
		if err != nil || string(state) != `{"node":"welcome"}` {
			t.Fatalf("FlowRun = %s, %v", state, err)
		}
		// A duplicate ID refuses the whole step: neither state nor entries change.
		err = st.SaveFlowRun(ctx, c.ID, []byte(`{"node":"later"}`), []*session.OutboxEntry{entry("e1", c.ID, t0, `{}`)})
		wantCode(t, err, session.CodeConflict)
		if state, _ := st.FlowRun(ctx, c.ID); string(state) != `{"node":"welcome"}` {
			t.Fatalf("state after a refused save: %s", state)
		}
		_, err = st.EnqueueOutbox(ctx, []*session.OutboxEntry{entry("x", "nope", t0, `{}`)})
		wantCode(t, err, session.CodeNotFound)
		if q, err := st.EnqueueOutbox(ctx, []*session.OutboxEntry{entry("e3", other.ID, t0.Add(-time.Second), `{"n":3}`)}); err != nil || len(q) != 1 {
			t.Fatalf("EnqueueOutbox = %d queued, %v", len(q), err)
		}

		pending, err := st.PendingOutbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(pending), "[e3 e1 e2]"; got != want {
			t.Fatalf("PendingOutbox = %s, want %s (soonest first)", got, want)
		}
		all, err := st.CallOutbox(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(all), "[e1 e2]"; got != want {
			t.Fatalf("CallOutbox = %s, want %s", got, want)
		}
		if string(all[0].Data) != `{"n":1}` || !all[0].Due.Equal(t0) || !all[0].Created.Equal(t0) {
			t.Fatalf("entry read back as %+v", all[0])
		}

		// Finish e1, reschedule e2 to after e3.
		done := entry("e1", c.ID, time.Time{}, `{"n":1,"delivered":true}`)
		if err := st.UpdateOutbox(ctx, done); err != nil {
			t.Fatal(err)
		}
		if err := st.UpdateOutbox(ctx, entry("e2", c.ID, t0.Add(time.Hour), `{"n":2,"attempts":1}`)); err != nil {
			t.Fatal(err)
		}
		wantCode(t, st.UpdateOutbox(ctx, entry("nope", c.ID, t0, `{}`)), session.CodeNotFound)
		pending, _ = st.PendingOutbox(ctx)
		if got, want := ids(pending), "[e3 e2]"; got != want {
			t.Fatalf("PendingOutbox after updates = %s, want %s", got, want)
		}
		all, _ = st.CallOutbox(ctx, c.ID)
		if string(all[0].Data) != `{"n":1,"delivered":true}` || all[0].Pending() {
			t.Fatalf("finished entry read back as %+v", all[0])
		}
		if !all[1].Due.Equal(t0.Add(time.Hour)) {
			t.Fatalf("rescheduled entry due %v", all[1].Due)
		}

		// Concurrent queueing (the batched write path) loses nothing.
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := st.EnqueueOutbox(ctx, []*session.OutboxEntry{entry(fmt.Sprintf("c%02d", i), other.ID, t0, `{}`)}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if all, _ := st.CallOutbox(ctx, other.ID); len(all) != 41 {
			t.Fatalf("CallOutbox after concurrent queueing: %d entries, want 41", len(all))
		}

		// The retention sweep takes the flow state and the entries with the call.
		if _, err := svc.EndCall(ctx, c.ID, "", "crm"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Hour)
		if n, err := svc.Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("Sweep = %d, %v; want 1", n, err)
		}
		_, err = st.FlowRun(ctx, c.ID)
		wantCode(t, err, session.CodeNotFound)
		_, err = st.CallOutbox(ctx, c.ID)
		wantCode(t, err, session.CodeNotFound)
		pending, _ = st.PendingOutbox(ctx)
		for _, e := range pending {
			if e.CallID == c.ID {
				t.Fatalf("entry %s of a purged call is still pending", e.ID)
			}
		}
		if len(pending) != 41 {
			t.Fatalf("%d pending entries after the sweep, want 41", len(pending))
		}
	})
}
