package main_test

import (
	"encoding/json"
	"fmt"
	"github.com/callctx/callctx/internal/sipptest"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session/redis/redistest"
)

// TestRedis runs callctx processes on a shared, real Redis.
func TestRedis(t *testing.T) {
	bin := buildCallctx(t)
	t.Run("TwoNodes", func(t *testing.T) { testTwoNodes(t, bin) })
	t.Run("CrashNode", func(t *testing.T) { testCrashNode(t, bin) })
	t.Run("RestartRedis", func(t *testing.T) { testRestartRedis(t, bin) })
	t.Run("ConfigErrors", func(t *testing.T) { testConfigErrors(t, bin) })
	t.Run("FlowWaitAcrossNodes", func(t *testing.T) { testFlowWaitAcrossNodes(t, bin) })
	t.Run("OutboxAcrossNodes", func(t *testing.T) { testOutboxAcrossNodes(t, bin) })
	t.Run("TransferAcrossNodes", func(t *testing.T) { testTransferAcrossNodes(t, bin) })
	t.Run("CrashAutomations", func(t *testing.T) {
		srv := redistest.MustStart(t, redistest.Options{})
		testCrashAutomations(t, func(t *testing.T, flows string) *node { return startNode(t, bin, "a", flowConfig(srv.URL(), flows)) })
	})
}

// testConfigErrors: a bad store configuration stops serve at once with a
// message that names the key.
func testConfigErrors(t *testing.T, bin string) {
	for _, tc := range []struct{ name, config, want string }{
		{"UnknownStore", "store: mongo\n", `store "mongo": use bolt or redis`},
		{"NoAddress", "store: redis\n", "exactly one of redis.url, redis.sentinel.addrs and redis.cluster.addrs"},
		{"TwoAddresses", "store: redis\nredis:\n  url: redis://127.0.0.1:1\n  cluster:\n    addrs: [127.0.0.1:2]\n", "exactly one of"},
		{"BadURL", "store: redis\nredis:\n  url: http://x\n", "redis.url must start with redis://"},
		{"SentinelWithoutMaster", "store: redis\nredis:\n  sentinel:\n    addrs: [127.0.0.1:1]\n", "redis.sentinel.master is empty"},
		{"BadClusterAddr", "store: redis\nredis:\n  cluster:\n    addrs: [nohost]\n", `redis address "nohost" is not host:port`},
		{"Braces", "store: redis\nredis:\n  url: redis://127.0.0.1:1\n  prefix: a{b}\n", "redis.prefix must not contain braces"},
		{"UnknownKey", "store: redis\nredis:\n  urls: redis://127.0.0.1:1\n", "field urls not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			writeFile(t, path, tc.config)
			out, err := exec.Command(bin, "serve", "--http", "127.0.0.1:0", "--config", path).CombinedOutput()
			if err == nil {
				t.Fatalf("serve started with a bad configuration:\n%s", out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("output %q does not say %q", out, tc.want)
			}
		})
	}
}

