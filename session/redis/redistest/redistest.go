// Package redistest starts throwaway redis-server processes for tests and
// benchmarks: each on a free loopback port, with its data in a directory of
// its own, durable with appendfsync always unless told otherwise, and killed
// when the test ends.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/testenv"
)

// Options configure a server. Zero values take the defaults.
type Options struct {
	// Dir holds the append-only file and the log; a new temporary directory
	// when empty.
	Dir string
	// AppendFsync is Redis' appendfsync: "always" (the default here: every
	// acknowledged write is on disk), "everysec" or "no".
	AppendFsync string
	// Cluster starts the server with cluster-enabled yes (see StartCluster).
	Cluster bool
	// Args are extra command-line arguments, e.g. "--maxmemory", "1gb".
	Args []string
}

// Server is one redis-server process.
type Server struct {
	Dir  string
	Port int

	opts    Options
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	tempDir bool
}

// Binary returns the path of redis-server, or an error that says how to
// install it.
func Binary() (string, error) {
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server is not installed: run make deps (scripts/ensure-redis.sh installs Debian's redis-server)")
	}
	return p, nil
}

// Need ends the test unless redis-server is installed: a skip naming make
// test, or a failure when CI is set (see internal/testenv).
func Need(tb testing.TB) {
	tb.Helper()
	testenv.LookPath(tb, "redis-server")
}

// Start starts a server on a free loopback port and waits until it answers.
func Start(opts Options) (*Server, error) {
	if opts.AppendFsync == "" {
		opts.AppendFsync = "always"
	}
	s := &Server{opts: opts, Dir: opts.Dir}
	if s.Dir == "" {
		d, err := os.MkdirTemp("", "callctx-redis-")
		if err != nil {
			return nil, fmt.Errorf("redistest: %w", err)
		}
		s.Dir, s.tempDir = d, true
	} else if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		port, err := freePort(opts.Cluster)
		if err != nil {
			return nil, err
		}
		s.Port = port
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
		if !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	s.cleanupDir()
	return nil, lastErr
}

// MustStart starts a server for tb and kills it when tb ends.
func MustStart(tb testing.TB, opts Options) *Server {
	tb.Helper()
	Need(tb)
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	s, err := Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Kill() })
	return s
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL returns the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

func (s *Server) args() []string {
	a := []string{
		"--port", strconv.Itoa(s.Port),
		"--bind", "127.0.0.1",
		"--dir", s.Dir,
		"--daemonize", "no",
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", s.opts.AppendFsync,
		"--logfile", "redis.log",
	}
	if s.opts.Cluster {
		a = append(a, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
	}
	return append(a, s.opts.Args...)
}

// start runs the process on s.Port and waits until it answers PING.
func (s *Server) start() error { return s.launch(20*time.Second, s.args()...) }

// launch runs redis-server with args, which make it listen on s.Port, and
// waits up to wait until it answers PING.
func (s *Server) launch(wait time.Duration, args ...string) error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redistest: redis-server on port %d exited: %s", s.Port, s.logTail())
		default:
		}
		if ping(s.Addr()) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("redistest: redis-server on port %d did not answer within %s: %s", s.Port, wait, s.logTail())
}

