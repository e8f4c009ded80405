package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session/bolt/bolttest"
)

// soakCycles is how many SIGKILL cycles TestCrash runs: CALLCTX_SOAK_CYCLES, or 100
// (about half a minute here; make soak runs 1000).
func soakCycles(t *testing.T) int {
	v := os.Getenv("CALLCTX_SOAK_CYCLES")
	if v == "" {
		return 100
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("CALLCTX_SOAK_CYCLES=%q: want a positive number", v)
	}
	return n
}

// crashAck is a write a client had acknowledged: a create (seq 0), the write of app.s<seq>
// (version seq+1), or the end (seq -1) of call.
type crashAck struct {
	call string
	seq  int
}

// TestCrash is a soak of SIGKILLs: in each cycle 8 clients create calls, write unique
// values and end them as fast as they can; the server is killed with SIGKILL at a random
// moment 50–300 ms in and restarted. Every write acknowledged in the cycle must then be
// there with its history entry, every acknowledged end too; every tenth cycle, and at the
// end, the server is stopped and the bbolt file passes bbolt's check; after the last cycle
// every write acknowledged in the whole run is checked once more.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs the real binary")
	}
	dir := t.TempDir()
	noFlows := filepath.Join(dir, "no-flows") // serve without a flows directory
	cycles := soakCycles(t)
	var (
		all        []crashAck
		maxRestart time.Duration
	)
	began := time.Now()
	p := startBinary(t, dir, noFlows)
	for cycle := 0; cycle < cycles; cycle++ {
		var mu sync.Mutex
		var acked []crashAck
		// Each call gets up to 40 writes of a rising sequence number under a new name each
		// time, then is ended (seq -1).
		loadUntilKilledAfter(t, p, fmt.Sprintf("crash-%d", cycle), 40, true, 50, 300,
			func(seq int) string { return fmt.Sprintf(`{"app.s%d":%d}`, seq, seq) },
			func(call string, seq int) {
				mu.Lock()
				acked = append(acked, crashAck{call, seq})
				mu.Unlock()
			})
		if t.Failed() {
			return
		}
		restart := time.Now()
		p = startBinary(t, dir, noFlows)
		maxRestart = max(maxRestart, time.Since(restart))
		checkAcked(t, p.URL, fmt.Sprintf("cycle %d", cycle), acked)
		all = append(all, acked...)
		if cycle%10 == 9 || cycle == cycles-1 {
			p.stop()
			bolttest.MustCheck(t, dir)
			if cycle < cycles-1 {
				p = startBinary(t, dir, noFlows)
			}
		}
	}
	p = startBinary(t, dir, noFlows)
	checkAcked(t, p.URL, "after the last cycle", all)
	p.stop()
	t.Logf("soak: %d SIGKILL cycles in %s, %d acknowledged writes, 0 lost, restart to ready at most %s",
		cycles, time.Since(began).Round(time.Millisecond), len(all), maxRestart.Round(time.Millisecond))
}

// checkAcked fails the test unless every write in acked is in the server at base: each
// call's session holds its acknowledged values, its history the entries of those writes,
// and an acknowledged end left the call ended.
func checkAcked(t *testing.T, base, when string, acked []crashAck) {
	t.Helper()
	sessions := map[string]map[string]any{}
	histories := map[string]map[float64]string{} // version → actor
	for _, a := range acked {
		if a.seq < 0 {
			var c struct{ State string }
			if status := fetchJSON(t, base+"/v1/calls/"+a.call, &c); status != 200 || c.State != "ended" {
				t.Fatalf("%s: acknowledged end of call %s is lost (%d, state %q)", when, a.call, status, c.State)
			}
			continue
		}
		vars, ok := sessions[a.call]
		if !ok {
			var sess struct{ Variables map[string]any }
			if status := fetchJSON(t, base+"/v1/sessions/"+a.call, &sess); status != 200 {
				t.Fatalf("%s: acknowledged call %s is gone (%d)", when, a.call, status)
			}
			vars = sess.Variables
			sessions[a.call] = vars
		}
		if a.seq > 0 && vars[fmt.Sprintf("app.s%d", a.seq)] != float64(a.seq) {
			t.Fatalf("%s: acknowledged write %s app.s%d is lost", when, a.call, a.seq)
		}
		h, ok := histories[a.call]
		if !ok {
			entries := historyOf[struct {
				Version float64
				Actor   string
			}](t, base, a.call)
			h = map[float64]string{}
			for _, e := range entries {
				h[e.Version] = e.Actor
			}
			histories[a.call] = h
		}
		if actor, ok := h[float64(a.seq+1)]; !ok || actor != "anonymous" {
			t.Fatalf("%s: the history entry of acknowledged write %s version %d is lost (actor %q)", when, a.call, a.seq+1, actor)
		}
	}
}

