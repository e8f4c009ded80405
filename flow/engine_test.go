package flow_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
)

// world is a real bbolt store, a Service over it and an Engine.
type world struct {
	dir    string
	store  *bolt.Store
	svc    *session.Service
	engine *flow.Engine
}

func newWorld(t *testing.T, snap *flow.Snapshot, tweak func(*flow.Config)) *world {
	t.Helper()
	w := &world{dir: t.TempDir()}
	w.open(t, snap, tweak)
	t.Cleanup(func() { w.close(t) })
	return w
}

func (w *world) open(t *testing.T, snap *flow.Snapshot, tweak func(*flow.Config)) {
	t.Helper()
	st, err := bolt.Open(w.dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.store = st
	w.svc = session.NewService(st, session.Options{})
	cfg := flow.Config{Service: w.svc, Store: st, Snapshot: snap, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Timeout: 2 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	w.engine = flow.NewEngine(cfg)
	if err := w.engine.Open(); err != nil {
		t.Fatal(err)
	}
}

func (w *world) close(t *testing.T) {
	t.Helper()
	if w.store == nil {
		return
	}
	w.engine.Close()
	w.store.Close()
	w.store = nil
	bolttest.MustCheck(t, w.dir)
}

func (w *world) call(t *testing.T, flowName, from string) string {
	t.Helper()
	c, _, err := w.engine.CreateCall(context.Background(), session.NewCall{From: from, To: "+4940555000", Flow: flowName},
		flow.CallOptions{WriteOptions: session.WriteOptions{Actor: "test", Origin: session.OriginClient}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func (w *world) next(t *testing.T, callID string, o *flow.Outcome) *flow.Run {
	t.Helper()
	run, err := w.engine.Next(context.Background(), callID, o)
	if err != nil {
		t.Fatalf("Next(%+v): %v", o, err)
	}
	return run
}

func (w *world) write(t *testing.T, callID string, vars map[string]any) {
	t.Helper()
	raw := map[string]json.RawMessage{}
	for k, v := range vars {
		raw[k], _ = json.Marshal(v)
	}
	if _, _, err := w.svc.Merge(context.Background(), callID, raw, session.WriteOptions{Actor: "crm", Origin: session.OriginClient}); err != nil {
		t.Error(err)
	}
}

func done() *flow.Outcome { return &flow.Outcome{Status: flow.StatusDone} }

func input(s string) *flow.Outcome { return &flow.Outcome{Input: &s} }

func actionType(run *flow.Run) string {
	if run.Action == nil {
		return "<none>"
	}
	return run.Action["type"].(string)
}

// crm is an httptest CRM: it verifies signatures, records what it gets and
// answers lookups by writing into the session, after a delay, from its own
// goroutine (as a real CRM answers through the REST API).
type crm struct {
	t       *testing.T
	mu      sync.Mutex
	got     []received
	respond func(r received) // runs in its own goroutine
	status  func(n int) int  // the HTTP status of the n-th request (1-based); 200 when nil
	srv     *httptest.Server
}

type received struct {
	Path, Key, CallID, Automation, Attempt string
	Body                                   map[string]any
	SignatureOK                            bool
}

func newCRM(t *testing.T) *crm {
	c := &crm{t: t}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *crm) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := received{
		Path: r.URL.Path, Key: r.Header.Get("Idempotency-Key"), CallID: r.Header.Get("X-Callctx-Call-Id"),
		Automation: r.Header.Get("X-Callctx-Automation"), Attempt: r.Header.Get("X-Callctx-Attempt"),
		SignatureOK: verify(r.Header.Get("X-Callctx-Signature"), body),
	}
	_ = json.Unmarshal(body, &rec.Body)
	c.mu.Lock()
	c.got = append(c.got, rec)
	n := len(c.got)
	c.mu.Unlock()
	status := http.StatusOK
	if c.status != nil {
		status = c.status(n)
	}
	if status == http.StatusOK && c.respond != nil {
		go c.respond(rec)
	}
	w.WriteHeader(status)
}

// verify checks a signature with its own HMAC code, independent of the
// package's: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<body>")).
func verify(header string, body []byte) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(part, "t="); ok {
			ts = v
		}
		if v, ok := strings.CutPrefix(part, "v1="); ok {
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, []byte(testSecret))
	fmt.Fprintf(mac, "%s.%s", ts, body)
	want := hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(sig))
}

func (c *crm) requests() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.got...)
}

