package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// runEdges holds the parts of the contract that a store built on another
// engine gets wrong first: byte-exact values, limit arithmetic after
// updates and deletes, races on create and end, paging over ties and over
// calls created meanwhile, purge in chunks, and times.
func runEdges(t *testing.T, open func(t *testing.T) session.Store) {
	ctx := context.Background()
	client := session.WriteOptions{Actor: "crm", Origin: session.OriginClient}
	start := time.Date(2026, 11, 20, 9, 0, 0, 123456789, time.UTC)
	fresh := func(t *testing.T, opts session.Options) (session.Store, *session.Service, *Clock) {
		t.Helper()
		st := open(t)
		t.Cleanup(func() { st.Close() })
		clock := NewClock(start)
		opts.Now = clock.Now
		if opts.Retention == 0 {
			opts.Retention = time.Hour
		}
		return st, session.NewService(st, opts), clock
	}

	t.Run("Merge/ValuesExact", func(t *testing.T) {
		_, svc, _ := fresh(t, session.Options{})
		c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		want := map[string]string{
			"ivr.big":   `123456789012345678901234567890`,
			"ivr.exp":   `1.0e+2`,
			"ivr.neg":   `-0`,
			"ivr.str":   `"ü \"q\" \\ \u2028 <&> 'x' \ud83d\ude00 é"`,
			"ivr.obj":   `{"b":1,"a":[true,false,null],"c":{}}`,
			"ivr.empty": `""`,
			"ivr.arr":   `[]`,
		}
		in := map[string]json.RawMessage{}
		for k, v := range want {
			in[k] = json.RawMessage(" " + v + " ")
		}
		s, err := svc.Merge(ctx, c.ID, in, client)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := svc.Session(ctx, c.ID)
		h, _ := svc.History(ctx, c.ID, 1)
		for name, v := range want {
			if g := string(s.Variables[name]); g != v {
				t.Errorf("returned %s=%s, want %s", name, g, v)
			}
			if g := string(got.Variables[name]); g != v {
				t.Errorf("stored %s=%s, want %s", name, g, v)
			}
			if len(h) != 1 {
				t.Fatalf("history entries %d, want 1", len(h))
			}
			if g := string(h[0].Changes[name].New); g != v {
				t.Errorf("history %s=%s, want %s", name, g, v)
			}
		}
	})

	t.Run("Merge/LimitsExact", func(t *testing.T) {
		// The limits must hold to the byte after updates and deletes, however
		// a store keeps count.
		st, probe, clock := fresh(t, session.Options{})
		_, s0, _ := probe.CreateCall(ctx, session.NewCall{ID: "probe1", From: "a", To: "b"}, client) // as long as "limits"
		base, baseCount := s0.Size(), len(s0.Variables)
		maxBytes := base + 100
		svc := session.NewService(st, session.Options{Now: clock.Now, Limits: session.Limits{MaxVariables: baseCount + 4, MaxSessionBytes: maxBytes}})
		c, _, err := svc.CreateCall(ctx, session.NewCall{ID: "limits", From: "a", To: "b"}, client)
		if err != nil {
			t.Fatal(err)
		}
		str := func(n int) json.RawMessage { return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`) }
		steps := []struct {
			name string
			set  map[string]json.RawMessage
			ok   bool
		}{
			{"fill the bytes exactly", map[string]json.RawMessage{"ivr.a": str(100 - len("ivr.a"))}, true},
			{"one byte more", map[string]json.RawMessage{"ivr.b": json.RawMessage("1")}, false},
			{"grow by one byte", map[string]json.RawMessage{"ivr.a": str(101 - len("ivr.a"))}, false},
			{"same size, other value", map[string]json.RawMessage{"ivr.a": json.RawMessage(`"` + strings.Repeat("y", 100-len("ivr.a")-2) + `"`)}, true},
			{"shrink", map[string]json.RawMessage{"ivr.a": str(50)}, true},
			{"fill again exactly", map[string]json.RawMessage{"ivr.b": str(45 - len("ivr.b"))}, true},
			{"delete", map[string]json.RawMessage{"ivr.a": json.RawMessage("null"), "ivr.b": json.RawMessage("null")}, true},
			{"four variables fit", map[string]json.RawMessage{"ivr.c": json.RawMessage("1"), "ivr.d": json.RawMessage("1"), "ivr.e": json.RawMessage("1"), "ivr.f": json.RawMessage("1")}, true},
			{"a fifth does not", map[string]json.RawMessage{"ivr.g": json.RawMessage("1")}, false},
			{"a swap does", map[string]json.RawMessage{"ivr.c": json.RawMessage("null"), "ivr.g": json.RawMessage("1")}, true},
			{"fill the bytes with them", map[string]json.RawMessage{"ivr.d": str(100 - 3*len("ivr.d1") - len("ivr.d"))}, true},
			{"over by one", map[string]json.RawMessage{"ivr.e": json.RawMessage("12")}, false},
		}
		for _, step := range steps {
			before, _ := svc.Session(ctx, c.ID)
			_, err := svc.Merge(ctx, c.ID, step.set, client)
			if step.ok && err != nil {
				t.Fatalf("%s: %v (session %d bytes, %d variables)", step.name, err, before.Size(), len(before.Variables))
			}
			if !step.ok {
				wantCode(t, err, session.CodeInvalid)
			}
			after, _ := svc.Session(ctx, c.ID)
			if after.Size() > maxBytes || len(after.Variables) > baseCount+4 {
				t.Fatalf("%s: session holds %d bytes, %d variables", step.name, after.Size(), len(after.Variables))
			}
		}
	})

	t.Run("EndCall/FullSession", func(t *testing.T) {
		// Ending adds call.endedAt and call.endReason; a full session must
		// still end.
		st := open(t)
		t.Cleanup(func() { st.Close() })
		svc := session.NewService(st, session.Options{Limits: session.Limits{MaxVariables: 12}})
		c, s, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		fill := map[string]json.RawMessage{}
		for i := len(s.Variables); i < 12; i++ {
			fill["ivr.v"+strconv.Itoa(i)] = json.RawMessage("1")
		}
		if _, err := svc.Merge(ctx, c.ID, fill, client); err != nil {
			t.Fatal(err)
		}
		ended, err := svc.EndCall(ctx, c.ID, "", "crm")
		if err != nil {
			t.Fatalf("end a full session: %v", err)
		}
		if ended.State != session.StateEnded {
			t.Fatalf("state %s", ended.State)
		}
	})

	t.Run("EndCall/TransferOutcome", func(t *testing.T) {
		// A transfer's outcome arrives after its call ended (the caller hung
		// up, or the call was ended over REST, while the target rang): the
		// SIP bridge's final transfer record is still accepted, and nothing
		// else is.
		_, svc, _ := fresh(t, session.Options{})
		sip := session.WriteOptions{Actor: "sip", Origin: session.OriginSIP}
		final := sip
		final.Event = session.EventTransferStatus
		c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, sip)
		if _, err := svc.Merge(ctx, c.ID, vars(`{"sip.transfer.id":"t1","sip.transfer.status":"pending"}`), sip); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.EndCall(ctx, c.ID, "caller-hangup", "crm"); err != nil {
			t.Fatal(err)
		}
		sub := svc.Subscribe(c.ID)
		defer sub.Close()
		outcome := `{"sip.transfer.id":"t1","sip.transfer.status":"failed","sip.transfer.reasonCode":"call-ended","sip.transfer.sipCode":null,"sip.transfers":[{"id":"t1","status":"failed"}]}`
		for _, tc := range []struct {
			name string
			body string
			opts session.WriteOptions
		}{
			{"not published as transfer.status", outcome, sip},
			{"not from the SIP bridge", outcome, session.WriteOptions{Actor: "system", Origin: session.OriginSystem, Event: session.EventTransferStatus}},
			{"another variable with it", `{"sip.transfer.status":"failed","sip.x-note":"late"}`, final},
			{"not final", `{"sip.transfer.status":"pending"}`, final},
			{"firing other events", outcome, session.WriteOptions{Actor: "sip", Origin: session.OriginSIP, Event: session.EventTransferStatus, Fires: []session.EventType{session.EventSessionUpdated}}},
		} {
			_, err := svc.Merge(ctx, c.ID, vars(tc.body), tc.opts)
			if session.ErrorCode(err) != session.CodeConflict {
				t.Errorf("%s: error %v, want a conflict (the call has ended)", tc.name, err)
			}
		}
		s, err := svc.Merge(ctx, c.ID, vars(outcome), final)
		if err != nil {
			t.Fatalf("the outcome of a transfer after the end: %v", err)
		}
		if s.State != session.StateEnded || s.Version != 4 || string(s.Variables["sip.transfer.status"]) != `"failed"` {
			t.Fatalf("session after the outcome = %+v", s)
		}
		select {
		case e := <-sub.Events():
			if e.Type != session.EventTransferStatus || e.Version != 4 {
				t.Fatalf("event %s v%d, want transfer.status v4", e.Type, e.Version)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no transfer.status event")
		}
		read, err := svc.Session(ctx, c.ID)
		if err != nil || read.Version != 4 || read.State != session.StateEnded || string(read.Variables["sip.transfer.reasonCode"]) != `"call-ended"` {
			t.Fatalf("read back: %+v, %v", read, err)
		}
		if call, err := svc.Call(ctx, c.ID); err != nil || call.State != session.StateEnded || call.EndReason != "caller-hangup" {
			t.Fatalf("the call after the outcome: %+v, %v", call, err)
		}
		_, err = svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), session.WriteOptions{Actor: "crm", Origin: session.OriginClient})
		wantCode(t, err, session.CodeConflict)
	})

	t.Run("CreateCall/Race", func(t *testing.T) {
		_, svc, _ := fresh(t, session.Options{})
		var ok, conflict atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := svc.CreateCall(ctx, session.NewCall{ID: "same", From: "a", To: "b"}, client)
				switch session.ErrorCode(err) {
				case "":
					ok.Add(1)
				case session.CodeConflict:
					conflict.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 || conflict.Load() != 15 {
			t.Fatalf("created %d, conflicts %d; want 1 and 15", ok.Load(), conflict.Load())
		}
		page, _ := svc.ListCalls(ctx, session.ListOptions{State: session.FilterAll})
		if len(page.Items) != 1 {
			t.Fatalf("%d calls listed, want 1", len(page.Items))
		}
	})

	t.Run("EndCall/Race", func(t *testing.T) {
		st, svc, _ := fresh(t, session.Options{})
		c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		var ended atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				at := start.Add(time.Duration(i) * time.Second)
				p := &session.Patch{Set: map[string]json.RawMessage{"call.state": json.RawMessage(`"ended"`)}, Actor: "crm", At: at, AllowEnded: true}
				_, _, _, e, err := st.EndCall(ctx, c.ID, at, "r"+strconv.Itoa(i), p)
				if err != nil {
					t.Error(err)
				}
				if e {
					ended.Add(1)
				}
			}()
		}
		wg.Wait()
		if ended.Load() != 1 {
			t.Fatalf("ended %d times, want once", ended.Load())
		}
		h, _ := svc.History(ctx, c.ID, 0)
		if len(h) != 2 {
			t.Fatalf("history entries %d, want 2", len(h))
		}
		page, _ := svc.ListCalls(ctx, session.ListOptions{State: session.FilterEnded})
		if len(page.Items) != 1 {
			t.Fatalf("%d ended calls listed, want 1", len(page.Items))
		}
		if n, err := st.Purge(ctx, start.Add(time.Hour), 10); err != nil || n != 1 {
			t.Fatalf("purge: %d, %v; want 1", n, err)
		}
	})

	t.Run("History", func(t *testing.T) {
		_, svc, clock := fresh(t, session.Options{})
		c, s, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		clock.Advance(time.Second)
		svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client)
		clock.Advance(time.Second)
		svc.EndCall(ctx, c.ID, "done", "agent")
		h, err := svc.History(ctx, c.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 3 {
			t.Fatalf("entries %d, want 3", len(h))
		}
		for i, e := range h {
			if e.Version != uint64(i+1) {
				t.Fatalf("entry %d has version %d", i, e.Version)
			}
		}
		if len(h[0].Changes) != len(s.Variables) || h[0].Changes["call.id"].Old != nil || string(h[0].Changes["call.id"].New) != `"`+c.ID+`"` {
			t.Fatalf("first entry %+v", h[0])
		}
		if !h[0].At.Equal(start) || !h[1].At.Equal(start.Add(time.Second)) || h[2].Actor != "agent" {
			t.Fatalf("times or actor: %v %v %q", h[0].At, h[1].At, h[2].Actor)
		}
		if ch := h[2].Changes["call.state"]; string(ch.Old) != `"active"` || string(ch.New) != `"ended"` {
			t.Fatalf("end entry %+v", h[2])
		}
		for _, after := range []uint64{3, 4, 1 << 62} {
			if h, err := svc.History(ctx, c.ID, after); err != nil || len(h) != 0 {
				t.Fatalf("after %d: %d entries, %v", after, len(h), err)
			}
		}
	})

	t.Run("Times", func(t *testing.T) {
		_, svc, clock := fresh(t, session.Options{})
		c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
		clock.Advance(1500 * time.Millisecond)
		svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client)
		s, _ := svc.Session(ctx, c.ID)
		if !s.CreatedAt.Equal(start) || !s.UpdatedAt.Equal(start.Add(1500*time.Millisecond)) {
			t.Fatalf("createdAt %v, updatedAt %v", s.CreatedAt, s.UpdatedAt)
		}
		clock.Advance(time.Second)
		svc.EndCall(ctx, c.ID, "", "crm")
		got, _ := svc.Call(ctx, c.ID)
		if !got.StartedAt.Equal(start) || !got.EndedAt.Equal(start.Add(2500*time.Millisecond)) {
			t.Fatalf("startedAt %v, endedAt %v", got.StartedAt, got.EndedAt)
		}
	})

	t.Run("Apply/NoChange", func(t *testing.T) {
		st, svc, _ := fresh(t, session.Options{})
		c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b", Variables: vars(`{"ivr.a":1}`)}, client)
		p := &session.Patch{Set: map[string]json.RawMessage{"ivr.a": json.RawMessage("1"), "ivr.none": nil}, IfMatch: 1, Actor: "x", At: start}
		s, h, err := st.Apply(ctx, c.ID, p)
		if err != nil || h != nil || s == nil || s.Version != 1 || string(s.Variables["ivr.a"]) != "1" {
			t.Fatalf("no-op apply: %+v, %+v, %v", s, h, err)
		}
	})

	t.Run("ListCalls/Ties", func(t *testing.T) {
		_, svc, _ := fresh(t, session.Options{}) // the clock stands still: equal start times
		for _, id := range []string{"b", "a", "d", "c"} {
			if _, _, err := svc.CreateCall(ctx, session.NewCall{ID: id, From: "a", To: "b"}, client); err != nil {
				t.Fatal(err)
			}
		}
		if got := listAll(t, svc, session.FilterAll, 1); got != "[d c b a]" {
			t.Fatalf("got %s, want [d c b a]", got)
		}
	})

	t.Run("ListCalls/CreatedWhilePaging", func(t *testing.T) {
		_, svc, clock := fresh(t, session.Options{})
		for i := 0; i < 4; i++ {
			clock.Advance(time.Second)
			svc.CreateCall(ctx, session.NewCall{ID: "c" + strconv.Itoa(i), From: "a", To: "b"}, client)
		}
		page, _ := svc.ListCalls(ctx, session.ListOptions{Limit: 2})
		clock.Advance(time.Second)
		svc.CreateCall(ctx, session.NewCall{ID: "new", From: "a", To: "b"}, client)
		svc.EndCall(ctx, "c1", "", "crm")
		var got []string
		for _, c := range page.Items {
			got = append(got, c.ID)
		}
		for cursor := page.Next; cursor != ""; {
			p, err := svc.ListCalls(ctx, session.ListOptions{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range p.Items {
				got = append(got, c.ID)
			}
			cursor = p.Next
		}
		if fmt.Sprint(got) != "[c3 c2 c0]" {
			t.Fatalf("got %v, want [c3 c2 c0]", got)
		}
	})

	t.Run("Purge/Chunks", func(t *testing.T) {
		st, svc, clock := fresh(t, session.Options{})
		for i := 0; i < 5; i++ {
			c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
			svc.EndCall(ctx, c.ID, "", "crm")
			clock.Advance(time.Minute)
		}
		live, _, _ := svc.CreateCall(ctx, session.NewCall{ID: "live", From: "a", To: "b"}, client)
		before := clock.Now()
		var got []int
		for i := 0; i < 4; i++ {
			n, err := st.Purge(ctx, before, 2)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, n)
		}
		if fmt.Sprint(got) != "[2 2 1 0]" {
			t.Fatalf("purged %v, want [2 2 1 0]", got)
		}
		if got := listAll(t, svc, session.FilterAll, 10); got != "["+live.ID+"]" {
			t.Fatalf("left %s", got)
		}
		if got := listAll(t, svc, session.FilterEnded, 10); got != "[]" {
			t.Fatalf("ended left %s", got)
		}
	})
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