// Restart starts the server again on the same port and directory after
// Kill or Stop; the append-only file brings back every acknowledged write.
func (s *Server) Restart() error {
	var err error
	for attempt := 0; attempt < 50; attempt++ { // the port may linger for a moment
		if err = s.start(); err == nil || !strings.Contains(err.Error(), "in use") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() error { return s.signal(syscall.SIGKILL) }

// Stop ends the server with SIGTERM (a clean shutdown) and waits for it.
func (s *Server) Stop() error { return s.signal(syscall.SIGTERM) }

// Pause stops the process (SIGSTOP) without closing its sockets: clients
// see a server that accepts connections but never answers.
func (s *Server) Pause() error { return s.sendOnly(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() error { return s.sendOnly(syscall.SIGCONT) }

func (s *Server) sendOnly(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return errors.New("redistest: not running")
	}
	return s.cmd.Process.Signal(sig)
}

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if sig == syscall.SIGTERM {
		cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot handle SIGTERM
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redistest: signal redis-server: %w", err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
	return nil
}

// Close kills the server and removes a directory Start created.
func (s *Server) Close() error {
	err := s.Kill()
	s.cleanupDir()
	return err
}

func (s *Server) cleanupDir() {
	if s.tempDir {
		os.RemoveAll(s.Dir)
	}
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	out := strings.Join(lines, " | ")
	if strings.Contains(out, "Address already in use") {
		out += " (port in use)"
	}
	return out
}

// Ping sends PING and reports an error unless the server answers PONG (a
// server still loading its data answers -LOADING).
func (s *Server) Ping() error { return ping(s.Addr()) }

func ping(addr string) error {
	_, err := Command(addr, "PING")
	return err
}

// Command sends one command in RESP and returns the reply's first line, for
// the few administrative commands the helpers need without a client
// library. An error reply is an error.
func Command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return "", errors.New(line[1:])
	}
	if strings.HasPrefix(line, "$") {
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}

// freePort returns a loopback port nobody listens on; for a cluster node
// also its bus port (port+10000).
func freePort(cluster bool) (int, error) {
	for i := 0; i < 100; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("redistest: find a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !cluster {
			return port, nil
		}
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, errors.New("redistest: no free port pair for a cluster node")
}

// Cluster is a Redis Cluster of masters without replicas, on loopback.
type Cluster struct {
	Servers []*Server
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, s := range c.Servers {
		out = append(out, s.Addr())
	}
	return out
}

// StartCluster starts n (at least 3) cluster-enabled servers, joins them
// with redis-cli --cluster create and waits until every node reports the
// cluster ok.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	cli := testenv.LookPath(tb, "redis-cli")
	c := &Cluster{}
	for i := 0; i < n; i++ {
		c.Servers = append(c.Servers, MustStart(tb, Options{Cluster: true}))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range c.Servers {
		for {
			info, err := clusterState(s.Addr())
			if err == nil && info == "ok" {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("cluster node %s not ok: %q %v", s.Addr(), info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

func clusterState(addr string) (string, error) {
	info, err := Command(addr, "CLUSTER", "INFO")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
			return v, nil
		}
	}
	return "", errors.New("no cluster_state in CLUSTER INFO")
}

// Monitor records the commands clients send the server (MONITOR), without
// those that scripts run inside it, until the returned stop is called;
// stop returns them, one line each.
func (s *Server) Monitor() (stop func() []string, err error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte("*1\r\n$7\r\nMONITOR\r\n")); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		c.Close()
		return nil, fmt.Errorf("redistest: MONITOR: %q %v", line, err)
	}
	const marker = "callctx-redistest-monitor-end"
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			line, err := r.ReadString('\n')
			if err != nil || strings.Contains(line, marker) {
				return
			}
			if !strings.Contains(line, " lua] ") {
				lines = append(lines, strings.TrimRight(line, "\r\n"))
			}
		}
	}()
	return func() []string {
		Command(s.Addr(), "ECHO", marker)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		c.Close()
		<-done
		return lines
	}, nil
}

// StartSentinel starts a Sentinel (redis-server --sentinel) that monitors
// primary as master, and kills it when tb ends.
func StartSentinel(tb testing.TB, master string, primary *Server) *Server {
	tb.Helper()
	Need(tb)
	s := &Server{Dir: tb.TempDir()}
	for attempt := 0; ; attempt++ {
		port, err := freePort(false)
		if err != nil {
			tb.Fatal(err)
		}
		s.Port = port
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile redis.log\nsentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\n",
			s.Port, s.Dir, master, primary.Port, master, master)
		path := filepath.Join(s.Dir, "sentinel.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			tb.Fatal(err)
		}
		err = s.launch(10*time.Second, path, "--sentinel")
		if err == nil {
			break
		}
		if attempt > 5 {
			tb.Fatalf("sentinel did not start: %v", err)
		}
	}
	tb.Cleanup(func() { s.Kill() })
	// Wait until the sentinel knows the master.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if addr, err := Command(s.Addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", master); err == nil && addr != "" && addr != "*-1" { // an array of host and port
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sentinel does not know %s", master)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