// count is the number of requests received for path and call.
func (c *crm) count(path, callID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.got {
		if r.Path == path && r.CallID == callID {
			n++
		}
	}
	return n
}

func TestEngine_orderStatus(t *testing.T) {
	c := newCRM(t)
	snap := mustLoad(t, "../examples/order-status/flows", env(c.srv.URL))
	w := newWorld(t, snap, nil)
	profiles := map[string]map[string]any{
		"+4930123456": {"ivr.email": "jane@example.com", "ivr.premium": true, "ivr.track_id": "TRK-1"},
		"AB12345":     {"ivr.email": "max@example.com", "ivr.premium": false, "ivr.track_id": "TRK-2"},
	}
	c.respond = func(r received) {
		if r.Path != "/callctx/lookup" {
			return
		}
		time.Sleep(30 * time.Millisecond) // the CRM takes its time
		key, _ := r.Body["from"].(string)
		if ref, ok := r.Body["reference"].(string); ok {
			key = ref
		}
		vars, ok := profiles[key]
		if !ok {
			vars = map[string]any{"ivr.lookup": "not_found"}
		}
		w.write(t, r.CallID, vars)
	}

	t.Run("KnownPremiumCaller", func(t *testing.T) {
		id := w.call(t, "order-status", "+4930123456")
		run := w.next(t, id, nil)
		if got := actionType(run); got != "play" {
			t.Fatalf("first action %s, want play", got)
		}
		run = w.next(t, id, done()) // the switch waits for the CRM's answer
		if got := actionType(run); got != "transfer" {
			t.Fatalf("action %s, want transfer; path %s", got, nodes(run))
		}
		if run.Action["target"] != "sip:premium-queue@pbx.example.com" {
			t.Fatalf("transfer %v", run.Action)
		}
		st := run.Path[2]
		if st.Node != "known-caller" || st.Wait == nil || !st.Wait.Fired || st.Wait.WaitedMs >= st.Wait.TimeoutMs {
			t.Fatalf("the wait was not woken by the CRM's write: %+v", st.Wait)
		}
		run = w.next(t, id, done())
		if !run.Done || run.Action != nil {
			t.Fatalf("after the transfer: done=%v action=%v", run.Done, run.Action)
		}
	})

	t.Run("UnknownCallerTypesReference", func(t *testing.T) {
		id := w.call(t, "order-status", "+4930999999")
		w.next(t, id, nil)
		run := w.next(t, id, done())
		if got := actionType(run); got != "input" {
			t.Fatalf("action %s, want input; path %s", got, nodes(run))
		}
		if run.Action["var"] != "app.inputReader.reference" || run.Action["min"] != 7 {
			t.Fatalf("input action %v", run.Action)
		}
		run = w.next(t, id, input("AB12345"))
		if got := actionType(run); got != "say" {
			t.Fatalf("action %s, want say", got)
		}
		run = w.next(t, id, done())
		if got, want := actionType(run), "say"; got != want || !strings.Contains(run.Action["text"].(string), "max@example.com") {
			t.Fatalf("action %v, want the e-mail confirmation; path %s", run.Action, nodes(run))
		}
		testenv.WaitFor(t, "the tracking e-mail", func() bool {
			for _, r := range c.requests() {
				if r.Path == "/callctx/email" && r.CallID == id {
					return r.Body["trackingUrl"] == "https://shop.example.com/track/TRK-2" && r.SignatureOK
				}
			}
			return false
		})
		v, err := w.svc.Variable(context.Background(), id, "app.inputReader.reference")
		if err != nil || string(v) != `"AB12345"` {
			t.Fatalf("app.inputReader.reference = %s, %v", v, err)
		}
	})

	t.Run("EverySignatureVerifies", func(t *testing.T) {
		for _, r := range c.requests() {
			if !r.SignatureOK || r.Key == "" {
				t.Errorf("request %+v: signature or key missing", r)
			}
		}
	})
}

