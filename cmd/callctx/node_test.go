package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// node is one callctx serve process.
type node struct {
	t      *testing.T
	name   string
	bin    string
	args   []string // after serve --http 127.0.0.1:0
	env    []string // added to the environment
	cmd    *exec.Cmd
	URL    string
	SIP    string // host:port of the SIP bridge, "" without one
	exited chan struct{}
	mu     sync.Mutex
	log    bytes.Buffer
	// atFirstLine, when set, runs once the process has logged its first
	// line, before start waits for it to listen.
	atFirstLine func(*os.Process)
}

// startNode writes config (YAML) to a file and starts callctx serve on a
// free loopback port with it (see start).
func startNode(t *testing.T, bin, name, config string) *node {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	writeFile(t, path, config)
	n := &node{t: t, name: name, bin: bin, args: []string{"--config", path}}
	n.start()
	return n
}

// start runs callctx serve on a free loopback port and waits until it
// listens. The node is killed when the test ends, and its log shown if the
// test failed.
func (n *node) start() {
	n.t.Helper()
	cmd := exec.Command(n.bin, append([]string{"serve", "--http", "127.0.0.1:0"}, n.args...)...)
	cmd.Env = append(append(os.Environ(), n.env...), "LOG_LEVEL=info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	n.t.Cleanup(func() {
		n.kill()
		if n.t.Failed() {
			n.t.Logf("log of node %s:\n%s", n.name, n.logText())
		}
	})
	type listening struct{ Msg, HTTP, SIP string }
	addr := make(chan listening, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for first := true; sc.Scan(); first = false {
			line := sc.Text()
			if first && n.atFirstLine != nil {
				n.atFirstLine(cmd.Process)
			}
			n.mu.Lock()
			n.log.WriteString(line + "\n")
			n.mu.Unlock()
			var rec listening
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "callctx listening" {
				addr <- rec
			}
		}
		cmd.Wait()
		close(n.exited)
	}()
	select {
	case a := <-addr:
		n.URL, n.SIP = "http://"+a.HTTP, a.SIP
	case <-n.exited:
		n.t.Fatalf("node %s exited at start", n.name) // the cleanup shows its log
	case <-time.After(30 * time.Second):
		n.t.Fatalf("node %s did not start", n.name)
	}
}

func (n *node) logText() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

// kill ends the node with SIGKILL, as a crash would.
func (n *node) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// stop ends the node with SIGTERM and waits for a clean exit.
func (n *node) stop() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(40 * time.Second):
		n.t.Fatalf("node %s did not stop", n.name)
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		n.t.Fatalf("node %s exited with %d:\n%s", n.name, code, n.logText())
	}
}

// reply is a finished HTTP exchange.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// send sends a request with a JSON body (a string as it is; none when body
// is nil) and headers (name, value pairs), and reads the whole reply. A
// transport error is returned, not fatal, so that goroutines other than the
// test's can use it.
func send(method, url string, body any, headers ...string) (*reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &reply{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// do sends a JSON request to n (see send).
func (n *node) do(method, path string, body any, headers ...string) (*reply, error) {
	return send(method, n.URL+path, body, headers...)
}

// must sends a request and fails the test unless it gets want.
func (n *node) must(want int, method, path string, body any, headers ...string) map[string]any {
	n.t.Helper()
	r, err := n.do(method, path, body, headers...)
	if err != nil {
		n.t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
	}
	if r.Status != want {
		n.t.Fatalf("%s %s on %s: %d %s, want %d", method, path, n.name, r.Status, r.Body, want)
	}
	var m map[string]any
	json.Unmarshal(r.Body, &m)
	return m
}

// createCall creates a call on n and returns its ID.
func (n *node) createCall() string {
	n.t.Helper()
	return n.must(http.StatusCreated, "POST", "/v1/calls", map[string]any{"from": "+4930123", "to": "+4940555"})["id"].(string)
}

// sseEvent is one event of a stream.
type sseEvent struct {
	Type string
	ID   uint64
	Data map[string]any
}

// stream follows a call's event stream like a browser's EventSource:
// it reconnects with Last-Event-ID whenever the stream breaks or the node
// answers with an error, and reports every event it gets.
type stream struct {
	Events chan sseEvent
	cancel context.CancelFunc
	done   chan struct{}
}

func watch(nodes func() *node, callID, lastEventID string) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{Events: make(chan sseEvent, 4096), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		last := lastEventID
		for ctx.Err() == nil {
			last = s.follow(ctx, nodes(), callID, last)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return s
}

// follow reads one connection's events and returns the last event ID.
func (s *stream) follow(ctx context.Context, n *node, callID, last string) string {
	req, _ := http.NewRequestWithContext(ctx, "GET", n.URL+"/v1/sessions/"+callID+"/events", nil)
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return last
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, res.Body)
		return last
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Type != "" {
				s.Events <- ev
				last = strconv.FormatUint(ev.ID, 10)
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.Type = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			ev.ID, _ = strconv.ParseUint(line[len("id: "):], 10, 64)
		case strings.HasPrefix(line, "data: "):
			json.Unmarshal([]byte(line[len("data: "):]), &ev.Data)
		}
	}
	return last
}

func (s *stream) Close() {
	s.cancel()
	<-s.done
}

// next returns the next event of the stream.
func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case e := <-s.Events:
		return e
	case <-time.After(15 * time.Second):
		t.Fatal("no event on the stream within 15s")
		return sseEvent{}
	}
}

func redisConfig(url string) string {
	return fmt.Sprintf("store: redis\nredis:\n  url: %s\n  timeout: 1s\n  dial_timeout: 500ms\nhttp:\n  access_log: false\nsip:\n  listen: \"\"\nlog:\n  format: json\n", url)
}
