package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/session/bolt"
)

// TestCrash: clients write unique values as fast as they can; the server is
// killed with SIGKILL at a random moment and restarted; every write that
// had been acknowledged is there, and the file passes bbolt's check.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs the real binary")
	}
	dir := t.TempDir()
	noFlows := filepath.Join(dir, "no-flows") // serve without a flows directory
	const cycles, writers = 3, 8
	type ack struct {
		call string
		seq  int
	}
	var acked []ack
	for cycle := 0; cycle < cycles; cycle++ {
		p := startBinary(t, dir, noFlows)
		base := p.URL
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}, Timeout: 10 * time.Second}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for call := 0; ; call++ {
					id := fmt.Sprintf("crash-%d-%d-%d", cycle, w, call)
					res, err := client.Post(base+"/v1/calls", "application/json", bytes.NewReader([]byte(`{"id":"`+id+`","from":"a","to":"b"}`)))
					if err != nil {
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 201 {
						t.Errorf("create %s: %d", id, res.StatusCode)
						return
					}
					mu.Lock()
					acked = append(acked, ack{id, 0})
					mu.Unlock()
					// Each call gets up to 40 writes of a rising sequence number
					// under a new name each time: every acknowledged one must survive.
					for seq := 1; seq <= 40; seq++ {
						res, err := client.Post(base+"/v1/sessions/"+id, "application/json", bytes.NewReader([]byte(fmt.Sprintf(`{"app.s%d":%d}`, seq, seq))))
						if err != nil {
							return
						}
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if res.StatusCode != 200 {
							t.Errorf("write %s %d: %d", id, seq, res.StatusCode)
							return
						}
						mu.Lock()
						acked = append(acked, ack{id, seq})
						mu.Unlock()
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		p.kill()
		wg.Wait()
		if t.Failed() {
			return
		}

		// Restart and check every acknowledged write.
		p = startBinary(t, dir, noFlows)
		base = p.URL
		sessions := map[string]map[string]any{}
		for _, a := range acked {
			vars, ok := sessions[a.call]
			if !ok {
				var sess struct{ Variables map[string]any }
				res, err := http.Get(base + "/v1/sessions/" + a.call)
				if err != nil {
					t.Fatal(err)
				}
				json.NewDecoder(res.Body).Decode(&sess)
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Fatalf("cycle %d: acknowledged call %s is gone (%d)", cycle, a.call, res.StatusCode)
				}
				vars = sess.Variables
				sessions[a.call] = vars
			}
			if a.seq > 0 && vars[fmt.Sprintf("app.s%d", a.seq)] != float64(a.seq) {
				t.Fatalf("cycle %d: acknowledged write %s app.s%d is lost", cycle, a.call, a.seq)
			}
		}
		t.Logf("cycle %d: %d acknowledged writes survived SIGKILL", cycle, len(acked))
		p.stop()

		st, err := bolt.Open(dir, bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = st.Check()
		st.Close()
		if err != nil {
			t.Fatalf("cycle %d: consistency check: %v", cycle, err)
		}
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
	const cycles, writers = 2, 6
	var acked []string // call/seq
	for cycle := 0; cycle < cycles; cycle++ {
		p := start(t, flows)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}, Timeout: 10 * time.Second}
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				// Calls of 50 writes each: an automation fires at most 100
				// times on one call's events (a guard against loops).
				for call := 0; ; call++ {
					id := fmt.Sprintf("auto-%d-%d-%d", cycle, w, call)
					res, err := client.Post(p.URL+"/v1/calls", "application/json", bytes.NewReader([]byte(`{"id":"`+id+`","from":"a","to":"b"}`)))
					if err != nil {
						return // killed
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					for seq := 1; seq <= 50; seq++ {
						res, err := client.Post(p.URL+"/v1/sessions/"+id, "application/json", bytes.NewReader([]byte(fmt.Sprintf(`{"app.seq":"%d"}`, seq))))
						if err != nil {
							return // killed
						}
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if res.StatusCode != 200 {
							t.Errorf("write %s %d: %d", id, seq, res.StatusCode)
							return
						}
						mu.Lock()
						acked = append(acked, fmt.Sprintf("%s/%d", id, seq))
						mu.Unlock()
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		p.kill()
		wg.Wait()
		if t.Failed() {
			return
		}

		p = start(t, flows)
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
		deadline := time.Now().Add(30 * time.Second)
		for len(missing()) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if m := missing(); len(m) > 0 {
			t.Fatalf("cycle %d: %d of %d acknowledged writes lost their automation, e.g. %v", cycle, len(m), len(acked), m[:min(5, len(m))])
		}
		t.Logf("cycle %d: the automations of all %d acknowledged writes arrived after SIGKILL", cycle, len(acked))
		p.stop()
	}
}
