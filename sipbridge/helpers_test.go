package sipbridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/sipbridge"
)

var (
	sippOnce sync.Once
	sippErr  error
)

// ensureSipp installs sipp (Debian sip-tester) once per test binary, as make test does.
func ensureSipp(tb testing.TB) {
	tb.Helper()
	sippOnce.Do(func() {
		out, err := exec.Command("../scripts/ensure-sipp.sh").CombinedOutput()
		if err != nil {
			sippErr = &installError{err: err, out: string(out)}
		}
	})
	if sippErr != nil {
		tb.Fatalf("sipp is needed for this test: %v", sippErr)
	}
}

type installError struct {
	err error
	out string
}

func (e *installError) Error() string { return e.err.Error() + ": " + e.out }

// testEnv is a bridge on 127.0.0.1:0 over a real bbolt store in a temp dir.
type testEnv struct {
	svc    *session.Service
	bridge *sipbridge.Bridge
	store  *bolt.Store
	logs   *syncBuffer
}

func startBridge(tb testing.TB, cfg sipbridge.Config) *testEnv {
	tb.Helper()
	return startBridgeFlows(tb, cfg, "")
}

// startBridgeFlows is startBridge with the flows of a directory (testdata/flows) running in
// a flow engine the bridge drives; "" for none.
func startBridgeFlows(tb testing.TB, cfg sipbridge.Config, flowsDir string) *testEnv {
	tb.Helper()
	store, err := bolt.Open(tb.TempDir(), bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	svc := session.NewService(store, session.Options{})
	if flowsDir != "" {
		snap, problems, err := flow.Load(flowsDir, flow.CompileOptions{})
		if err != nil {
			tb.Fatalf("load flows: %v %v", err, problems)
		}
		engine := flow.NewEngine(flow.Config{Service: svc, Store: store, Snapshot: snap})
		if err := engine.Open(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(engine.Close)
		cfg.Flows = engine
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	b, err := sipbridge.New(svc, cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	env := &testEnv{svc: svc, bridge: b, store: store, logs: logs}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		if err := store.Check(); err != nil {
			tb.Errorf("bolt check: %v", err)
		}
		if err := store.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
		if tb.Failed() {
			tb.Logf("bridge log:\n%s", logs.String())
		}
	})
	return env
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sippRun is one sipp process running a scenario from testdata/sipp.
type sippRun struct {
	name string
	dir  string
	cmd  *exec.Cmd
	done chan error
	out  *syncBuffer
}

// startSipp runs one call of scenario against remote ("" for a UAS scenario). port 0 lets
// sipp pick its local port.
func startSipp(tb testing.TB, scenario, remote string, port int, extra ...string) *sippRun {
	tb.Helper()
	ensureSipp(tb)
	sf, err := filepath.Abs(filepath.Join("testdata", "sipp", scenario))
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	args := []string{}
	if remote != "" {
		args = append(args, remote)
	}
	args = append(args, "-sf", sf, "-m", "1", "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-nostdin", "-timeout", "60s", "-timeout_error", "-trace_err", "-trace_msg", "-trace_logs")
	args = append(args, extra...)
	cmd := exec.Command("sipp", args...)
	cmd.Dir = dir
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start sipp: %v", err)
	}
	r := &sippRun{name: scenario, dir: dir, cmd: cmd, done: make(chan error, 1), out: out}
	go func() { r.done <- cmd.Wait() }()
	tb.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits for sipp to finish and fails the test unless its one call succeeded.
func (r *sippRun) wait(tb testing.TB) {
	tb.Helper()
	var err error
	select {
	case err = <-r.done:
		r.done <- err
	case <-time.After(90 * time.Second):
		tb.Fatalf("sipp %s did not finish", r.name)
	}
	if err != nil {
		tb.Fatalf("sipp %s failed: %v\n%s", r.name, err, r.report())
	}
}

// report returns sipp's error log and message trace, for a failing test.
func (r *sippRun) report() string {
	var b strings.Builder
	for _, pattern := range []string{"*_errors.log", "*_messages.log", "*_logs.log"} {
		files, _ := filepath.Glob(filepath.Join(r.dir, pattern))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			if len(data) > 20000 {
				data = data[len(data)-20000:]
			}
			b.WriteString("==> " + filepath.Base(f) + "\n" + string(data) + "\n")
		}
	}
	return b.String()
}

// logged returns the value sipp logged as "<key>:<value>" with a <log> action.
func (r *sippRun) logged(tb testing.TB, key string) string {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(r.dir, "*_logs.log"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	tb.Fatalf("sipp logged no %q\n%s", key, r.report())
	return ""
}

// freePort returns a UDP port that was free a moment ago, for a sipp UAS.
func freePort(tb testing.TB) int {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// activeCall waits for the one active call and returns it.
func (e *testEnv) activeCall(tb testing.TB) *session.Call {
	tb.Helper()
	var call *session.Call
	waitFor(tb, "an active call", func() bool {
		page, err := e.svc.ListCalls(context.Background(), session.ListOptions{State: session.FilterActive})
		if err != nil {
			tb.Fatal(err)
		}
		for _, c := range page.Items {
			if c.ParentID == "" {
				call = c
				return true
			}
		}
		return false
	})
	return call
}

// endedCall waits until call id has ended and returns it.
func (e *testEnv) endedCall(tb testing.TB, id string) *session.Call {
	tb.Helper()
	var call *session.Call
	waitFor(tb, "call "+id+" to end", func() bool {
		c, err := e.svc.Call(context.Background(), id)
		if err != nil {
			tb.Fatal(err)
		}
		call = c
		return c.State == session.StateEnded
	})
	return call
}

// vars returns the variables of a session decoded.
func (e *testEnv) vars(tb testing.TB, id string) map[string]any {
	tb.Helper()
	s, err := e.svc.Session(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]any{}
	for k, v := range s.Variables {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			tb.Fatal(err)
		}
		out[k] = x
	}
	return out
}
