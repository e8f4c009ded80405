package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
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