func TestEngine_waitTimeout(t *testing.T) {
	snap := mustCompile(t, `
triggers:
  answered: {when: {var: ivr.answer, op: set}}
flows:
  f:
    start: hold
    nodes:
      hold:
        type: switch
        wait: {until: answered, timeout: 150ms}
        cases: [{trigger: answered, next: yes}]
        default: no
      yes: {type: say, text: "answered {ivr.answer}", next: bye}
      no: {type: say, text: too slow, next: bye}
      bye: {type: hangup}
`, nil)
	w := newWorld(t, snap, nil)

	t.Run("Timeout", func(t *testing.T) {
		id := w.call(t, "f", "a")
		start := time.Now()
		run := w.next(t, id, nil)
		if run.Action["text"] != "too slow" {
			t.Fatalf("action %v, want the default branch", run.Action)
		}
		if el := time.Since(start); el < 150*time.Millisecond {
			t.Fatalf("returned after %v, before the timeout", el)
		}
		if wr := run.Path[0].Wait; wr.Fired || wr.WaitedMs < 150 {
			t.Fatalf("wait record %+v", wr)
		}
	})

	t.Run("WokenByWrite", func(t *testing.T) {
		id := w.call(t, "f", "a")
		go func() {
			time.Sleep(20 * time.Millisecond)
			w.write(t, id, map[string]any{"ivr.answer": 42})
		}()
		run := w.next(t, id, nil)
		if run.Action["text"] != "answered 42" {
			t.Fatalf("action %v", run.Action)
		}
	})

	t.Run("AlreadySet", func(t *testing.T) {
		id := w.call(t, "f", "a")
		w.write(t, id, map[string]any{"ivr.answer": "yes"})
		run := w.next(t, id, nil)
		if wr := run.Path[0].Wait; !wr.Fired || wr.WaitedMs > 100 {
			t.Fatalf("wait record %+v", wr)
		}
	})

	t.Run("ClientGone", func(t *testing.T) {
		id := w.call(t, "f", "a")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if _, err := w.engine.Next(ctx, id, nil); err == nil {
			t.Fatal("Next with a cancelled context succeeded")
		}
		// The next request does the step again.
		w.write(t, id, map[string]any{"ivr.answer": 1})
		if run := w.next(t, id, nil); run.Action["text"] != "answered 1" {
			t.Fatalf("action %v", run.Action)
		}
	})
}

