package storetest

import (
	"fmt"
	"testing"

	"github.com/callctx/callctx/session"
)

// TestHistory checks what History keeps beyond the changes: the type of
// the event each write published, which Replay gives back, and pages.
func TestHistory(t *testing.T, open Open) {
	ct := contract{open}
	t.Run("EventTypes", ct.historyEventTypes)
	t.Run("Pages", ct.historyPages)
}

func (ct contract) historyEventTypes(t *testing.T) {
	svc, _ := ct.newService(t)
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	sip := session.WriteOptions{Actor: "sip", Origin: session.OriginSIP}
	writes := []struct {
		vars string
		opts session.WriteOptions
	}{
		{`{"ivr.a":1}`, client},
		{`{"sip.refer.target":"sip:q@example.com"}`, withEvent(sip, session.EventCallReferred)},
		// A final transfer status published as session.updated (a flow's
		// outcome reported by the media platform) stays session.updated:
		// the type recorded is the one published, not one inferred.
		{`{"sip.transfer.status":"failed"}`, sip},
		{`{"sip.transfer.status":"answered"}`, withEvent(sip, session.EventTransferStatus)},
	}
	for _, w := range writes {
		if _, _, err := svc.Merge(ctx, c.ID, vars(w.vars), w.opts); err != nil {
			t.Fatalf("write %s: %v", w.vars, err)
		}
	}
	if _, err := svc.EndCall(ctx, c.ID, "done", "crm"); err != nil {
		t.Fatal(err)
	}
	want := []session.EventType{session.EventCallStarted, session.EventSessionUpdated, session.EventCallReferred,
		session.EventSessionUpdated, session.EventTransferStatus, session.EventCallEnded}
	h, err := svc.History(ctx, c.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := historyTypes(h); got != fmt.Sprint(want) {
		t.Fatalf("history event types %s, want %v", got, want)
	}
	events, err := svc.Replay(ctx, c.ID, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(want)-1 {
		t.Fatalf("replayed %d events, want %d", len(events), len(want)-1)
	}
	for i, e := range events {
		if e.Type != want[i+1] || e.Version != uint64(i+2) || e.CallID != c.ID || e.Variables != nil || len(e.Changes) == 0 {
			t.Fatalf("replayed event %d: %+v", i, e)
		}
	}
	if string(events[0].Changes["ivr.a"].New) != "1" || events[0].Actor != "crm" {
		t.Fatalf("replayed update %+v", events[0])
	}
	_, err = svc.Replay(ctx, "nope", 0, 0)
	wantCode(t, err, session.CodeNotFound)
}

func (ct contract) historyPages(t *testing.T) {
	svc, _ := ct.newService(t)
	c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	for i := range 9 {
		if _, _, err := svc.Merge(ctx, c.ID, vars(fmt.Sprintf(`{"ivr.n":%d}`, i)), client); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		after uint64
		limit int
		want  string
	}{
		{0, 3, "[1 2 3]"},
		{3, 3, "[4 5 6]"},
		{8, 3, "[9 10]"},
		{9, 1, "[10]"},
		{10, 5, "[]"},
		{4, 0, "[5 6 7 8 9 10]"},
		{0, 100, "[1 2 3 4 5 6 7 8 9 10]"},
	} {
		h, err := svc.History(ctx, c.ID, tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]uint64, len(h))
		for i, e := range h {
			got[i] = e.Version
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("after %d limit %d: versions %v, want %s", tc.after, tc.limit, got, tc.want)
		}
	}
	if events, err := svc.Replay(ctx, c.ID, 2, 2); err != nil || len(events) != 2 || events[1].Version != 4 {
		t.Fatalf("replay after 2, 2 events: %+v, %v", events, err)
	}
}

func withEvent(o session.WriteOptions, e session.EventType) session.WriteOptions {
	o.Event = e
	return o
}

func historyTypes(h []session.HistoryEntry) string {
	types := make([]session.EventType, len(h))
	for i := range h {
		types[i] = h[i].Event
	}
	return fmt.Sprint(types)
}