// fetchJSON GETs url and decodes the answer into v; it returns the status.
func fetchJSON(t *testing.T, url string, v any) int {
	t.Helper()
	r, err := send("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status == http.StatusOK {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return r.Status
}

// historyOf reads every page of the history of call id from base.
func historyOf[T any](t *testing.T, base, id string) []T {
	t.Helper()
	var out []T
	for cursor := ""; ; {
		url := base + "/v1/sessions/" + id + "/history?limit=1000"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		var page struct {
			Items []T
			Next  *string
		}
		if status := fetchJSON(t, url, &page); status != http.StatusOK {
			t.Fatalf("GET %s: %d", url, status)
		}
		out = append(out, page.Items...)
		if page.Next == nil {
			return out
		}
		cursor = *page.Next
	}
}

// TestCrash_automations: an automation listens to every session write;
// clients write as fast as they can and the server is killed with SIGKILL
// at a random moment. After the restart, the automation of every write
// that had been acknowledged arrives: the write and its automation are
// queued together, so no acknowledged write loses its automation.
func TestCrash_automations(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs the real binary")
	}
	dir := t.TempDir()
	testCrashAutomations(t, func(t *testing.T, flows string) *node { return startBinary(t, dir, flows) })
}

// testCrashAutomations is TestCrash_automations against the nodes start
// runs with a flows directory.
func testCrashAutomations(t *testing.T, start func(t *testing.T, flows string) *node) {
	var mu sync.Mutex
	got := map[string]bool{} // call/seq the receiver has had
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Call, Seq string }
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		got[body.Call+"/"+body.Seq] = true
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)
	flows := t.TempDir()
	writeFile(t, filepath.Join(flows, "seq.yaml"), `
automations:
  seq:
    url: "`+recv.URL+`/seq"
    on: [session.updated]
    body: {call: "{call.id}", seq: "{app.seq}"}
`)
	const cycles = 2
	var acked []string // call/seq
	for cycle := 0; cycle < cycles; cycle++ {
		// Calls of 50 writes each: an automation fires at most 100 times on
		// one call's events (a guard against loops).
		loadUntilKilled(t, start(t, flows), fmt.Sprintf("auto-%d", cycle), 50, false,
			func(seq int) string { return fmt.Sprintf(`{"app.seq":"%d"}`, seq) },
			func(call string, seq int) {
				if seq > 0 {
					mu.Lock()
					acked = append(acked, fmt.Sprintf("%s/%d", call, seq))
					mu.Unlock()
				}
			})
		if t.Failed() {
			return
		}

		p := start(t, flows)
		missing := func() []string {
			mu.Lock()
			defer mu.Unlock()
			var out []string
			for _, a := range acked {
				if !got[a] {
					out = append(out, a)
				}
			}
			return out
		}
		testenv.Poll(30*time.Second, func() bool { return len(missing()) == 0 })
		if m := missing(); len(m) > 0 {
			t.Fatalf("cycle %d: %d of %d acknowledged writes lost their automation, e.g. %v", cycle, len(m), len(acked), m[:min(5, len(m))])
		}
		t.Logf("cycle %d: the automations of all %d acknowledged writes arrived after SIGKILL", cycle, len(acked))
		p.stop()
	}
}

// loadUntilKilled has 8 clients create calls (IDs prefix-<client>-<n>) and
// write body(1…writes) into each, and with end end it, as fast as they
// can; at a random moment 0.3–1 s in, the node is killed with SIGKILL. ack
// records every acknowledged create (seq 0), write and end (seq -1); any
// other answer fails the test.
func loadUntilKilled(t *testing.T, n *node, prefix string, writes int, end bool, body func(seq int) string, ack func(call string, seq int)) {
	t.Helper()
	loadUntilKilledAfter(t, n, prefix, writes, end, 300, 1000, body, ack)
}

// loadUntilKilledAfter is loadUntilKilled with the kill at a random moment from minMS to
// maxMS milliseconds in.
func loadUntilKilledAfter(t *testing.T, n *node, prefix string, writes int, end bool, minMS, maxMS int, body func(seq int) string, ack func(call string, seq int)) {
	t.Helper()
	const writers = 8
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}, Timeout: 10 * time.Second}
	post := func(path, body string, want int) bool {
		res, err := client.Post(n.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			return false // killed
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("POST %s %s: %d, want %d", path, body, res.StatusCode, want)
			return false
		}
		return true
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for call := 0; ; call++ {
				id := fmt.Sprintf("%s-%d-%d", prefix, w, call)
				if !post("/v1/calls", `{"id":"`+id+`","from":"a","to":"b"}`, http.StatusCreated) {
					return
				}
				ack(id, 0)
				for seq := 1; seq <= writes; seq++ {
					if !post("/v1/sessions/"+id, body(seq), http.StatusOK) {
						return
					}
					ack(id, seq)
				}
				if end {
					if !post("/v1/calls/"+id+"/end", `{"reason":"done"}`, http.StatusOK) {
						return
					}
					ack(id, -1)
				}
			}
		}(w)
	}
	time.Sleep(time.Duration(minMS+rand.IntN(maxMS-minMS)) * time.Millisecond)
	n.kill()
	wg.Wait()
}
