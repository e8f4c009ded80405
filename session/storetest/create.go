package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// TestCreateCall checks CreateCall: a new call, its first version and history entry; created ended; refused.
func TestCreateCall(t *testing.T, open Open) {
	ct := contract{open}
	t.Run("OK", ct.createOK)
	t.Run("ErrConflict", ct.createErrConflict)
	t.Run("ErrInvalidVariables", ct.createErrInvalidVariables)
	t.Run("Ended", ct.createEnded)
	t.Run("Race", ct.createRace)
}

func (ct contract) createOK(t *testing.T) {
	svc, _ := ct.newService(t)
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
}

func (ct contract) createErrConflict(t *testing.T) {
	svc, _ := ct.newService(t)
	if _, _, err := svc.CreateCall(ctx, session.NewCall{ID: "abc", From: "a", To: "b"}, client); err != nil {
		t.Fatal(err)
	}
	_, _, err := svc.CreateCall(ctx, session.NewCall{ID: "abc", From: "a", To: "b"}, client)
	wantCode(t, err, session.CodeConflict)
}

func (ct contract) createErrInvalidVariables(t *testing.T) {
	svc, _ := ct.newService(t)
	_, _, err := svc.CreateCall(ctx, session.NewCall{ID: "abc", Variables: vars(`{"call.from":"x","foo.bar":1}`)}, client)
	wantCode(t, err, session.CodeInvalid)
	if got := len(session.ErrorFields(err)); got != 2 {
		t.Fatalf("fields=%d, want 2: %v", got, session.ErrorFields(err))
	}
	_, err = svc.Call(ctx, "abc")
	wantCode(t, err, session.CodeNotFound)
}

func (ct contract) createEnded(t *testing.T) {
	svc, clock := ct.newService(t) // retention: one hour
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
	_, _, err = svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client)
	wantCode(t, err, session.CodeConflict)
	clock.Advance(61 * time.Minute)
	if n, err := svc.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep removed %d (%v), want the call ended at creation", n, err)
	}
}

func (ct contract) createRace(t *testing.T) {
	_, svc, _ := ct.fresh(t, session.Options{})
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
}
