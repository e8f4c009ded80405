package storetest

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// TestEndCall checks EndCall: ending, ending twice, a full session, a transfer outcome after the end, races.
func TestEndCall(t *testing.T, open Open) {
	ct := contract{open}
	t.Run("OK", ct.endCallOK)
	t.Run("FullSession", ct.endCallFullSession)
	t.Run("TransferOutcome", ct.endCallTransferOutcome)
	t.Run("Race", ct.endCallRace)
}

func (ct contract) endCallOK(t *testing.T) {
	svc, _ := ct.newService(t)
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
	_, _, err = svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client)
	wantCode(t, err, session.CodeConflict)
}

func (ct contract) endCallFullSession(t *testing.T) {
	// Ending adds call.endedAt and call.endReason; a full session must
	// still end.
	st := ct.open(t)
	svc := session.NewService(st, session.Options{Limits: session.Limits{MaxVariables: 12}})
	c, s, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	fill := map[string]json.RawMessage{}
	for i := len(s.Variables); i < 12; i++ {
		fill["ivr.v"+strconv.Itoa(i)] = json.RawMessage("1")
	}
	if _, _, err := svc.Merge(ctx, c.ID, fill, client); err != nil {
		t.Fatal(err)
	}
	ended, err := svc.EndCall(ctx, c.ID, "", "crm")
	if err != nil {
		t.Fatalf("end a full session: %v", err)
	}
	if ended.State != session.StateEnded {
		t.Fatalf("state %s", ended.State)
	}
}

func (ct contract) endCallTransferOutcome(t *testing.T) {
	// A transfer's outcome arrives after its call ended (the caller hung
	// up, or the call was ended over REST, while the target rang): the
	// SIP bridge's final transfer record is still accepted, and nothing
	// else is.
	_, svc, _ := ct.fresh(t, session.Options{})
	sip := session.WriteOptions{Actor: "sip", Origin: session.OriginSIP}
	final := sip
	final.Event = session.EventTransferStatus
	c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, sip)
	if _, _, err := svc.Merge(ctx, c.ID, vars(`{"sip.transfer.id":"t1","sip.transfer.status":"pending"}`), sip); err != nil {
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
		_, _, err := svc.Merge(ctx, c.ID, vars(tc.body), tc.opts)
		if session.ErrorCode(err) != session.CodeConflict {
			t.Errorf("%s: error %v, want a conflict (the call has ended)", tc.name, err)
		}
	}
	s, _, err := svc.Merge(ctx, c.ID, vars(outcome), final)
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
	_, _, err = svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), session.WriteOptions{Actor: "crm", Origin: session.OriginClient})
	wantCode(t, err, session.CodeConflict)
}

func (ct contract) endCallRace(t *testing.T) {
	st, svc, _ := ct.fresh(t, session.Options{})
	c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	var ended atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := edgeStart.Add(time.Duration(i) * time.Second)
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
	h, _ := svc.History(ctx, c.ID, 0, 0)
	if len(h) != 2 {
		t.Fatalf("history entries %d, want 2", len(h))
	}
	page, _ := svc.ListCalls(ctx, session.ListOptions{State: session.FilterEnded})
	if len(page.Items) != 1 {
		t.Fatalf("%d ended calls listed, want 1", len(page.Items))
	}
	if n, err := st.Purge(ctx, edgeStart.Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v; want 1", n, err)
	}
}
