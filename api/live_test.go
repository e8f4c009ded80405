package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/stats"
)

// upserted returns the calls of a calls.upsert event by ID.
func upserted(t *testing.T, ev sseEvent) map[string]map[string]any {
	t.Helper()
	if ev.Event != "calls.upsert" {
		t.Fatalf("event %q, want calls.upsert: %v", ev.Event, ev.Data)
	}
	out := map[string]map[string]any{}
	for _, c := range ev.Data["calls"].([]any) {
		m := c.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

func TestStats(t *testing.T) {
	s, _, board := newBoardServer(t, flowsYAML)
	id := s.createCall(map[string]any{"from": "+4930123456", "to": "+4940555000", "flow": "hotline"})
	s.do("POST", "/v1/calls/"+id+"/flow/next", map[string]any{})
	board.Transfer("refer", "busy")

	t.Run("Report", func(t *testing.T) {
		res := s.do("GET", "/v1/stats?window=5m", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		r := res.JSON(t)
		if r["windowSeconds"] != 300.0 || len(r["minutes"].([]any)) != 5 || r["activeCalls"] != 1.0 {
			t.Errorf("report %s", res.Body)
		}
		tr := r["transfers"].(map[string]any)
		busy := tr["failedBy"].(map[string]any)["busy"].([]any)
		// In the last minute, or the one before when a minute began since the transfer.
		if busy[3].(float64)+busy[4].(float64) != 1 || tr["totals"].(map[string]any)["busy"] != 1.0 {
			t.Errorf("transfers %v", tr)
		}
		flows := r["flows"].([]any)
		hotline := flows[0].(map[string]any)
		if hotline["flow"] != "hotline" || hotline["calls"] != 1.0 {
			t.Fatalf("flows %v", flows)
		}
		first := hotline["nodes"].([]any)[0].(map[string]any)
		if first["node"] != "hello" || first["calls"] != 1.0 || first["type"] != "say" {
			t.Errorf("the call stands at %v, want hello", first)
		}
		if res := s.do("GET", "/v1/stats", nil); len(res.JSON(t)["minutes"].([]any)) != 60 {
			t.Errorf("the default window is not an hour")
		}
	})

	t.Run("Stream", func(t *testing.T) {
		st, status := s.openStream(t, "/v1/stats/events?window=2m")
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		ev := st.next(t)
		if ev.Event != "stats" || ev.Data["windowSeconds"] != 120.0 {
			t.Fatalf("first event %+v", ev)
		}
		board.Transfer("refer", "answered")
		for {
			// The transfer counts in the window's last minute, or in the one before when a
			// minute began before the report was made (it comes up to a second later).
			ev = st.next(t)
			sum := 0.0
			for _, n := range ev.Data["transfers"].(map[string]any)["answered"].([]any) {
				sum += n.(float64)
			}
			if sum == 1 {
				break
			}
		}
	})

	t.Run("Errors", func(t *testing.T) {
		wantProblem(t, s.do("GET", "/v1/stats?window=90s", nil), http.StatusBadRequest, "whole minutes")
		wantProblem(t, s.do("GET", "/v1/stats/events?window=2d", nil), http.StatusBadRequest, "whole minutes")
		_, plain := newTestServer(t, nil)
		wantProblem(t, plain.do("GET", "/v1/stats", nil), http.StatusNotFound, "wallboard is not enabled")
		wantProblem(t, plain.do("GET", "/v1/events/calls", nil), http.StatusNotFound, "wallboard is not enabled")
	})
}

func TestCallList_Stream(t *testing.T) {
	s, _, _ := newBoardServer(t, flowsYAML)
	first := s.createCall(map[string]any{"from": "+4930111111", "to": "+4940555000", "flow": "hotline"})

	st, status := s.openStream(t, "/v1/events/calls")
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if ev := st.next(t); ev.Event != "calls.reset" {
		t.Fatalf("first event %+v, want calls.reset", ev)
	}
	ev := st.next(t)
	got := upserted(t, ev)
	if c := got[first]; c == nil || c["from"] != "+4930111111" || c["flow"] != "hotline" || c["state"] != "active" {
		t.Fatalf("the list holds %v", got)
	}

	second := s.createCall(map[string]any{"from": "+4930222222", "to": "+4940555000"})
	if c := upserted(t, st.next(t))[second]; c == nil || c["from"] != "+4930222222" {
		t.Fatalf("the new call did not come")
	}

	s.do("POST", "/v1/calls/"+first+"/flow/next", map[string]any{})
	for c := upserted(t, st.next(t))[first]; c == nil || c["node"] != "hello"; c = upserted(t, st.next(t))[first] {
	}
	s.do("POST", "/v1/calls/"+second+"/end", map[string]any{"reason": "caller-hangup"})
	ev = st.next(t)
	if c := upserted(t, ev)[second]; c == nil || c["state"] != "ended" || c["endReason"] != "caller-hangup" || c["endedAt"] == nil {
		t.Fatalf("the end did not come: %v", ev.Data)
	}

	t.Run("Resume", func(t *testing.T) {
		s.do("POST", "/v1/calls/"+first+"/flow/next", map[string]any{"status": "done"})
		again, _ := s.openStream(t, "/v1/events/calls", "Last-Event-ID", ev.ID)
		got := upserted(t, again.next(t))
		if len(got) != 1 || got[first] == nil || got[first]["node"] != "ask" {
			t.Fatalf("after %s: %v, want only the first call, at ask", ev.ID, got)
		}
	})
}

// TestLiveStreams_Timeout: timeoutSeconds ends a live stream after the
// state was sent.
func TestLiveStreams_Timeout(t *testing.T) {
	s, _, _ := newBoardServer(t, flowsYAML)
	for _, path := range []string{"/v1/events/calls?timeoutSeconds=1", "/v1/stats/events?timeoutSeconds=1"} {
		st, status := s.openStream(t, path)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d", path, status)
		}
		st.next(t)
		for ev := range st.events {
			if ev.Event != "calls.upsert" && ev.Event != "stats" {
				t.Errorf("%s: event %q", path, ev.Event)
			}
		}
	}
	wantProblem(t, s.do("GET", "/v1/events/calls?timeoutSeconds=0", nil), http.StatusBadRequest, "timeoutSeconds")
}

// TestStats_Targets: with the SIP bridge's targets, the report holds them
// as /readyz shows them.
func TestStats_Targets(t *testing.T) {
	st := openStore(t)
	svc := session.NewService(st, session.Options{})
	board := stats.New(stats.Config{Service: svc})
	if err := board.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(board.Close)
	up := false
	_, s := serve(t, api.Config{Service: svc, Board: board, SIPTargets: func() []api.SIPTarget {
		return []api.SIPTarget{{Target: "sip:127.0.0.1:5099", Up: &up, Error: "no answer within 1s"}}
	}})
	r := s.do("GET", "/v1/stats?window=1m", nil).JSON(t)
	targets := r["targets"].([]any)
	if len(targets) != 1 || targets[0].(map[string]any)["target"] != "sip:127.0.0.1:5099" || targets[0].(map[string]any)["up"] != false {
		t.Fatalf("targets %v", r["targets"])
	}
	st2, _ := s.openStream(t, "/v1/stats/events?window=1m&timeoutSeconds=1")
	if ev := st2.next(t); len(ev.Data["targets"].([]any)) != 1 {
		t.Fatalf("the stream's report lacks the targets: %v", ev.Data)
	}
	if _, ok := newFlowServer(t).do("GET", "/v1/stats", nil).JSON(t)["targets"]; ok {
		t.Error("a server without the SIP bridge reports targets")
	}
}
