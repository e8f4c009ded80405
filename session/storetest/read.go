package storetest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// TestReads checks the reads: Call, Session, SessionJSON, History, ListCalls, and times as written.
func TestReads(t *testing.T, open Open) {
	ct := contract{open}
	t.Run("NotFound", ct.readNotFound)
	t.Run("History", ct.readHistory)
	t.Run("Times", ct.readTimes)
	t.Run("ListCalls", ct.readListCalls)
	t.Run("ListCalls/Ties", ct.readListCallsTies)
	t.Run("ListCalls/CreatedWhilePaging", ct.readListCallsCreatedWhilePaging)
}

func (ct contract) readNotFound(t *testing.T) {
	svc, _ := ct.newService(t)
	_, err := svc.Call(ctx, "nope")
	wantCode(t, err, session.CodeNotFound)
	_, err = svc.Session(ctx, "nope")
	wantCode(t, err, session.CodeNotFound)
	_, _, err = svc.SessionJSON(ctx, "nope")
	wantCode(t, err, session.CodeNotFound)
	_, _, err = svc.Merge(ctx, "nope", vars(`{"ivr.a":1}`), client)
	wantCode(t, err, session.CodeNotFound)
	_, err = svc.EndCall(ctx, "nope", "", "crm")
	wantCode(t, err, session.CodeNotFound)
	_, err = svc.History(ctx, "nope", 0, 0)
	wantCode(t, err, session.CodeNotFound)
}

func (ct contract) readHistory(t *testing.T) {
	_, svc, clock := ct.fresh(t, session.Options{})
	c, s, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	clock.Advance(time.Second)
	svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client)
	clock.Advance(time.Second)
	svc.EndCall(ctx, c.ID, "done", "agent")
	h, err := svc.History(ctx, c.ID, 0, 0)
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
	if !h[0].At.Equal(edgeStart) || !h[1].At.Equal(edgeStart.Add(time.Second)) || h[2].Actor != "agent" {
		t.Fatalf("times or actor: %v %v %q", h[0].At, h[1].At, h[2].Actor)
	}
	if ch := h[2].Changes["call.state"]; string(ch.Old) != `"active"` || string(ch.New) != `"ended"` {
		t.Fatalf("end entry %+v", h[2])
	}
	for _, after := range []uint64{3, 4, 1 << 62} {
		if h, err := svc.History(ctx, c.ID, after, 0); err != nil || len(h) != 0 {
			t.Fatalf("after %d: %d entries, %v", after, len(h), err)
		}
	}
}

func (ct contract) readTimes(t *testing.T) {
	_, svc, clock := ct.fresh(t, session.Options{})
	c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	clock.Advance(1500 * time.Millisecond)
	svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client)
	s, _ := svc.Session(ctx, c.ID)
	if !s.CreatedAt.Equal(edgeStart) || !s.UpdatedAt.Equal(edgeStart.Add(1500*time.Millisecond)) {
		t.Fatalf("createdAt %v, updatedAt %v", s.CreatedAt, s.UpdatedAt)
	}
	clock.Advance(time.Second)
	svc.EndCall(ctx, c.ID, "", "crm")
	got, _ := svc.Call(ctx, c.ID)
	if !got.StartedAt.Equal(edgeStart) || !got.EndedAt.Equal(edgeStart.Add(2500*time.Millisecond)) {
		t.Fatalf("startedAt %v, endedAt %v", got.StartedAt, got.EndedAt)
	}
}

func (ct contract) readListCalls(t *testing.T) {
	svc, clock := ct.newService(t)
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
}

func (ct contract) readListCallsTies(t *testing.T) {
	_, svc, _ := ct.fresh(t, session.Options{}) // the clock stands still: equal edgeStart times
	for _, id := range []string{"b", "a", "d", "c"} {
		if _, _, err := svc.CreateCall(ctx, session.NewCall{ID: id, From: "a", To: "b"}, client); err != nil {
			t.Fatal(err)
		}
	}
	if got := listAll(t, svc, session.FilterAll, 1); got != "[d c b a]" {
		t.Fatalf("got %s, want [d c b a]", got)
	}
}

func (ct contract) readListCallsCreatedWhilePaging(t *testing.T) {
	_, svc, clock := ct.fresh(t, session.Options{})
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
}
