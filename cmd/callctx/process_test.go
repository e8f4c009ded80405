package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds the callctx command once per test binary.
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

// process is a running callctx binary.
type process struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	logs strings.Builder
	done chan struct{}
}

// startBinary runs `callctx serve` on 127.0.0.1:0 and waits until it
// listens; the address comes from its log.
func startBinary(t *testing.T, dataDir, flowsDir string, env ...string) *process {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--http", "127.0.0.1:0", "--sip", "127.0.0.1:0", "--data", dataDir, "--flows", flowsDir)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Env = append(p.cmd.Env, "LOG_LEVEL=info")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct{ Msg, HTTP string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "callctx listening" {
				addr <- rec.HTTP
			}
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	select {
	case p.addr = <-addr:
	case <-p.done:
		p.cmd.Wait()
		t.Fatalf("callctx exited:\n%s", p.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("callctx did not start:\n%s", p.log())
	}
	return p
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// kill ends the process with SIGKILL: no graceful shutdown at all.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	<-p.done
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("callctx exited with %v:\n%s", err, p.log())
	}
	<-p.done
}
