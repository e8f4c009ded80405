// Package peertest runs real SIP peers nobody here wrote, headless and on loopback, for
// callctx's interop tests: baresip and linphonec (the Debian packages baresip-core and
// linphone-cli) as phones, Kamailio (Debian's kamailio) as the SBC in front of callctx.
// Each runs as a child process on free loopback ports, with its configuration in the
// test's temporary directory, and is killed when the test ends; its output is printed when
// the test fails. make test installs them (scripts/ensure-peers.sh); without them a test
// skips, or fails when CI is set (see internal/testenv).
package peertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/testenv"
)

// FreePort returns a port that was free for both UDP and TCP on 127.0.0.1 a moment ago:
// the peers listen on both.
func FreePort(tb testing.TB) int {
	tb.Helper()
	return freePorts(tb, 1)
}

// freePorts returns the first of n consecutive ports that were free for UDP and TCP a
// moment ago (baresip listens for TLS on its SIP port + 1).
func freePorts(tb testing.TB, n int) int {
	tb.Helper()
	for i := 0; i < 100; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		base := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if base+n-1 <= 65535 && free(base, n) {
			return base
		}
	}
	tb.Fatalf("no %d consecutive ports free for both UDP and TCP", n)
	return 0
}

// free reports whether ports base to base+n-1 can be bound for TCP and UDP.
func free(base, n int) bool {
	var closers []interface{ Close() error }
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for p := base; p < base+n; p++ {
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		closers = append(closers, ln)
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		closers = append(closers, pc)
	}
	return true
}

// process is a peer's child process: its output in a buffer, killed at cleanup.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{}
	// log is a file the peer writes its diagnostics to instead of its output ("" if
	// none): linphonec reports ports it could not bind only there, and goes on.
	log string
}

// start runs path with args in dir (and env added), named name in messages.
func start(tb testing.TB, name, path, dir string, env []string, args ...string) *process {
	tb.Helper()
	p := &process{name: name, cmd: exec.Command(path, args...), out: &testenv.Buffer{}, done: make(chan struct{})}
	// A process group of its own: Kamailio forks its workers, which must end with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Dir = dir
	p.cmd.Env = append(p.cmd.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	return p
}

// run starts the process and registers its cleanup.
func (p *process) run(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			tb.Logf("%s output:\n%s", p.name, tail(p.out.String(), 30000))
		}
	})
}

// stop ends the process and the ones it forked: SIGTERM to its process group (the one
// this package made for it), then SIGKILL to what is left; it waits for them.
func (p *process) stop() {
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
	_ = syscall.Kill(pgid, syscall.SIGKILL) // forked workers outlive their parent's exit
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// Output returns what the process wrote so far.
func (p *process) Output() string { return p.out.String() }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// startTries is how many times a peer is started, each time on fresh ports, when the ports
// it was given were taken between the check and its bind: other tests' sockets come and go
// meanwhile (sipgo's client sockets among them).
const startTries = 3

// started waits until the process wrote ready and reports true. If it failed to bind its
// ports instead (it said "Address already in use" in its output or its log, or exited), it
// stops the process and reports false for the caller to try again on other ports, unless
// this was try startTries; then, or when neither happens in time, it fails the test.
func (p *process) started(tb testing.TB, ready string, try int) bool {
	tb.Helper()
	return p.startedWhen(tb, func() bool { return strings.Contains(p.out.String(), ready) }, try)
}

// startedWhen is started for a peer whose readiness ready tells (Kamailio's: it accepts a
// connection).
func (p *process) startedWhen(tb testing.TB, ready func() bool, try int) bool {
	tb.Helper()
	bindFailed := func() bool {
		select {
		case <-p.done:
			return true
		default:
			const taken = "Address already in use"
			return strings.Contains(p.out.String(), taken) || strings.Contains(p.readLog(), taken)
		}
	}
	if !testenv.Poll(testenv.WaitTimeout, func() bool { return bindFailed() || ready() }) {
		tb.Fatalf("timed out after %s waiting for %s to start", testenv.WaitTimeout, p.name)
	}
	if !bindFailed() {
		return true
	}
	p.stop()
	if try >= startTries {
		tb.Fatalf("%s did not start in %d tries (its ports were taken, or it exited):\n%s", p.name, try, tail(p.out.String(), 3000))
	}
	tb.Logf("%s could not bind its ports (try %d of %d); starting it on others", p.name, try, startTries)
	return false
}

// readLog returns what the peer wrote to its log file so far ("" without one).
func (p *process) readLog() string {
	if p.log == "" {
		return ""
	}
	b, _ := os.ReadFile(p.log) // not there yet: nothing written
	return string(b)
}

// waitOutput waits until the process wrote want, or fails the test.
func (p *process) waitOutput(tb testing.TB, what, want string) {
	tb.Helper()
	testenv.WaitFor(tb, p.name+" "+what, func() bool { return strings.Contains(p.out.String(), want) })
}

// lookPath returns the path of a peer's program: a missing one skips the test (or fails it
// when CI is set), naming make test.
func lookPath(tb testing.TB, name string) string {
	tb.Helper()
	return testenv.LookPath(tb, name)
}