// testTwoNodes: two callctx processes share one Redis; a write on node A
// shows on node B's event stream, and a stream resumed on B with
// Last-Event-ID gets exactly the versions it missed.
func testTwoNodes(t *testing.T, bin string) {
	srv := redistest.MustStart(t, redistest.Options{})
	a := startNode(t, bin, "a", redisConfig(srv.URL()))
	b := startNode(t, bin, "b", redisConfig(srv.URL()))

	id := a.createCall()
	s := watch(func() *node { return b }, id, "")
	if e := s.next(t); e.Type != "session.snapshot" || e.ID != 1 {
		t.Fatalf("first event %s/%d, want session.snapshot/1", e.Type, e.ID)
	}
	a.must(http.StatusOK, "POST", "/v1/sessions/"+id, map[string]any{"ivr.email": "a@b.c", "ivr.premium": true})
	e := s.next(t)
	vars, _ := e.Data["variables"].(map[string]any)
	if e.Type != "session.updated" || e.ID != 2 || vars["ivr.email"] != "a@b.c" || vars["ivr.premium"] != true {
		t.Fatalf("B got %s/%d %v, want A's write as session.updated/2", e.Type, e.ID, e.Data)
	}
	s.Close()

	// B reads what A wrote, and A what B writes.
	if got := b.must(http.StatusOK, "GET", "/v1/sessions/"+id, nil)["version"]; got != 2.0 {
		t.Fatalf("version on B %v, want 2", got)
	}
	for i := 3; i <= 4; i++ {
		a.must(http.StatusOK, "PATCH", "/v1/sessions/"+id, map[string]any{"ivr.n": i})
	}
	s = watch(func() *node { return b }, id, "2")
	defer s.Close()
	for i := uint64(3); i <= 4; i++ {
		// Replayed: the changes of each version, not the whole session.
		e := s.next(t)
		changes, _ := e.Data["changes"].(map[string]any)
		n, _ := changes["ivr.n"].(map[string]any)
		if _, has := e.Data["variables"]; e.ID != i || has || n["new"] != float64(i) {
			t.Fatalf("resumed event %s/%d %v, want version %d's changes", e.Type, e.ID, e.Data, i)
		}
	}
	b.must(http.StatusOK, "POST", "/v1/calls/"+id+"/end", map[string]any{"reason": "done"})
	if e := s.next(t); e.Type != "call.ended" || e.ID != 5 {
		t.Fatalf("event %s/%d, want call.ended/5", e.Type, e.ID)
	}
	if got := a.must(http.StatusOK, "GET", "/v1/calls/"+id, nil)["endReason"]; got != "done" {
		t.Fatalf("endReason on A %v", got)
	}
	page := a.must(http.StatusOK, "GET", "/v1/calls?state=ended", nil)
	if items, _ := page["items"].([]any); len(items) != 1 {
		t.Fatalf("ended calls on A: %v", page)
	}
	a.stop()
	b.stop()
}

// writer writes {"ivr.seq": i} for i = 1, 2, … to one call on one node
// and records which writes were acknowledged.
type writer struct {
	n      *node
	callID string

	mu        sync.Mutex
	acked     []int
	refused   int // 503 problems
	transport int // requests that got no answer (the node died)
}

func (w *writer) run(stop <-chan struct{}, t *testing.T) {
	for i := 1; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		r, err := w.n.do("POST", "/v1/sessions/"+w.callID, map[string]any{"ivr.seq": i})
		w.mu.Lock()
		switch {
		case err != nil:
			w.transport++
		case r.Status == http.StatusOK:
			w.acked = append(w.acked, i)
		case r.Status == http.StatusServiceUnavailable && r.Header.Get("Content-Type") == "application/problem+json":
			w.refused++
		default:
			t.Errorf("write %d to %s: %d %s", i, w.n.name, r.Status, r.Body)
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(20 * time.Millisecond) // the node is gone; the test says when to stop
		}
	}
}

