package flow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
)

// recorder is an Observer that keeps what it hears.
type recorder struct {
	mu      sync.Mutex
	events  []string
	pending []int
	moves   []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}

func (r *recorder) TriggerEvaluated(trigger string, fired bool) {
	r.add(fmt.Sprintf("trigger %s %v", trigger, fired))
}
func (r *recorder) AutomationSent(a string) { r.add("sent " + a) }
func (r *recorder) AutomationFailed(a string, final bool) {
	r.add(fmt.Sprintf("failed %s final=%v", a, final))
}
func (r *recorder) AutomationsPending(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, n)
}

func (r *recorder) CallMoved(callID, flowName, node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.moves = append(r.moves, flowName+"/"+node)
}

func (r *recorder) snapshot() ([]string, []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := append([]string(nil), r.events...)
	sort.Strings(ev)
	return ev, append([]int(nil), r.pending...)
}

func TestEngine_Observer(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		n := hits[r.URL.Path]
		mu.Unlock()
		switch {
		case r.URL.Path == "/notify" && n == 1:
			w.WriteHeader(http.StatusServiceUnavailable) // retried, then accepted
		case r.URL.Path == "/doomed":
			w.WriteHeader(http.StatusInternalServerError) // retried until it gives up
		}
	}))
	t.Cleanup(recv.Close)
	snap := mustCompile(t, `
triggers:
  vip: {when: {var: ivr.vip, op: eq, value: true}}
  has-note: {when: {var: ivr.note, op: set}}
automations:
  notify:
    url: "${CRM_URL}/notify"
    retry: {attempts: 3, backoff: 5ms, max_backoff: 5ms}
  doomed:
    url: "${CRM_URL}/doomed"
    retry: {attempts: 2, backoff: 5ms, max_backoff: 5ms}
  on-note:
    url: "${CRM_URL}/note"
    on: [session.updated]
    when: has-note
flows:
  f:
    start: fire
    nodes:
      fire: {type: automation, automations: [notify, doomed], next: check}
      check: {type: switch, cases: [{trigger: vip, next: bye}], default: bye}
      bye: {type: hangup}
`, env(recv.URL))
	rec := &recorder{}
	w := newWorld(t, snap, func(c *flow.Config) { c.Observer = rec })
	c, _, err := w.svc.CreateCall(context.Background(), session.NewCall{From: "a", To: "b", Flow: "f",
		Variables: map[string]json.RawMessage{"ivr.vip": json.RawMessage(`true`)}}, session.WriteOptions{Origin: session.OriginClient})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.engine.StartCall(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if run := w.next(t, c.ID, &flow.Outcome{}); actionType(run) != "hangup" {
		t.Fatalf("action %s, want hangup", actionType(run))
	}
	w.write(t, c.ID, map[string]any{"ivr.note": "hello"})

	testenv.WaitFor(t, "every automation finished", func() bool {
		ds, _ := w.engine.Deliveries(context.Background(), c.ID)
		for _, d := range ds {
			if d.Status == flow.DeliveryPending {
				return false
			}
		}
		return len(ds) == 3
	})
	testenv.WaitFor(t, "the outbox reported empty", func() bool {
		_, pending := rec.snapshot()
		return len(pending) > 0 && pending[len(pending)-1] == 0
	})
	events, pending := rec.snapshot()
	got := strings.Join(events, "\n")
	want := strings.Join([]string{
		"failed doomed final=false",
		"failed doomed final=true",
		"failed notify final=false",
		"sent notify",
		"sent on-note",
		"trigger has-note true", // the on-note filter, on the write
		"trigger vip true",      // the switch
	}, "\n")
	if got != want {
		t.Fatalf("observed:\n%s\nwant:\n%s", got, want)
	}
	highest := 0
	for _, n := range pending {
		highest = max(highest, n)
	}
	if highest < 2 {
		t.Fatalf("pending went up to %d, want at least 2 (notify and doomed were queued together); reports %v", highest, pending)
	}
	// Where the call stood after each stored step: at the switch once the
	// automation node queued, then nowhere once the hangup ended the flow.
	rec.mu.Lock()
	moves := strings.Join(rec.moves, " ")
	rec.mu.Unlock()
	if moves != "f/check f/" {
		t.Fatalf("moves %q, want \"f/check f/\"", moves)
	}
}
