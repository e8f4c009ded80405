package load

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// BuildCallctx builds the callctx command into dir (run from the
// repository root) and returns its path.
func BuildCallctx(dir string) (string, error) {
	bin := filepath.Join(dir, "callctx")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/callctx").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build callctx (run from the repository root): %v\n%s", err, out)
	}
	return bin, nil
}

// Node is a running callctx serve process.
type Node struct {
	Addr string // the HTTP address
	cmd  *exec.Cmd
	done chan struct{}
}

// PID returns the process ID.
func (n *Node) PID() int { return n.cmd.Process.Pid }

// StartCallctx runs bin serve with the YAML configuration config (without
// a log section: the node logs at info level, as JSON, which is how its
// address is learnt) written to cfgPath, HTTP on a free loopback port, and
// waits until it listens.
func StartCallctx(bin, cfgPath, config string) (*Node, error) {
	config += "log:\n  level: info\n  format: json\n"
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--http", "127.0.0.1:0", "--config", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &Node{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	var logBuf strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec struct{ Msg, HTTP string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "callctx listening" {
				addr <- rec.HTTP
			} else if len(addr) == 0 && logBuf.Len() < 64<<10 {
				logBuf.WriteString(sc.Text() + "\n")
			}
		}
		cmd.Wait()
		close(n.done)
	}()
	select {
	case a := <-addr:
		n.Addr = a
	case <-n.done:
		return nil, fmt.Errorf("callctx exited: %s", logBuf.String())
	case <-time.After(60 * time.Second):
		n.Stop()
		return nil, errors.New("callctx did not start listening")
	}
	return n, nil
}

// Stop stops the node gracefully, killing it after 30 s.
func (n *Node) Stop() {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
}

// CreateCalls creates n calls through POST /v1/calls, spread over addrs,
// each with four variables, and returns their IDs.
func CreateCalls(addrs []string, n int) ([]string, error) {
	ids := make([]string, n)
	const workers = 16
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for i := w; i < n; i += workers {
				id, err := createCall(client, addrs[i%len(addrs)])
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return ids, first
}

func createCall(client *http.Client, addr string) (string, error) {
	body := `{"from":"+4930123456","to":"+4940555000","variables":{"ivr.email":"jane@example.com","ivr.premium":true,"ivr.track_id":"TRK-0","app.lang":"de"}}`
	res, err := client.Post("http://"+addr+"/v1/calls", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var c struct{ ID string }
	json.NewDecoder(res.Body).Decode(&c)
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create call: %s", res.Status)
	}
	return c.ID, nil
}
