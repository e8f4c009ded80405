package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// TestEvents checks events and the automations a change fires, queued with it.
func TestEvents(t *testing.T, open Open) {
	ct := contract{open}
	t.Run("Subscribe", ct.eventsSubscribe)
	t.Run("AutomationsQueuedWithTheChange", ct.eventsAutomationsQueuedWithTheChange)
	t.Run("MaxEventFirings", ct.eventsMaxEventFirings)
}

func (ct contract) eventsSubscribe(t *testing.T) {
	svc, _ := ct.newService(t)
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
}

func (ct contract) eventsAutomationsQueuedWithTheChange(t *testing.T) {
	st := ct.open(t)
	svc := session.NewService(st, session.Options{})
	auto := &recorder{}
	svc.SetAutomations(auto)

	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client)
	svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client) // no change: fires nothing
	_, _, err = svc.Merge(ctx, c.ID, vars(`{"ivr.a":2}`), session.WriteOptions{Actor: "crm", Origin: session.OriginClient, IfMatch: 1})
	wantCode(t, err, session.CodePreconditionFailed) // refused: fires nothing
	svc.Merge(ctx, c.ID, vars(`{"sip.transfer.status":"failed"}`), session.WriteOptions{Actor: "sip", Origin: session.OriginSIP, Event: session.EventTransferStatus})
	// Published as session.updated, firing transfer.status automations too.
	_, changed, err := svc.Merge(ctx, c.ID, vars(`{"app.out.status":"failed"}`), session.WriteOptions{Actor: "flow:f", Origin: session.OriginClient, Fires: []session.EventType{session.EventTransferStatus}})
	if err != nil || !changed {
		t.Fatalf("Merge with Fires: changed=%v, %v", changed, err)
	}
	_, changed, _ = svc.Merge(ctx, c.ID, vars(`{"app.out.status":"failed"}`), session.WriteOptions{Actor: "flow:f", Origin: session.OriginClient, Fires: []session.EventType{session.EventTransferStatus}})
	if changed {
		t.Fatal("a write that changes nothing reports a change (and may fire automations)")
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
}

// An automation fires at most MaxEventFirings times on one call's
// events: the store counts what it queued, so the guard holds however
// the writes are spread over time, restarts and nodes. Entries a flow
// node queued, and other automations, do not count.
func (ct contract) eventsMaxEventFirings(t *testing.T) {
	st := ct.open(t)
	svc := session.NewService(st, session.Options{})
	auto := &recorder{}
	svc.SetAutomations(auto)
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client) // fires once
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= session.MaxEventFirings+5; i++ {
		if _, _, err := svc.Merge(ctx, c.ID, vars(fmt.Sprintf(`{"app.n":%d}`, i)), client); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := st.CallOutbox(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(entries), session.MaxEventFirings; got != want {
		t.Fatalf("%d entries queued, want %d", got, want)
	}
	if got, want := len(auto.queued(c.ID)), session.MaxEventFirings; got != want {
		t.Fatalf("%d handed over as queued, want %d", got, want)
	}
	if got, want := len(auto.left(c.ID)), 6; got != want {
		t.Fatalf("%d handed over as left out, want %d", got, want)
	}
	// A node's entry, and another automation's event, still go in.
	now := time.Now().UTC()
	more := []*session.OutboxEntry{
		{ID: "node-1", CallID: c.ID, Created: now, Due: now, Automation: "rec", Data: json.RawMessage(`{}`)},
		{ID: "other-1", CallID: c.ID, Created: now, Due: now, Automation: "other", Event: session.EventSessionUpdated, Data: json.RawMessage(`{}`)},
		{ID: "rec-1", CallID: c.ID, Created: now, Due: now, Automation: "rec", Event: session.EventSessionUpdated, Data: json.RawMessage(`{}`)},
	}
	queued, err := st.EnqueueOutbox(ctx, more)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(queued), 2; got != want || queued[0].ID != "node-1" || queued[1].ID != "other-1" {
		t.Fatalf("EnqueueOutbox queued %d of them, want %d (node-1, other-1)", got, want)
	}
}
