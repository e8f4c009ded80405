package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// TestPurge checks Purge (Service.Sweep): ended calls past retention go with everything they had.
func TestPurge(t *testing.T, open Open) {
	ct := contract{open}
	t.Run("Sweep", ct.purgeSweep)
	t.Run("Chunks", ct.purgeChunks)
}

func (ct contract) purgeSweep(t *testing.T) {
	svc, clock := ct.newService(t) // retention: one hour
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
	_, err = svc.History(ctx, a.ID, 0, 0)
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
}

func (ct contract) purgeChunks(t *testing.T) {
	st, svc, clock := ct.fresh(t, session.Options{})
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
}