func TestEngine_steps(t *testing.T) {
	snap := mustCompile(t, `
triggers:
  never: {when: {var: ivr.never, op: set}}
flows:
  f:
    start: ask
    nodes:
      ask: {type: input, var: pin, min: 4, max: 4, chars: digits, next: hello, on_failure: sorry}
      hello: {type: say, text: "pin {app.ask.pin}", next: bye}
      sorry: {type: say, text: bad pin, next: bye}
      bye: {type: hangup, reason: done}
  loops:
    start: a
    nodes:
      a: {type: switch, cases: [{trigger: never, next: b}], default: a}
      b: {type: hangup}
`, nil)
	w := newWorld(t, snap, nil)
	ctx := context.Background()

	t.Run("Replay", func(t *testing.T) {
		id := w.call(t, "f", "a")
		run := w.next(t, id, nil)
		if run.Step != 1 || actionType(run) != "input" {
			t.Fatalf("step %d action %v", run.Step, run.Action)
		}
		again := w.next(t, id, nil) // asking again gives the same action
		if again.Step != 1 {
			t.Fatalf("asking again moved to step %d", again.Step)
		}
		run = w.next(t, id, &flow.Outcome{Input: ptr("1234"), Step: 1})
		if run.Step != 2 || run.Action["text"] != "pin 1234" {
			t.Fatalf("step %d action %v", run.Step, run.Action)
		}
		// The client retries the answer to step 1 (its response got lost):
		// nothing is applied twice.
		retry := w.next(t, id, &flow.Outcome{Input: ptr("9999"), Step: 1})
		if retry.Step != 2 || retry.Action["text"] != "pin 1234" {
			t.Fatalf("retry moved the flow: step %d action %v", retry.Step, retry.Action)
		}
		if _, err := w.engine.Next(ctx, id, &flow.Outcome{Status: "done", Step: 7}); session.ErrorCode(err) != session.CodeConflict {
			t.Fatalf("future step: %v, want conflict", err)
		}
		if _, err := w.engine.Next(ctx, id, &flow.Outcome{Input: ptr("1")}); session.ErrorCode(err) != session.CodeInvalid {
			t.Fatalf("input for a say action: %v, want invalid", err)
		}
		run = w.next(t, id, done())
		if run.Action["type"] != "hangup" || run.Action["reason"] != "done" || !run.Done {
			t.Fatalf("hangup: %+v", run)
		}
		run = w.next(t, id, done())
		if !run.Done || run.Action != nil {
			t.Fatalf("after the end: %+v", run)
		}
	})

	t.Run("InvalidInput", func(t *testing.T) {
		id := w.call(t, "f", "a")
		w.next(t, id, nil)
		run := w.next(t, id, input("12a4"))
		if run.Action["text"] != "bad pin" {
			t.Fatalf("action %v", run.Action)
		}
		if note := run.Path[0].Note; !strings.Contains(note, "not a digit") {
			t.Fatalf("note %q", note)
		}
		if _, err := w.svc.Variable(ctx, id, "app.ask.pin"); session.ErrorCode(err) != session.CodeNotFound {
			t.Fatalf("refused input was stored: %v", err)
		}
	})

	t.Run("OutcomeBeforeAction", func(t *testing.T) {
		id := w.call(t, "f", "a")
		if _, err := w.engine.Next(ctx, id, done()); session.ErrorCode(err) != session.CodeConflict {
			t.Fatalf("outcome before any action: %v, want conflict", err)
		}
	})

	t.Run("Loop", func(t *testing.T) {
		id := w.call(t, "loops", "a")
		_, err := w.engine.Next(ctx, id, nil)
		if session.ErrorCode(err) != session.CodeConflict || !strings.Contains(err.Error(), "loops") {
			t.Fatalf("a looping switch: %v", err)
		}
	})

	t.Run("NoFlow", func(t *testing.T) {
		id := w.call(t, "", "a")
		if _, err := w.engine.Next(ctx, id, nil); session.ErrorCode(err) != session.CodeNotFound {
			t.Fatalf("call without a flow: %v", err)
		}
		if _, err := w.engine.Next(ctx, "nope", nil); session.ErrorCode(err) != session.CodeNotFound {
			t.Fatalf("unknown call: %v", err)
		}
	})

	t.Run("Ended", func(t *testing.T) {
		id := w.call(t, "f", "a")
		w.svc.EndCall(ctx, id, "", "test")
		if _, err := w.engine.Next(ctx, id, nil); session.ErrorCode(err) != session.CodeConflict {
			t.Fatalf("ended call: %v", err)
		}
	})

	t.Run("UnknownFlow", func(t *testing.T) {
		c, _, _ := w.svc.CreateCall(ctx, session.NewCall{From: "a", To: "b", Flow: "nope"}, session.WriteOptions{})
		if err := w.engine.StartCall(ctx, c); session.ErrorCode(err) != session.CodeInvalid {
			t.Fatalf("unknown flow: %v", err)
		}
	})

	t.Run("Stored", func(t *testing.T) {
		id := w.call(t, "f", "a")
		w.next(t, id, nil)
		run, err := w.engine.FlowRun(ctx, id)
		if err != nil || run.Node != "ask" || !run.Presented || run.Step != 1 {
			t.Fatalf("Run = %+v, %v", run, err)
		}
		if _, err := w.engine.FlowRun(ctx, w.call(t, "", "a")); session.ErrorCode(err) != session.CodeNotFound {
			t.Fatalf("Run of a call without a flow: %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestEngine_reloadKeepsVersion(t *testing.T) {
	v1 := mustCompile(t, `
flows:
  f:
    start: a
    nodes:
      a: {type: say, text: version one, next: b}
      b: {type: say, text: still version one, next: c}
      c: {type: hangup}
`, nil)
	v2 := mustCompile(t, `
flows:
  f:
    start: a
    nodes:
      a: {type: say, text: version two, next: c}
      c: {type: hangup}
`, nil)
	w := newWorld(t, v1, nil)
	old := w.call(t, "f", "a")
	w.next(t, old, nil)
	w.engine.Reload(v2)
	if got := w.engine.Snapshot().Version; got != v2.Version {
		t.Fatalf("Snapshot().Version=%s, want %s", got, v2.Version)
	}
	if run := w.next(t, old, done()); run.Action["text"] != "still version one" {
		t.Fatalf("a live call changed flow version: %v", run.Action)
	}
	fresh := w.call(t, "f", "a")
	if run := w.next(t, fresh, nil); run.Action["text"] != "version two" {
		t.Fatalf("a new call did not get the new version: %v", run.Action)
	}
}

func TestEngine_automationRetries(t *testing.T) {
	c := newCRM(t)
	c.status = func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	snap := mustCompile(t, `
automations:
  notify:
    url: "${CRM_URL}/notify/{call.id}"
    headers: {X-Api-Key: "${CRM_WEBHOOK_SECRET}"}
    body: {from: "{call.from}"}
    secret_env: CRM_WEBHOOK_SECRET
    retry: {attempts: 4, backoff: 10ms, max_backoff: 40ms}
flows:
  f:
    start: fire
    nodes:
      fire: {type: automation, automations: [notify], next: bye}
      bye: {type: hangup}
`, env(c.srv.URL))
	w := newWorld(t, snap, nil)
	id := w.call(t, "f", "+4930123")
	var ds []flow.Delivery
	testenv.WaitFor(t, "delivery", func() bool {
		var err error
		ds, err = w.engine.Deliveries(context.Background(), id)
		return err == nil && len(ds) == 1 && ds[0].Status == flow.DeliveryDelivered
	})
	got := c.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3 (two 503s, then 200)", len(got))
	}
	for i, r := range got {
		if r.Key != ds[0].ID || r.Attempt != strconv.Itoa(i+1) || !r.SignatureOK || r.Path != "/notify/"+id || r.Body["from"] != "+4930123" {
			t.Errorf("request %d: %+v", i+1, r)
		}
	}
	d := ds[0]
	if len(d.Attempts) != 3 || d.Attempts[0].StatusCode != 503 || d.Attempts[0].RetryAt == nil || d.Attempts[2].StatusCode != 200 || d.NextAttempt != nil {
		t.Fatalf("delivery record %+v", d)
	}
	if strings.Join(d.Headers, ",") != "X-Api-Key" || d.Automation != "notify" || d.Source != "node:f/fire" || !d.Signed {
		t.Fatalf("delivery record %+v", d)
	}
}

func TestEngine_automationGivesUp(t *testing.T) {
	c := newCRM(t)
	c.status = func(int) int { return http.StatusInternalServerError }
	badRequest := newCRM(t)
	badRequest.status = func(int) int { return http.StatusBadRequest }
	snap := mustCompile(t, `
automations:
  flaky:
    url: "${CRM_URL}/x"
    retry: {attempts: 3, backoff: 5ms, max_backoff: 5ms}
  refused:
    url: "${BAD_URL}/x"
  header-injection:
    url: "${CRM_URL}/x"
    headers: {X-Name: "{ivr.name}"}
flows:
  f:
    start: fire
    nodes:
      fire: {type: automation, automations: [flaky, refused, header-injection], next: bye}
      bye: {type: hangup}
`, func(name string) (string, bool) {
		switch name {
		case "CRM_URL":
			return c.srv.URL, true
		case "BAD_URL":
			return badRequest.srv.URL, true
		}
		return "", false
	})
	w := newWorld(t, snap, nil)
	c0, _, _ := w.svc.CreateCall(context.Background(), session.NewCall{From: "a", To: "b", Flow: "f",
		Variables: map[string]json.RawMessage{"ivr.name": json.RawMessage(`"Jane\r\nX-Evil: 1"`)}}, session.WriteOptions{})
	if err := w.engine.StartCall(context.Background(), c0); err != nil {
		t.Fatal(err)
	}
	var ds []flow.Delivery
	testenv.WaitFor(t, "all three finished", func() bool {
		ds, _ = w.engine.Deliveries(context.Background(), c0.ID)
		for _, d := range ds {
			if d.Status == flow.DeliveryPending {
				return false
			}
		}
		return len(ds) == 3
	})
	byName := map[string]flow.Delivery{}
	for _, d := range ds {
		byName[d.Automation] = d
	}
	if d := byName["flaky"]; d.Status != flow.DeliveryFailed || len(d.Attempts) != 3 || !strings.Contains(d.Error, "gave up after 3 attempts") {
		t.Errorf("flaky: %+v", d)
	}
	if d := byName["refused"]; d.Status != flow.DeliveryFailed || len(d.Attempts) != 1 || !strings.Contains(d.Error, "400") {
		t.Errorf("refused: %+v", d)
	}
	if d := byName["header-injection"]; d.Status != flow.DeliveryFailed || len(d.Attempts) != 0 || !strings.Contains(d.Error, "line break") {
		t.Errorf("header-injection: %+v", d)
	}
	if n := len(badRequest.requests()); n != 1 {
		t.Errorf("a 400 was retried: %d requests", n)
	}
}

// TestEngine_outboxSurvivesRestart: an automation queued while its receiver
// is down is delivered by the next process, with the same key.
func TestEngine_outboxSurvivesRestart(t *testing.T) {
	c := newCRM(t)
	var down sync.Mutex
	isDown := true
	c.status = func(int) int {
		down.Lock()
		defer down.Unlock()
		if isDown {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	snap := mustCompile(t, `
automations:
  notify:
    url: "${CRM_URL}/x"
    retry: {attempts: 50, backoff: 10ms, max_backoff: 20ms}
flows:
  f:
    start: fire
    nodes:
      fire: {type: automation, automations: [notify], next: bye}
      bye: {type: hangup}
`, env(c.srv.URL))
	w := newWorld(t, snap, nil)
	id := w.call(t, "f", "a")
	testenv.WaitFor(t, "a failed attempt", func() bool { return len(c.requests()) >= 1 })
	w.close(t)
	before := len(c.requests())
	down.Lock()
	isDown = false
	down.Unlock()
	w.open(t, snap, nil)
	var ds []flow.Delivery
	testenv.WaitFor(t, "delivery after the restart", func() bool {
		ds, _ = w.engine.Deliveries(context.Background(), id)
		return len(ds) == 1 && ds[0].Status == flow.DeliveryDelivered
	})
	got := c.requests()
	if len(got) != before+1 {
		t.Fatalf("%d requests after the restart, want 1", len(got)-before)
	}
	for _, r := range got {
		if r.Key != ds[0].ID {
			t.Fatalf("idempotency key changed: %q vs %q", r.Key, ds[0].ID)
		}
	}
}

func TestEngine_eventAutomations(t *testing.T) {
	c := newCRM(t)
	snap := mustCompile(t, `
triggers:
  vip: {when: {var: ivr.tier, op: eq, value: gold}}
automations:
  started:
    url: "${CRM_URL}/started"
    on: [call.started]
    flows: [f]
    body: {from: "{call.from}"}
  email-changed:
    url: "${CRM_URL}/email"
    on: [session.updated]
    changed: [ivr.email]
    body: {email: "{ivr.email}"}
  vip-ended:
    url: "${CRM_URL}/ended"
    on: [call.ended]
    when: vip
  echo:
    url: "${CRM_URL}/echo"
    on: [session.updated]
    changed: [ivr.counter]
  transfer:
    url: "${CRM_URL}/transfer"
    on: [transfer.status]
    body: {status: "{app.out.status}"}
flows:
  f:
    start: out
    nodes:
      out: {type: transfer, target: "sip:agent@pbx"}
`, env(c.srv.URL))
	w := newWorld(t, snap, nil)
	ctx := context.Background()
	// echo: the receiver writes back on every update, which would loop forever.
	c.respond = func(r received) {
		if r.Path == "/echo" {
			w.write(t, r.CallID, map[string]any{"ivr.counter": time.Now().UnixNano()})
		}
	}

	a := w.call(t, "f", "+49301")
	other := w.call(t, "", "+49302")
	w.write(t, a, map[string]any{"ivr.email": "a@b.c"})
	w.write(t, a, map[string]any{"ivr.other": 1})
	w.write(t, a, map[string]any{"ivr.tier": "gold"})
	w.next(t, a, nil)
	w.next(t, a, &flow.Outcome{Status: flow.StatusFailed})
	w.svc.EndCall(ctx, a, "", "test")
	w.svc.EndCall(ctx, other, "", "test")

	testenv.WaitFor(t, "event automations", func() bool {
		return c.count("/started", a) == 1 && c.count("/email", a) == 1 && c.count("/ended", a) == 1 && c.count("/transfer", a) == 1
	})
	if n := c.count("/started", other); n != 0 {
		t.Errorf("call.started fired for a call of another flow: %d", n)
	}
	if n := c.count("/ended", other); n != 0 {
		t.Errorf("call.ended fired although the trigger does not: %d", n)
	}
	for _, r := range c.requests() {
		if r.Path == "/transfer" && r.Body["status"] != "failed" {
			t.Errorf("transfer status body %v", r.Body)
		}
	}

	// The echo loop stops at the per-call limit.
	loop := w.call(t, "", "+49303")
	w.write(t, loop, map[string]any{"ivr.counter": 0})
	testenv.WaitFor(t, "the echo loop to reach its limit", func() bool { return c.count("/echo", loop) >= 100 })
	time.Sleep(100 * time.Millisecond)
	if n := c.count("/echo", loop); n != 100 {
		t.Fatalf("echo fired %d times, want the limit of 100", n)
	}
}

// TestEngine_transferAnnounced: when the SIP bridge performs a transfer, it publishes the
// outcome as a transfer.status event itself and reports it to Next as Announced, so the
// automations on transfer.status fire once, not twice.
func TestEngine_transferAnnounced(t *testing.T) {
	c := newCRM(t)
	snap := mustCompile(t, `
automations:
  transfer:
    url: "${CRM_URL}/transfer"
    on: [transfer.status]
flows:
  f:
    start: out
    nodes:
      out: {type: transfer, target: "sip:agent@pbx"}
`, env(c.srv.URL))
	w := newWorld(t, snap, nil)
	a := w.call(t, "f", "+49301")
	run := w.next(t, a, nil)
	// What the bridge writes when the REFER's final NOTIFY arrives.
	if _, _, err := w.svc.Merge(context.Background(), a, map[string]json.RawMessage{"sip.transfer.status": json.RawMessage(`"answered"`)},
		session.WriteOptions{Actor: "sip", Origin: session.OriginSIP, Event: session.EventTransferStatus}); err != nil {
		t.Fatal(err)
	}
	w.next(t, a, &flow.Outcome{Status: flow.StatusDone, Step: run.Step, Announced: true})
	testenv.WaitFor(t, "the transfer.status automation", func() bool { return c.count("/transfer", a) >= 1 })
	time.Sleep(200 * time.Millisecond)
	if got := c.count("/transfer", a); got != 1 {
		t.Fatalf("transfer.status automation fired %d times, want 1", got)
	}
}

// TestEngine_eventBurst: many calls end at once, as at the end of a campaign or when a trunk
// drops. Every call.ended automation is queued and delivered once: none is lost to the
// engine falling behind the events.
func TestEngine_eventBurst(t *testing.T) {
	c := newCRM(t)
	snap := mustCompile(t, `
automations:
  ended:
    url: "${CRM_URL}/ended"
    on: [call.ended]
    body: {call: "{call.id}"}
`, env(c.srv.URL))
	w := newWorld(t, snap, nil)
	ctx := context.Background()
	const calls = 1500
	ids := make([]string, calls)
	for i := range ids {
		ids[i] = w.call(t, "", "+4930"+strconv.Itoa(i))
	}
	var wg sync.WaitGroup
	next := make(chan string)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				if _, err := w.svc.EndCall(ctx, id, "", "test"); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	testenv.Poll(testenv.WaitTimeout, func() bool { return len(c.requests()) >= calls })
	seen := map[string]int{}
	for _, r := range c.requests() {
		seen[r.CallID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("call %s: call.ended delivered %d times", id, seen[id])
		}
	}
}

// TestEngine_eventAutomationsQueuedWithTheChange: the automations a change
// fires are queued in the store together with the change, so a crash right
// after it cannot lose them. The store here refuses EnqueueOutbox, which
// queues automations apart from a change: every entry must have gone in
// with its change. The receiver never answers: only the queueing is looked
// at.
func TestEngine_eventAutomationsQueuedWithTheChange(t *testing.T) {
	hold := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hold }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hold) })
	snap := mustCompile(t, `
automations:
  started: {url: "${CRM_URL}/started", on: [call.started]}
  updated: {url: "${CRM_URL}/updated", on: [session.updated], body: {email: "{ivr.email}"}}
  ended:   {url: "${CRM_URL}/ended", on: [call.ended]}
  transfer: {url: "${CRM_URL}/transfer", on: [transfer.status], flows: [t]}
flows:
  t:
    start: out
    nodes:
      out: {type: transfer, target: "sip:agent@pbx", on_failure: out}
`, env(srv.URL))
	w := newWorld(t, snap, func(cfg *flow.Config) { cfg.Store = noEnqueue{cfg.Store} })
	ctx := context.Background()
	queued := func(callID string) []string {
		t.Helper()
		ds, err := w.engine.Deliveries(ctx, callID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range ds {
			got = append(got, d.Automation+"/"+d.Source)
		}
		return got
	}

	id := w.call(t, "", "+49301")
	if got, want := fmt.Sprint(queued(id)), "[started/event:call.started]"; got != want {
		t.Fatalf("after the create: %s, want %s", got, want)
	}
	w.write(t, id, map[string]any{"ivr.email": "a@b.c"})
	w.write(t, id, map[string]any{"ivr.email": "a@b.c"}) // changes nothing: fires nothing
	if got, want := fmt.Sprint(queued(id)), "[started/event:call.started updated/event:session.updated]"; got != want {
		t.Fatalf("after the write: %s, want %s", got, want)
	}
	if _, err := w.svc.EndCall(ctx, id, "", "test"); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(queued(id)), "[started/event:call.started updated/event:session.updated ended/event:call.ended]"; got != want {
		t.Fatalf("after the end: %s, want %s", got, want)
	}
	ds, _ := w.engine.Deliveries(ctx, id)
	if body, _ := json.Marshal(ds[1].Body); string(body) != `{"email":"a@b.c"}` {
		t.Errorf("session.updated body %s, want the variables of the write", body)
	}

	// A transfer outcome the media platform reports fires the transfer.status
	// automations with its write.
	tr := w.call(t, "t", "+49302")
	run := w.next(t, tr, nil)
	w.next(t, tr, &flow.Outcome{Status: flow.StatusFailed, Step: run.Step})
	transfers := slices.DeleteFunc(queued(tr), func(s string) bool { return !strings.HasPrefix(s, "transfer/") })
	if got, want := fmt.Sprint(transfers), "[transfer/event:transfer.status]"; got != want {
		t.Fatalf("after the transfer's outcome: %s, want %s", got, want)
	}

	// A call created ended (a redirected INVITE) fires both events with its creation.
	c, _, err := w.svc.CreateCall(ctx, session.NewCall{From: "a", To: "b", EndReason: "redirected"}, session.WriteOptions{Actor: "sip", Origin: session.OriginSIP})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(queued(c.ID)), "[started/event:call.started ended/event:call.ended]"; got != want {
		t.Fatalf("a call created ended: %s, want %s", got, want)
	}
}

// noEnqueue is a store whose EnqueueOutbox fails, as if the process had
// died between a change and queueing its automations.
type noEnqueue struct{ session.Store }

func (noEnqueue) EnqueueOutbox(context.Context, []*session.OutboxEntry) ([]*session.OutboxEntry, error) {
	return nil, session.Errorf(session.CodeUnavailable, "automations are queued apart from their change")
}

// TestEngine_transferOutcomeRepeated: the same transfer outcome reported twice
// (a flow that retries the same target) writes nothing new the second time, and
// still fires the transfer.status automations each time.
func TestEngine_transferOutcomeRepeated(t *testing.T) {
	c := newCRM(t)
	snap := mustCompile(t, `
automations:
  transfer: {url: "${CRM_URL}/transfer", on: [transfer.status]}
flows:
  t:
    start: out
    nodes:
      out: {type: transfer, target: "sip:agent@pbx", on_failure: out}
`, env(c.srv.URL))
	w := newWorld(t, snap, nil)
	id := w.call(t, "t", "+49301")
	run := w.next(t, id, nil)
	run = w.next(t, id, &flow.Outcome{Status: flow.StatusFailed, Step: run.Step})
	w.next(t, id, &flow.Outcome{Status: flow.StatusFailed, Step: run.Step})
	testenv.WaitFor(t, "two transfer.status automations", func() bool { return c.count("/transfer", id) >= 2 })
	time.Sleep(100 * time.Millisecond)
	if got := c.count("/transfer", id); got != 2 {
		t.Fatalf("transfer.status fired %d times, want 2", got)
	}
}

// TestEngine_callReferred: the SIP bridge's write that records an accepted REFER is published
// as call.referred; the automations on call.referred fire with it, with the REFER's variables.
func TestEngine_callReferred(t *testing.T) {
	c := newCRM(t)
	snap := mustCompile(t, `
automations:
  handback:
    url: "${CRM_URL}/handback"
    on: [call.referred]
    body: {summary: "{sip.refer.x-ai-summary}"}
flows:
  f:
    start: out
    nodes:
      out: {type: transfer, target: "sip:agent@pbx"}
`, env(c.srv.URL))
	w := newWorld(t, snap, nil)
	a := w.call(t, "f", "+49301")
	if _, _, err := w.svc.Merge(context.Background(), a, map[string]json.RawMessage{
		session.VarReferTarget: json.RawMessage(`"sip:queue@pbx"`), "sip.refer.x-ai-summary": json.RawMessage(`"wants a refund"`),
	}, session.WriteOptions{Actor: "sip", Origin: session.OriginSIP, Event: session.EventCallReferred}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the call.referred automation", func() bool { return c.count("/handback", a) >= 1 })
}
