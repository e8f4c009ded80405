// Package sipptest runs sipp, the real SIP peer of callctx's tests: one call
// of a scenario from sipbridge/testdata/sipp, traced into a temporary
// directory and killed when the test ends. make test installs sipp (Debian's
// sip-tester); without it a test skips, or fails when CI is set (see
// internal/testenv).
package sipptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/kittest"
	"github.com/callctx/callctx/internal/testenv"
)

// Timeout bounds how long Wait waits for sipp to finish.
const Timeout = 90 * time.Second

// Path returns the path of sipp; without it the test ends as
// testenv.Missing says.
func Path(tb testing.TB) string {
	tb.Helper()
	return testenv.LookPath(tb, "sipp")
}

// Scenario returns the path of a scenario in sipbridge/testdata/sipp.
func Scenario(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Join(kittest.Root(tb), "sipbridge", "testdata", "sipp", name)
}

// Run is one sipp process running one call of a scenario.
type Run struct {
	Name string // the scenario's file name
	Dir  string // sipp's working directory, where its traces land
	done chan error
	out  *testenv.Buffer
}

// Start runs one call of the scenario name (in sipbridge/testdata/sipp)
// against remote ("" for a UAS scenario) from the local UDP port (0: sipp
// picks one), with extra sipp arguments. sipp times out after 60 s.
func Start(tb testing.TB, name, remote string, port int, extra ...string) *Run {
	tb.Helper()
	sipp := Path(tb)
	var args []string
	if remote != "" {
		args = append(args, remote)
	}
	args = append(args, "-sf", Scenario(tb, name), "-m", "1", "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-nostdin", "-timeout", "60s", "-timeout_error", "-trace_err", "-trace_msg", "-trace_logs")
	args = append(args, extra...)
	cmd := exec.Command(sipp, args...)
	r := &Run{Name: name, Dir: tb.TempDir(), done: make(chan error, 1), out: &testenv.Buffer{}}
	cmd.Dir = r.Dir
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start sipp: %v", err)
	}
	go func() { r.done <- cmd.Wait() }()
	tb.Cleanup(func() {
		select {
		case err := <-r.done:
			r.done <- err
		default:
			_ = cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// Result waits for sipp to finish (at most Timeout) and returns its error:
// nil when the call went through the whole scenario.
func (r *Run) Result() error {
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(Timeout):
		return fmt.Errorf("sipp %s did not finish within %v", r.Name, Timeout)
	}
}

// Wait waits for sipp to finish and fails the test, with sipp's traces,
// unless the call went through the whole scenario.
func (r *Run) Wait(tb testing.TB) {
	tb.Helper()
	if err := r.Result(); err != nil {
		tb.Fatalf("sipp %s: %v\n%s", r.Name, err, r.Report())
	}
}

// Report returns sipp's output, error log, message trace and logs (the
// last 20,000 bytes of each), for a failing test.
func (r *Run) Report() string {
	var b strings.Builder
	if out := r.out.String(); out != "" {
		b.WriteString("==> output\n" + out + "\n")
	}
	for _, pattern := range []string{"*_errors.log", "*_messages.log", "*_logs.log"} {
		files, _ := filepath.Glob(filepath.Join(r.Dir, pattern))
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

// Logged returns the value the scenario logged as "<key>:<value>" with a
// <log> action; the test fails when there is none.
func (r *Run) Logged(tb testing.TB, key string) string {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(r.Dir, "*_logs.log"))
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
	tb.Fatalf("sipp logged no %q\n%s", key, r.Report())
	return ""
}
