// Package storetest is the contract every session.Store must meet. Each
// store's tests call Run with a function that opens a fresh, empty store.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// Run runs the contract suite. open returns a fresh, empty store; Run
// closes it.
func Run(t *testing.T, open func(t *testing.T) session.Store) {
	newService := func(t *testing.T) (*session.Service, *Clock) {
		t.Helper()
		st := open(t)
		t.Cleanup(func() { st.Close() })
		clock := NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
		n := 0
		var mu sync.Mutex
		return session.NewService(st, session.Options{
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
	client := session.WriteOptions{Actor: "crm", Origin: session.OriginClient}
	ctx := context.Background()

	t.Run("CreateCall", func(t *testing.T) {
		svc, _ := newService(t)
		c, s, err := svc.CreateCall(ctx, session.NewCall{From: "+4930123", To: "+4940555", Flow: "order-status",
			Variables: vars(`{"ivr.lang":"de"}`)}, client)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.ID, "call-0001"; got != want {
			t.Fatalf("ID=%q, want %q", got, want)
		}
		if got, want := s.Version, uint64(1); got != want {
			t.Fatalf("Version=%d, want %d", got, want)
		}
		for name, want := range map[string]string{
			"call.id": `"call-0001"`, "call.from": `"+4930123"`, "call.to": `"+4940555"`,
			"call.flow": `"order-status"`, "call.state": `"active"`, "call.direction": `"inbound"`, "ivr.lang": `"de"`,
		} {
			if got := string(s.Variables[name]); got != want {
				t.Errorf("%s=%s, want %s", name, got, want)
			}
		}
		got, err := svc.Session(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Variables["ivr.lang"]) != `"de"` || got.State != session.StateActive {
			t.Fatalf("stored session = %+v", got)
		}
		gotCall, err := svc.Call(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if gotCall.From != "+4930123" || gotCall.State != session.StateActive || !gotCall.StartedAt.Equal(c.StartedAt) {
			t.Fatalf("stored call = %+v", gotCall)
		}
	})

	t.Run("CreateCall/ErrConflict", func(t *testing.T) {
		svc, _ := newService(t)
		if _, _, err := svc.CreateCall(ctx, session.NewCall{ID: "abc", From: "a", To: "b"}, client); err != nil {
			t.Fatal(err)
		}
		_, _, err := svc.CreateCall(ctx, session.NewCall{ID: "abc", From: "a", To: "b"}, client)
		wantCode(t, err, session.CodeConflict)
	})

	t.Run("CreateCall/ErrInvalidVariables", func(t *testing.T) {
		svc, _ := newService(t)
		_, _, err := svc.CreateCall(ctx, session.NewCall{ID: "abc", Variables: vars(`{"call.from":"x","foo.bar":1}`)}, client)
		wantCode(t, err, session.CodeInvalid)
		if got := len(session.ErrorFields(err)); got != 2 {
			t.Fatalf("fields=%d, want 2: %v", got, session.ErrorFields(err))
		}
		_, err = svc.Call(ctx, "abc")
		wantCode(t, err, session.CodeNotFound)
	})

	t.Run("NotFound", func(t *testing.T) {
		svc, _ := newService(t)
		_, err := svc.Call(ctx, "nope")
		wantCode(t, err, session.CodeNotFound)
		_, err = svc.Session(ctx, "nope")
		wantCode(t, err, session.CodeNotFound)
		_, _, err = svc.SessionJSON(ctx, "nope")
		wantCode(t, err, session.CodeNotFound)
		_, err = svc.Merge(ctx, "nope", vars(`{"ivr.a":1}`), client)
		wantCode(t, err, session.CodeNotFound)
		_, err = svc.EndCall(ctx, "nope", "", "crm")
		wantCode(t, err, session.CodeNotFound)
		_, err = svc.History(ctx, "nope", 0)
		wantCode(t, err, session.CodeNotFound)
	})

	t.Run("Merge", func(t *testing.T) {
		svc, _ := newService(t)
		c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		s, err := svc.Merge(ctx, c.ID, vars(`{"ivr.email":"a@b.c","ivr.premium":true,"ivr.track_id":"T-1"}`), client)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.Version, uint64(2); got != want {
			t.Fatalf("Version=%d, want %d", got, want)
		}
		// null deletes, absent keys stay, an unchanged value is not a change.
		s, err = svc.Merge(ctx, c.ID, vars(`{"ivr.premium":null,"ivr.email":"a@b.c","app.x":{"k": [1, 2]}}`), client)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Variables["ivr.premium"]; ok {
			t.Fatal("ivr.premium not deleted")
		}
		if got, want := string(s.Variables["ivr.track_id"]), `"T-1"`; got != want {
			t.Fatalf("ivr.track_id=%s, want %s", got, want)
		}
		if got, want := string(s.Variables["app.x"]), `{"k":[1,2]}`; got != want {
			t.Fatalf("app.x=%s, want compact %s", got, want)
		}
		js, version, err := svc.SessionJSON(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := svc.Session(ctx, c.ID)
		if want := stored.AppendJSON(nil); string(js) != string(want) || version != stored.Version {
			t.Fatalf("SessionJSON = %s (v%d), want %s (v%d)", js, version, want, stored.Version)
		}
		h, err := svc.History(ctx, c.ID, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 1 || h[0].Version != 3 || h[0].Actor != "crm" {
			t.Fatalf("history after 2 = %+v", h)
		}
		if _, ok := h[0].Changes["ivr.email"]; ok {
			t.Fatal("unchanged ivr.email recorded as a change")
		}
		if ch := h[0].Changes["ivr.premium"]; string(ch.Old) != "true" || ch.New != nil {
			t.Fatalf("ivr.premium change = %s → %s", ch.Old, ch.New)
		}
		// A write that changes nothing makes no version.
		s, err = svc.Merge(ctx, c.ID, vars(`{"ivr.email":"a@b.c","ivr.gone":null}`), client)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.Version, uint64(3); got != want {
			t.Fatalf("Version after no-op=%d, want %d", got, want)
		}
	})

	t.Run("Merge/ErrPreconditionFailed", func(t *testing.T) {
		svc, _ := newService(t)
		c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		opts := client
		opts.IfMatch = 1
		if _, err := svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), opts); err != nil {
			t.Fatal(err)
		}
		_, err := svc.Merge(ctx, c.ID, vars(`{"ivr.a":2}`), opts)
		wantCode(t, err, session.CodePreconditionFailed)
		s, _ := svc.Session(ctx, c.ID)
		if string(s.Variables["ivr.a"]) != "1" || s.Version != 2 {
			t.Fatalf("session changed by a failed write: %+v", s)
		}
	})

	t.Run("Merge/ErrInvalid", func(t *testing.T) {
		svc, _ := newService(t)
		c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		_, err := svc.Merge(ctx, c.ID, vars(`{"ivr.ok":1,"call.from":"x","sip.x-a":"y","crm.x":1,"ivr.a b":1,"ivr..a":1}`), client)
		wantCode(t, err, session.CodeInvalid)
		names := map[string]bool{}
		for _, f := range session.ErrorFields(err) {
			names[f.Name] = true
		}
		for _, n := range []string{"call.from", "sip.x-a", "crm.x", "ivr.a b", "ivr..a"} {
			if !names[n] {
				t.Errorf("%s not named in %v", n, session.ErrorFields(err))
			}
		}
		if names["ivr.ok"] {
			t.Error("ivr.ok named although it is fine")
		}
		s, _ := svc.Session(ctx, c.ID)
		if _, ok := s.Variables["ivr.ok"]; ok || s.Version != 1 {
			t.Fatal("a refused write changed the session")
		}
		// The SIP bridge may write sip., a client may not.
		if _, err := svc.Merge(ctx, c.ID, vars(`{"sip.x-a":"y"}`), session.WriteOptions{Actor: "sip", Origin: session.OriginSIP}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Merge/Limits", func(t *testing.T) {
		st := open(t)
		t.Cleanup(func() { st.Close() })
		svc := session.NewService(st, session.Options{Limits: session.Limits{MaxVariables: 10, MaxSessionBytes: 400, MaxValueBytes: 100}})
		c, s, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		if err != nil {
			t.Fatal(err)
		}
		free := 10 - len(s.Variables)
		batch := map[string]json.RawMessage{}
		for i := 0; i <= free; i++ {
			batch["ivr.v"+strconv.Itoa(i)] = json.RawMessage("1")
		}
		_, err = svc.Merge(ctx, c.ID, batch, client)
		wantCode(t, err, session.CodeInvalid)
		if got, want := len(session.ErrorFields(err)), free+1; got != want {
			t.Fatalf("fields=%d, want %d", got, want)
		}
		_, err = svc.Merge(ctx, c.ID, vars(`{"ivr.big":"`+string(make100('x'))+`"}`), client)
		wantCode(t, err, session.CodeInvalid)
		_, err = svc.Merge(ctx, c.ID, vars(`{"ivr.a":"`+string(make100('x')[:90])+`","ivr.b":"`+string(make100('y')[:90])+`","ivr.c":"`+string(make100('z')[:90])+`"}`), client)
		wantCode(t, err, session.CodeInvalid)
		s2, _ := svc.Session(ctx, c.ID)
		if s2.Version != s.Version {
			t.Fatal("a write over the limits changed the session")
		}
	})

	t.Run("EndCall", func(t *testing.T) {
		svc, _ := newService(t)
		c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		ended, err := svc.EndCall(ctx, c.ID, "caller-hangup", "crm")
		if err != nil {
			t.Fatal(err)
		}
		if ended.State != session.StateEnded || ended.EndReason != "caller-hangup" || ended.EndedAt.IsZero() {
			t.Fatalf("ended call = %+v", ended)
		}
		again, err := svc.EndCall(ctx, c.ID, "other", "crm")
		if err != nil {
			t.Fatal(err)
		}
		if again.EndReason != "caller-hangup" || !again.EndedAt.Equal(ended.EndedAt) {
			t.Fatalf("second end changed the call: %+v", again)
		}
		s, _ := svc.Session(ctx, c.ID)
		if s.State != session.StateEnded || string(s.Variables["call.state"]) != `"ended"` || string(s.Variables["call.endReason"]) != `"caller-hangup"` || s.Version != 2 {
			t.Fatalf("session after end = %+v", s)
		}
		_, err = svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client)
		wantCode(t, err, session.CodeConflict)
	})

	t.Run("CreateCall/Ended", func(t *testing.T) {
		svc, clock := newService(t) // retention: one hour
		sub := svc.Subscribe("")
		defer sub.Close()
		c, s, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b", EndReason: "redirected",
			Variables: vars(`{"sip.x-customer-id":"123"}`)}, session.WriteOptions{Actor: "sip", Origin: session.OriginSIP})
		if err != nil {
			t.Fatal(err)
		}
		if c.State != session.StateEnded || c.EndReason != "redirected" || !c.EndedAt.Equal(c.StartedAt) || s.State != session.StateEnded || s.Version != 1 {
			t.Fatalf("call %+v session %+v, want both ended at version 1", c, s)
		}
		stored, _ := svc.Session(ctx, c.ID)
		if stored.State != session.StateEnded || string(stored.Variables["call.endReason"]) != `"redirected"` || string(stored.Variables["sip.x-customer-id"]) != `"123"` {
			t.Fatalf("stored session %+v", stored)
		}
		for _, want := range []session.EventType{session.EventCallStarted, session.EventCallEnded} {
			if e := <-sub.Events(); e.Type != want || e.CallID != c.ID {
				t.Fatalf("event %s for %s, want %s", e.Type, e.CallID, want)
			}
		}
		if page, _ := svc.ListCalls(ctx, session.ListOptions{State: session.FilterActive}); len(page.Items) != 0 {
			t.Fatalf("an ended call is listed as active: %+v", page.Items)
		}
		if page, _ := svc.ListCalls(ctx, session.ListOptions{State: session.FilterEnded}); len(page.Items) != 1 {
			t.Fatalf("ended calls: %+v, want the one", page.Items)
		}
		_, err = svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client)
		wantCode(t, err, session.CodeConflict)
		clock.Advance(61 * time.Minute)
		if n, err := svc.Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("sweep removed %d (%v), want the call ended at creation", n, err)
		}
	})

	t.Run("ListCalls", func(t *testing.T) {
		svc, clock := newService(t)
		for i := 0; i < 7; i++ {
			clock.Advance(time.Second)
			if _, _, err := svc.CreateCall(ctx, session.NewCall{ID: fmt.Sprintf("c%d", i), From: "a", To: "b"}, client); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"c1", "c4"} {
			if _, err := svc.EndCall(ctx, id, "", "crm"); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			state session.StateFilter
			want  []string
		}{
			{"", []string{"c6", "c5", "c3", "c2", "c0"}},
			{session.FilterActive, []string{"c6", "c5", "c3", "c2", "c0"}},
			{session.FilterEnded, []string{"c4", "c1"}},
			{session.FilterAll, []string{"c6", "c5", "c4", "c3", "c2", "c1", "c0"}},
		} {
			for _, limit := range []int{1, 2, 3, 100} {
				var got []string
				cursor := ""
				for pages := 0; ; pages++ {
					if pages > 10 {
						t.Fatal("paging does not end")
					}
					page, err := svc.ListCalls(ctx, session.ListOptions{State: tc.state, Limit: limit, Cursor: cursor})
					if err != nil {
						t.Fatal(err)
					}
					if len(page.Items) > limit {
						t.Fatalf("page of %d items, limit %d", len(page.Items), limit)
					}
					for _, c := range page.Items {
						got = append(got, c.ID)
					}
					if page.Next == "" {
						break
					}
					cursor = page.Next
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("state=%q limit=%d: got %v, want %v", tc.state, limit, got, tc.want)
				}
			}
		}
		_, err := svc.ListCalls(ctx, session.ListOptions{Cursor: "!!!"})
		wantCode(t, err, session.CodeInvalid)
		_, err = svc.ListCalls(ctx, session.ListOptions{State: "dead"})
		wantCode(t, err, session.CodeInvalid)
		_, err = svc.ListCalls(ctx, session.ListOptions{Limit: session.MaxListLimit + 1})
		wantCode(t, err, session.CodeInvalid)
	})

	t.Run("Sweep", func(t *testing.T) {
		svc, clock := newService(t) // retention: one hour
		a, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		b, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		live, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		svc.EndCall(ctx, a.ID, "", "crm")
		clock.Advance(30 * time.Minute)
		svc.EndCall(ctx, b.ID, "", "crm")
		clock.Advance(59 * time.Minute) // a ended 89 min ago, b 59 min ago
		n, err := svc.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("swept %d, want 1", n)
		}
		_, err = svc.Session(ctx, a.ID)
		wantCode(t, err, session.CodeNotFound)
		_, err = svc.History(ctx, a.ID, 0)
		wantCode(t, err, session.CodeNotFound)
		if _, err := svc.Session(ctx, b.ID); err != nil {
			t.Fatalf("b swept before its retention ran out: %v", err)
		}
		page, _ := svc.ListCalls(ctx, session.ListOptions{State: session.FilterAll})
		if len(page.Items) != 2 {
			t.Fatalf("after sweep, %d calls listed, want 2", len(page.Items))
		}
		clock.Advance(2 * time.Minute)
		if n, _ := svc.Sweep(ctx); n != 1 {
			t.Fatalf("second sweep removed %d, want 1", n)
		}
		if _, err := svc.Session(ctx, live.ID); err != nil {
			t.Fatal("the sweep removed an active call")
		}
	})

	t.Run("FlowRunAndOutbox", func(t *testing.T) {
		st := open(t)
		t.Cleanup(func() { st.Close() })
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
		wantCode(t, st.EnqueueOutbox(ctx, []*session.OutboxEntry{entry("x", "nope", t0, `{}`)}), session.CodeNotFound)
		if err := st.EnqueueOutbox(ctx, []*session.OutboxEntry{entry("e3", other.ID, t0.Add(-time.Second), `{"n":3}`)}); err != nil {
			t.Fatal(err)
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
				if err := st.EnqueueOutbox(ctx, []*session.OutboxEntry{entry(fmt.Sprintf("c%02d", i), other.ID, t0, `{}`)}); err != nil {
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

	t.Run("ConcurrentIfMatch", func(t *testing.T) {
		svc, _ := newService(t)
		c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		const workers, each = 20, 10
		var wg sync.WaitGroup
		var conflicts atomic.Int64
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					for {
						s, err := svc.Session(ctx, c.ID)
						if err != nil {
							t.Error(err)
							return
						}
						var n int
						if v, ok := s.Variables["app.counter"]; ok {
							json.Unmarshal(v, &n)
						}
						opts := client
						opts.IfMatch = s.Version
						_, err = svc.Merge(ctx, c.ID, map[string]json.RawMessage{"app.counter": json.RawMessage(strconv.Itoa(n + 1))}, opts)
						if session.ErrorCode(err) == session.CodePreconditionFailed {
							conflicts.Add(1)
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						break
					}
				}
			}()
		}
		wg.Wait()
		s, _ := svc.Session(ctx, c.ID)
		if got, want := string(s.Variables["app.counter"]), strconv.Itoa(workers*each); got != want {
			t.Fatalf("counter=%s, want %s (%d conflicts retried)", got, want, conflicts.Load())
		}
		h, _ := svc.History(ctx, c.ID, 0)
		if got, want := len(h), workers*each+1; got != want {
			t.Fatalf("history entries=%d, want %d", got, want)
		}
	})

	t.Run("Subscribe", func(t *testing.T) {
		svc, _ := newService(t)
		all := svc.Subscribe("")
		defer all.Close()
		c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		sub := svc.Subscribe(c.ID)
		defer sub.Close()
		svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client)
		svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client) // no change, no event
		svc.EndCall(ctx, c.ID, "", "crm")
		for _, want := range []struct {
			typ     session.EventType
			version uint64
		}{{session.EventSessionUpdated, 2}, {session.EventCallEnded, 3}} {
			select {
			case e := <-sub.Events():
				if e.Type != want.typ || e.Version != want.version {
					t.Fatalf("event %s v%d, want %s v%d", e.Type, e.Version, want.typ, want.version)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no %s event", want.typ)
			}
		}
		var types []session.EventType
		for len(types) < 3 {
			select {
			case e := <-all.Events():
				types = append(types, e.Type)
			case <-time.After(5 * time.Second):
				t.Fatalf("all-calls subscription got only %v", types)
			}
		}
		if types[0] != session.EventCallStarted {
			t.Fatalf("first event %s, want call.started", types[0])
		}
	})

	t.Run("AutomationsQueuedWithTheChange", func(t *testing.T) {
		st := open(t)
		t.Cleanup(func() { st.Close() })
		svc := session.NewService(st, session.Options{})
		auto := &recorder{}
		svc.SetAutomations(auto)
		sub := svc.Subscribe("")
		defer sub.Close()

		c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		if err != nil {
			t.Fatal(err)
		}
		svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client)
		svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client) // no change: fires nothing
		_, err = svc.Merge(ctx, c.ID, vars(`{"ivr.a":2}`), session.WriteOptions{Actor: "crm", Origin: session.OriginClient, IfMatch: 1})
		wantCode(t, err, session.CodePreconditionFailed) // refused: fires nothing
		svc.Merge(ctx, c.ID, vars(`{"sip.transfer.status":"failed"}`), session.WriteOptions{Actor: "sip", Origin: session.OriginSIP, Event: session.EventTransferStatus})
		// Published as session.updated, firing transfer.status automations too.
		_, w, err := svc.Write(ctx, c.ID, vars(`{"app.out.status":"failed"}`), session.WriteOptions{Actor: "flow:f", Origin: session.OriginClient, Fires: []session.EventType{session.EventTransferStatus}})
		if err != nil || !w.Changed || !w.Fired {
			t.Fatalf("Write with Fires: %+v %v", w, err)
		}
		_, w, _ = svc.Write(ctx, c.ID, vars(`{"app.out.status":"failed"}`), session.WriteOptions{Actor: "flow:f", Origin: session.OriginClient, Fires: []session.EventType{session.EventTransferStatus}})
		if w.Changed || w.Fired {
			t.Fatalf("a write that changes nothing: %+v, want neither changed nor fired", w)
		}
		svc.EndCall(ctx, c.ID, "", "crm")
		svc.EndCall(ctx, c.ID, "", "crm") // ended already: fires nothing
		ended, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b", EndReason: "redirected"}, session.WriteOptions{Actor: "sip", Origin: session.OriginSIP})
		if err != nil {
			t.Fatal(err)
		}

		// In the store as each change returned, and handed over once each.
		want := "[call.started/1 session.updated/2 transfer.status/3 session.updated/4 transfer.status/4 call.ended/5]"
		entries, err := st.CallOutbox(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(entryData(entries)); got != want {
			t.Fatalf("queued with the changes: %s, want %s", got, want)
		}
		if got, want := fmt.Sprint(entryData(auto.queued(c.ID))), want; got != want {
			t.Fatalf("handed over: %s, want %s", got, want)
		}
		entries, _ = st.CallOutbox(ctx, ended.ID)
		if got, want := fmt.Sprint(entryData(entries)), "[call.started/1 call.ended/1]"; got != want {
			t.Fatalf("a call created ended: %s, want %s", got, want)
		}
		pending, err := st.PendingOutbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 8 {
			t.Fatalf("%d entries pending, want 8", len(pending))
		}
		// Every event says its automations were queued: a subscriber that
		// fires automations must not fire them again.
		for range 7 {
			select {
			case e := <-sub.Events():
				if !e.Fired {
					t.Fatalf("event %s v%d of %s not marked Fired", e.Type, e.Version, e.CallID)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("an event is missing")
			}
		}
	})

	runEdges(t, open)
}

// recorder is a session.Automations whose every event fires one entry
// that names the event and the version.
type recorder struct {
	mu   sync.Mutex
	n    int
	done []*session.OutboxEntry
}

func (r *recorder) Fire(ev *session.Event) []*session.OutboxEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	data, _ := json.Marshal(map[string]any{"event": ev.Type, "version": ev.Version})
	return []*session.OutboxEntry{{ID: fmt.Sprintf("fired-%s-%05d", ev.CallID, r.n), CallID: ev.CallID, Created: ev.At, Due: ev.At, Data: data}}
}

func (r *recorder) Queued(entries []*session.OutboxEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = append(r.done, entries...)
}

func (r *recorder) queued(callID string) []*session.OutboxEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*session.OutboxEntry
	for _, e := range r.done {
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
