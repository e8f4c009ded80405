package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callctx/callctx/session/bolt"
)

// buildBinary builds the callctx command once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "callctx-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "callctx")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// process is the real callctx binary, serving on a free loopback port.
type process struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

// startProcess runs `callctx serve` on dataDir and waits until it listens.
func startProcess(t *testing.T, dataDir string, extraEnv ...string) *process {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--http", "127.0.0.1:0", "--data", dataDir)
	cmd.Env = append(os.Environ(), extraEnv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, HTTP string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "callctx listening" {
				addr <- line.HTTP
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case p.addr = <-addr:
	case err := <-p.done:
		t.Fatalf("callctx exited before listening: %v", err)
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("callctx did not start listening within 20s")
	}
	t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("callctx did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("callctx did not stop within 30s of SIGTERM")
	}
}

// TestCrash: clients write unique values as fast as they can; the server is
// killed with SIGKILL at a random moment and restarted; every write that
// had been acknowledged is there, and the file passes bbolt's check.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs the real binary")
	}
	dir := t.TempDir()
	const cycles, writers = 3, 8
	type ack struct {
		call string
		seq  int
	}
	var acked []ack
	for cycle := 0; cycle < cycles; cycle++ {
		p := startProcess(t, dir)
		base := "http://" + p.addr
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
		p.kill(t)
		wg.Wait()
		if t.Failed() {
			return
		}

		// Restart and check every acknowledged write.
		p = startProcess(t, dir)
		base = "http://" + p.addr
		sessions := map[string]map[string]any{}
		for _, a := range acked {
			vars, ok := sessions[a.call]
			if !ok {
				var sess struct{ Variables map[string]any }
				if status := getJSON(t, base+"/v1/sessions/"+a.call, &sess); status != 200 {
					t.Fatalf("cycle %d: acknowledged call %s is gone (%d)", cycle, a.call, status)
				}
				vars = sess.Variables
				sessions[a.call] = vars
			}
			if a.seq > 0 && vars[fmt.Sprintf("app.s%d", a.seq)] != float64(a.seq) {
				t.Fatalf("cycle %d: acknowledged write %s app.s%d is lost", cycle, a.call, a.seq)
			}
		}
		t.Logf("cycle %d: %d acknowledged writes survived SIGKILL", cycle, len(acked))
		p.stop(t)

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