func (w *writer) ackCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// verify checks through n that every acknowledged write is in the
// session's history.
func (w *writer) verify(t *testing.T, n *node) {
	t.Helper()
	entries := historyOf[struct {
		Changes map[string]struct{ New any }
	}](t, n.URL, w.callID)
	stored := map[int]bool{}
	for _, e := range entries {
		if v, ok := e.Changes["ivr.seq"].New.(float64); ok {
			stored[int(v)] = true
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, i := range w.acked {
		if !stored[i] {
			t.Errorf("call %s: acknowledged write %d is lost", w.callID, i)
		}
	}
}

// testCrashNode kills a node with SIGKILL while it writes as fast as it
// can: every write it acknowledged is in Redis, read through another node.
// Several cycles.
func testCrashNode(t *testing.T, bin string) {
	srv := redistest.MustStart(t, redistest.Options{})
	cfg := redisConfig(srv.URL())
	b := startNode(t, bin, "b", cfg)
	for cycle := 0; cycle < 3; cycle++ {
		a := startNode(t, bin, "a"+strconv.Itoa(cycle), cfg)
		var writers []*writer
		for i := 0; i < 8; i++ {
			writers = append(writers, &writer{n: a, callID: a.createCall()})
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, w := range writers {
			wg.Add(1)
			go func() { defer wg.Done(); w.run(stop, t) }()
		}
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		a.kill()
		close(stop)
		wg.Wait()
		total := 0
		for _, w := range writers {
			w.verify(t, b)
			total += w.ackCount()
		}
		if total == 0 {
			t.Fatalf("cycle %d: no write was acknowledged before the kill", cycle)
		}
		t.Logf("cycle %d: %d acknowledged writes, all there", cycle, total)
	}
}

// testRestartRedis kills Redis (SIGKILL) under write load on two nodes:
// while it is down, writes fail fast with 503 problems and /readyz
// says 503; when it is back, the nodes recover on their own, no
// acknowledged write is lost (appendfsync always), and an event stream on
// one node of writes on the other resumes with every version exactly once.
func testRestartRedis(t *testing.T, bin string) {
	srv := redistest.MustStart(t, redistest.Options{})
	cfg := redisConfig(srv.URL())
	a := startNode(t, bin, "a", cfg)
	b := startNode(t, bin, "b", cfg)
	var writers []*writer
	for i := 0; i < 4; i++ {
		writers = append(writers, &writer{n: a, callID: a.createCall()}, &writer{n: b, callID: b.createCall()})
	}
	watched := writers[0].callID // written on A, watched on B
	s := watch(func() *node { return b }, watched, "")
	defer s.Close()
	first := s.next(t)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(stop, t) }()
	}
	time.Sleep(300 * time.Millisecond)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{a, b} {
		waitStatus(t, n, "/readyz", http.StatusServiceUnavailable)
		done := make(chan *reply, 1)
		go func() {
			r, _ := n.do("POST", "/v1/sessions/"+writers[0].callID, map[string]any{"ivr.down": true})
			done <- r
		}()
		select {
		case r := <-done:
			if r == nil || r.Status != http.StatusServiceUnavailable || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("a write on %s while Redis is down: %+v, want a 503 problem", n.name, r)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("a write on %s hangs while Redis is down", n.name)
		}
	}
	time.Sleep(300 * time.Millisecond)
	counts := make([]int, len(writers))
	for i, w := range writers {
		counts[i] = w.ackCount()
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{a, b} {
		waitStatus(t, n, "/readyz", http.StatusOK)
	}
	var stuck *writer // one whose writes have not recovered
	if !testenv.Poll(20*time.Second, func() bool {
		stuck = nil
		for i, w := range writers {
			if w.ackCount() <= counts[i] {
				stuck = w
				return false
			}
		}
		return true
	}) {
		t.Fatalf("writes to %s on %s do not recover", stuck.callID, stuck.n.name)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	refused := 0
	for _, w := range writers {
		w.verify(t, a)
		refused += w.refused
		if w.transport > 0 {
			t.Errorf("%d writes to %s got no answer from a live node", w.transport, w.n.name)
		}
	}
	if refused == 0 {
		t.Error("no write was refused while Redis was down")
	}

	// The stream on B saw every version of the watched call exactly once,
	// in order, across the outage.
	final := uint64(b.must(http.StatusOK, "GET", "/v1/sessions/"+watched, nil)["version"].(float64))
	for last := first.ID; last < final; {
		e := s.next(t)
		if e.ID != last+1 {
			t.Fatalf("stream went from version %d to %d", last, e.ID)
		}
		last = e.ID
	}
	// The outage is logged as a change of state (and summaries every 10 s),
	// not as a line per refused request.
	for _, n := range []*node{a, b} {
		log := n.logText()
		if got := strings.Count(log, "the session store is failing"); got != 1 {
			t.Errorf("node %s logged the outage's start %d times, want once:\n%s", n.name, got, log)
		}
		if got := strings.Count(log, `"request failed"`); got > 0 {
			t.Errorf("node %s logged %d refused requests one by one", n.name, got)
		}
	}
	t.Logf("%d writes refused with 503 during the outage; the stream on B followed %d versions", refused, final-first.ID)
}

// waitStatus polls path on n until it answers status.
func waitStatus(t *testing.T, n *node, path string, status int) {
	t.Helper()
	var r *reply
	var err error
	if !testenv.Poll(20*time.Second, func() bool {
		r, err = n.do("GET", path, nil)
		return err == nil && r.Status == status
	}) {
		t.Fatalf("%s on %s: %v %v, want %d", path, n.name, r, err, status)
	}
}

// flowConfig is redisConfig with a flows directory and the automation
// settings the outbox tests need.
func flowConfig(url, flowsDir string) string {
	return fmt.Sprintf(`store: redis
redis:
  url: %s
  timeout: 1s
  dial_timeout: 500ms
  outbox_lease: 1s
flows:
  dir: %s
automations:
  workers: 2
  backoff: 50ms
  max_backoff: 200ms
http:
  access_log: false
sip:
  listen: ""
log:
  format: json
`, url, flowsDir)
}

// testFlowWaitAcrossNodes: a flow waits on node A for the CRM's answer,
// and the CRM writes it through node B: A's wait is woken by B's write.
func testFlowWaitAcrossNodes(t *testing.T, bin string) {
	srv := redistest.MustStart(t, redistest.Options{})
	flows := t.TempDir()
	writeFile(t, filepath.Join(flows, "wait.yaml"), `
triggers:
  crm-answered:
    when: {var: ivr.answer, op: set}
flows:
  waiter:
    start: hold
    nodes:
      hold: {type: wait, until: crm-answered, timeout: 20s, next: greet, on_timeout: sorry}
      greet: {type: play, prompt: "hello {ivr.answer}", next: bye}
      sorry: {type: play, prompt: sorry, next: bye}
      bye: {type: hangup}
`)
	cfg := flowConfig(srv.URL(), flows)
	a := startNode(t, bin, "a", cfg)
	b := startNode(t, bin, "b", cfg)
	id := a.must(http.StatusCreated, "POST", "/v1/calls", map[string]any{"from": "+4930123456", "to": "+4940555000", "flow": "waiter"})["id"].(string)

	const hold = 500 * time.Millisecond
	type result struct {
		r       *reply
		err     error
		elapsed time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		r, err := a.do("POST", "/v1/calls/"+id+"/flow/next", map[string]any{})
		done <- result{r, err, time.Since(start)}
	}()
	select {
	case res := <-done:
		t.Fatalf("the flow did not wait: %+v", res)
	case <-time.After(hold): // A is holding the request in the wait
	}
	b.must(http.StatusOK, "POST", "/v1/sessions/"+id, map[string]any{"ivr.answer": "anna"})
	var res result
	select {
	case res = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the wait on node A was not woken by the write on node B")
	}
	if res.err != nil || res.r.Status != http.StatusOK {
		t.Fatalf("next: %v %+v", res.err, res.r)
	}
	var next map[string]any
	json.Unmarshal(res.r.Body, &next)
	act, _ := next["action"].(map[string]any)
	if next["node"] != "greet" || act["prompt"] != "hello anna" {
		t.Fatalf("after the wait: %s, want greet with the CRM's answer", res.r.Body)
	}
	if res.elapsed < hold {
		t.Fatalf("answered after %s, before the write", res.elapsed)
	}
	run := b.must(http.StatusOK, "GET", "/v1/calls/"+id+"/flow", nil)
	wait, _ := run["path"].([]any)[0].(map[string]any)["wait"].(map[string]any)
	if wait["fired"] != true {
		t.Fatalf("the run on B does not show the wait fired: %v", run)
	}
}

// receiver counts automation requests by Idempotency-Key, answering each
// after a delay.
type receiver struct {
	srv   *httptest.Server
	delay time.Duration

	mu     sync.Mutex
	seen   map[string]int       // requests per key
	first  map[string]time.Time // when each key first arrived
	paths  map[string]string    // key → request path
	killAt time.Time            // the moment the test killed a node
}

func newReceiver(t *testing.T, delay time.Duration) *receiver {
	r := &receiver{delay: delay, seen: map[string]int{}, first: map[string]time.Time{}, paths: map[string]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		key := req.Header.Get("Idempotency-Key")
		r.mu.Lock()
		r.seen[key]++
		if _, ok := r.first[key]; !ok {
			r.first[key] = time.Now()
		}
		r.paths[key] = req.URL.Path
		r.mu.Unlock()
		time.Sleep(r.delay)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// testOutboxAcrossNodes: automations are delivered once across two nodes
// (those of nodes' own flows, and those fired by events: on the node that
// made the change only); then a node is killed with deliveries queued and
// in flight, and the other takes them over after its lease.
func testOutboxAcrossNodes(t *testing.T, bin string) {
	srv := redistest.MustStart(t, redistest.Options{})
	recv := newReceiver(t, 50*time.Millisecond)
	flows := t.TempDir()
	writeFile(t, filepath.Join(flows, "notify.yaml"), `
automations:
  notify:
    url: "`+recv.srv.URL+`/start/{call.id}"
    body: {call: "{call.id}"}
    retry: {attempts: 20, backoff: 50ms, max_backoff: 200ms}
  ended:
    on: [call.ended]
    url: "`+recv.srv.URL+`/ended/{call.id}"
    retry: {attempts: 20, backoff: 50ms, max_backoff: 200ms}
flows:
  notify-flow:
    start: fire
    nodes:
      fire: {type: automation, automations: [notify], next: bye}
      bye: {type: hangup}
`)
	// A lease of 3 s, not 1 s: on a busy two-core machine running the race
	// detector a live node can miss three heartbeats in a row, and its
	// partner then rightly takes its entries over (a duplicate this test
	// must not see while both nodes are alive).
	cfg := strings.Replace(flowConfig(srv.URL(), flows), "outbox_lease: 1s", "outbox_lease: 3s", 1)
	a := startNode(t, bin, "a", cfg)
	b := startNode(t, bin, "b", cfg)
	newCall := func(n *node) string {
		return n.must(http.StatusCreated, "POST", "/v1/calls", map[string]any{"from": "+4930123456", "to": "+4940555000", "flow": "notify-flow"})["id"].(string)
	}
	delivered := func(n *node, ids []string, want int) func() bool {
		return func() bool {
			for _, id := range ids {
				r, err := n.do("GET", "/v1/calls/"+id+"/automations", nil)
				if err != nil || r.Status != http.StatusOK {
					return false
				}
				var page struct{ Items []struct{ Status string } }
				json.Unmarshal(r.Body, &page)
				ok := 0
				for _, d := range page.Items {
					if d.Status == "delivered" {
						ok++
					}
				}
				if ok < want { // more is a duplicate, which the receiver's counts report
					return false
				}
			}
			return true
		}
	}

	// Both nodes alive: calls on both, each ended through the other node.
	var steady []string
	for i := 0; i < 6; i++ {
		steady = append(steady, newCall(a), newCall(b))
	}
	for i, id := range steady {
		ender := b
		if i%2 == 1 {
			ender = a
		}
		ender.must(http.StatusOK, "POST", "/v1/calls/"+id+"/end", map[string]any{})
	}
	testenv.WaitFor(t, "the steady-state deliveries", delivered(a, steady, 2))
	time.Sleep(300 * time.Millisecond) // a duplicate would have arrived by now
	recv.mu.Lock()
	for key, n := range recv.seen {
		if n != 1 {
			t.Errorf("%s (%s) delivered %d times with both nodes alive", key, recv.paths[key], n)
		}
	}
	if got, want := len(recv.seen), 2*len(steady); got != want {
		t.Errorf("%d deliveries with both nodes alive, want %d (one per call and event)", got, want)
	}
	recv.mu.Unlock()

	// A backlog on node A, and A dies while delivering it.
	before := recv.count()
	var backlog []string
	for i := 0; i < 30; i++ {
		backlog = append(backlog, newCall(a))
	}
	testenv.WaitFor(t, "node A delivering", func() bool { return recv.count() >= before+4 })
	recv.mu.Lock()
	recv.killAt = time.Now()
	recv.mu.Unlock()
	a.kill()
	testenv.WaitFor(t, "node B taking the backlog over", delivered(b, backlog, 1))
	time.Sleep(300 * time.Millisecond)
	recv.mu.Lock()
	defer recv.mu.Unlock()
	twice := 0
	for _, id := range backlog {
		key := ""
		for k, p := range recv.paths {
			if p == "/start/"+id {
				key = k
			}
		}
		switch n := recv.seen[key]; {
		case key == "":
			t.Errorf("call %s: its automation never arrived", id)
		case n == 2 && recv.first[key].Before(recv.killAt):
			twice++ // sent by A, unrecorded when it died, sent again by B
		case n != 1:
			t.Errorf("call %s: delivered %d times (first at %s, kill at %s)", id, n, recv.first[key], recv.killAt)
		}
	}
	if twice > 2 { // A had two workers: at most two requests unrecorded at its death
		t.Errorf("%d deliveries repeated after the kill; node A had only 2 in flight", twice)
	}
	t.Logf("backlog of %d: node B delivered the rest after the kill; %d sent again (in flight when A died)", len(backlog), twice)
}

// testTransferAcrossNodes: a call comes in over SIP (real sipp) on node A;
// a CRM asks node B, which runs no SIP bridge, to transfer it: B forwards
// the request to A, A sends the REFER in the caller's dialog, and the
// outcome shows on B. A transfer of a call whose node has died fails with
// a clear 409.
func testTransferAcrossNodes(t *testing.T, bin string) {
	srv := redistest.MustStart(t, redistest.Options{})
	withSIP := strings.Replace(redisConfig(srv.URL()), "sip:\n  listen: \"\"\n",
		"sip:\n  listen: 127.0.0.1:0\n  map:\n    X-Transfer-Reason: ivr.transfer_reason\n    sip.uui.sipkey2: app.sipkey2\n", 1)
	withSIP = strings.Replace(withSIP, "  dial_timeout: 500ms\n", "  dial_timeout: 500ms\n  outbox_lease: 1s\n", 1)
	a := startNode(t, bin, "a", withSIP)
	b := startNode(t, bin, "b", redisConfig(srv.URL()))
	if a.SIP == "" || b.SIP != "" {
		t.Fatalf("SIP on a %q, on b %q; want a only", a.SIP, b.SIP)
	}

	// activeCall waits for the one active call that is not in skip.
	activeCall := func(skip string) string {
		t.Helper()
		var id string
		testenv.WaitFor(t, "a call over SIP", func() bool {
			var page struct{ Items []struct{ ID string } }
			r, err := b.do("GET", "/v1/calls?state=active", nil)
			if err != nil || json.Unmarshal(r.Body, &page) != nil {
				return false
			}
			for _, c := range page.Items {
				if c.ID != skip {
					id = c.ID
				}
			}
			return id != ""
		})
		return id
	}
	uac := sipptest.Start(t, "uac_refer_answered.xml", a.SIP, 0)
	id := activeCall("")
	body := map[string]any{
		"transferTarget": "sip:agent@192.0.2.20:5060", "transferReferredByURL": "sip:bot@callctx.example",
		"transferSipHeaders":            []map[string]any{{"name": "X-AI-Summary", "value": "Customer confirmed identity; wants a refund & a callback"}},
		"transferNotificationsHangupMS": 50, "handoverReason": "billing",
		"session": map[string]any{"variables": []string{"sip.x-customer-id", "ivr.transfer_reason"}, "as": "both", "uuiEncoding": "hex"},
	}
	var r *reply
	testenv.Poll(10*time.Second, func() bool {
		var err error
		if r, err = b.do("POST", "/v1/calls/"+id+"/transfer", body); err != nil {
			t.Fatal(err)
		}
		return r.Status != http.StatusConflict // 409 until the caller has ACKed the 200
	})
	var tr map[string]any
	json.Unmarshal(r.Body, &tr)
	if r.Status != http.StatusAccepted || tr["status"] != "pending" || tr["id"] == "" {
		t.Fatalf("transfer asked of node B: %d %s", r.Status, r.Body)
	}
	uac.Wait(t) // sipp checked the REFER, answered it and got the BYE
	var call map[string]any
	testenv.WaitFor(t, "the transfer's outcome on node B", func() bool {
		call = b.must(http.StatusOK, "GET", "/v1/calls/"+id, nil)
		return call["state"] == "ended"
	})
	transfers, _ := call["transfers"].([]any)
	if call["endReason"] != "transferred" || len(transfers) != 1 {
		t.Fatalf("call after the transfer: %v", call)
	}
	if got := transfers[0].(map[string]any); got["id"] != tr["id"] || got["status"] != "answered" || got["handoverReason"] != "billing" {
		t.Fatalf("transfer on the call: %v", got)
	}

	// The node that holds a call dies: its dialog is gone, and so is the
	// transfer.
	sipptest.Start(t, "uac_park_wait_bye.xml", a.SIP, 0)
	second := activeCall(id)
	a.kill()
	time.Sleep(1500 * time.Millisecond) // A's lease runs out
	start := time.Now()
	r, err := b.do("POST", "/v1/calls/"+second+"/transfer", map[string]any{"transferTarget": "sip:agent@192.0.2.20:5060"})
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	json.Unmarshal(r.Body, &p)
	if r.Status != http.StatusConflict || r.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(fmt.Sprint(p["detail"]), "which is gone") || time.Since(start) > 5*time.Second {
		t.Fatalf("transfer of a dead node's call: %d %s after %s, want a prompt 409 saying the node is gone", r.Status, r.Body, time.Since(start))
	}
}
