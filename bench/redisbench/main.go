// Command redisbench measures callctx on Redis beside redis-benchmark and
// beside bbolt, in one run on one machine (make bench-redis):
//
//   - redis-benchmark SET and GET, 64 clients, on the same redis-server
//     (same appendfsync);
//   - the Redis store without HTTP (Service.Merge and Service.Session from
//     64 goroutines), which shows what the Lua script costs;
//   - one callctx node on Redis, two nodes sharing it, one node on bbolt:
//     GET /v1/sessions/{id} and POST /v1/sessions/{id} merging three
//     variables, 64 HTTP clients with keep-alive.
//
// Every figure is requests per second and p50/p99 latency. The load
// generator, Redis and callctx share the machine's cores, as they do in
// the tests; compare the rows, not the absolute numbers, across machines.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/redis"
	"github.com/callctx/callctx/session/redis/redistest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "redisbench:", err)
		os.Exit(1)
	}
}

type config struct {
	clients     int
	duration    time.Duration
	warmup      time.Duration
	appendfsync string
	dataSize    int
	requests    int
}

func run() error {
	var cfg config
	flag.IntVar(&cfg.clients, "clients", 64, "concurrent clients")
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time per row")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured time before each row")
	flag.StringVar(&cfg.appendfsync, "appendfsync", "always", "Redis appendfsync: always, everysec or no")
	flag.IntVar(&cfg.dataSize, "d", 256, "redis-benchmark value size in bytes (a small session is about this big)")
	flag.IntVar(&cfg.requests, "n", 300000, "redis-benchmark requests per test")
	outPath := flag.String("out", "", "also write the report to this file")
	flag.Parse()
	out := io.Writer(os.Stdout)
	if *outPath != "" {
		if err := os.MkdirAll(filepath.Dir(*outPath), 0o755); err != nil {
			return err
		}
		f, err := os.Create(*outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	redis.LogTo(slog.New(slog.DiscardHandler))

	work, err := os.MkdirTemp("", "callctx-redisbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Fprintf(out, "callctx Redis benchmark: %d clients, %s per row (after %s warm-up), appendfsync %s, GOMAXPROCS %d, %s\n",
		cfg.clients, cfg.duration, cfg.warmup, cfg.appendfsync, runtime.GOMAXPROCS(0), redisVersion())
	fmt.Fprintf(out, "load average before the run: %s (anything else busy on this machine skews every row)\n\n", loadAverage())

	var rows []row
	srv, err := redistest.Start(redistest.Options{Dir: filepath.Join(work, "redis"), AppendFsync: cfg.appendfsync})
	if err != nil {
		return err
	}
	defer srv.Close()

	rb, err := redisBenchmark(srv, cfg)
	if err != nil {
		return err
	}
	rows = append(rows, rb...)

	direct, err := benchStore(srv, cfg)
	if err != nil {
		return err
	}
	rows = append(rows, direct...)

	bin := filepath.Join(work, "callctx")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/callctx").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	redisCfg := fmt.Sprintf("store: redis\nredis:\n  url: %s\n  pool_size: %d\nhttp:\n  access_log: false\nsip:\n  listen: \"\"\nlog:\n  level: info\n  format: json\n", srv.URL(), cfg.clients)
	for _, setup := range []struct {
		name    string
		configs []string
	}{
		{"callctx, 1 node on Redis", []string{redisCfg}},
		{"callctx, 2 nodes sharing Redis", []string{redisCfg, redisCfg}},
		{"callctx, 1 node on bbolt", []string{fmt.Sprintf("data:\n  dir: %s\nhttp:\n  access_log: false\nsip:\n  listen: \"\"\nlog:\n  level: info\n  format: json\n", filepath.Join(work, "bolt"))}},
	} {
		r, err := benchNodes(bin, work, setup.name, setup.configs, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", setup.name, err)
		}
		rows = append(rows, r...)
	}
	report(out, rows)
	return nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func redisVersion() string {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return "redis-server ?"
	}
	f := strings.Fields(string(out))
	for _, w := range f {
		if strings.HasPrefix(w, "v=") {
			return "Redis " + w[2:]
		}
	}
	return strings.TrimSpace(string(out))
}

// row is one measured line.
type row struct {
	name   string
	op     string // read or write
	rps    float64
	p50    time.Duration
	p99    time.Duration
	errors int
}

// redisBenchmark runs redis-benchmark SET and GET.
func redisBenchmark(srv *redistest.Server, cfg config) ([]row, error) {
	out, err := exec.Command("redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(srv.Port),
		"-c", strconv.Itoa(cfg.clients), "-n", strconv.Itoa(cfg.requests), "-d", strconv.Itoa(cfg.dataSize),
		"-r", "100000", "-t", "set,get", "--csv").Output()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark: %w", err)
	}
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 2 {
		return nil, fmt.Errorf("redis-benchmark output: %v\n%s", err, out)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var rows []row
	for _, r := range recs[1:] {
		rps, _ := strconv.ParseFloat(r[col["rps"]], 64)
		ms := func(name string) time.Duration {
			v, _ := strconv.ParseFloat(r[col[name]], 64)
			return time.Duration(v * float64(time.Millisecond))
		}
		op := "read"
		if r[col["test"]] == "SET" {
			op = "write"
		}
		rows = append(rows, row{name: "redis-benchmark " + r[col["test"]] + fmt.Sprintf(" (-d %d)", cfg.dataSize), op: op, rps: rps, p50: ms("p50_latency_ms"), p99: ms("p99_latency_ms")})
	}
	return rows, nil
}

// benchStore drives the Redis store through the Service, without HTTP.
func benchStore(srv *redistest.Server, cfg config) ([]row, error) {
	st, err := redis.Open(redis.Options{URL: srv.URL(), Prefix: "direct:", PoolSize: cfg.clients})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	ids := make([]string, cfg.clients)
	for i := range ids {
		c, _, err := svc.CreateCall(ctx, session.NewCall{From: "+4930123456", To: "+4940555000"}, session.WriteOptions{Actor: "bench"})
		if err != nil {
			return nil, err
		}
		ids[i] = c.ID
	}
	write := measure("Redis store, no HTTP (Service.Merge)", "write", cfg, func(c, i int) error {
		_, err := svc.Merge(ctx, ids[c], writeVars(i), session.WriteOptions{Actor: "bench"})
		return err
	})
	read := measure("Redis store, no HTTP (Service.Session)", "read", cfg, func(c, i int) error {
		_, err := svc.Session(ctx, ids[c])
		return err
	})
	return []row{read, write}, nil
}

// writeVars is the write of the benchmarks (as bench/httpbench's): three
// variables, one of them new every time, so every write is a real change.
func writeVars(i int) map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"ivr.email":    json.RawMessage(`"jane@example.com"`),
		"ivr.premium":  json.RawMessage(`true`),
		"ivr.track_id": json.RawMessage(`"TRK-` + strconv.Itoa(i) + `"`),
	}
}

// benchNodes starts one node per config, spreads the clients over them,
// and measures reads and writes. The clients speak raw HTTP/1.1 over one
// keep-alive connection each, as bench/httpbench does, so that the load
// generator takes as little CPU from the nodes and Redis as it can.
func benchNodes(bin, work, name string, configs []string, cfg config) ([]row, error) {
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	for i, c := range configs {
		n, err := startNode(bin, filepath.Join(work, fmt.Sprintf("%s-%d.yaml", strings.ReplaceAll(name, " ", "_"), i)), c)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	ids := make([]string, cfg.clients)
	for i := range ids {
		body := `{"from":"+4930123456","to":"+4940555000","variables":{"ivr.email":"jane@example.com","ivr.premium":true,"ivr.track_id":"TRK-0","app.lang":"de"}}`
		res, err := http.Post("http://"+nodes[i%len(nodes)].addr+"/v1/calls", "application/json", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		var c struct{ ID string }
		json.NewDecoder(res.Body).Decode(&c)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			return nil, fmt.Errorf("create call: %s", res.Status)
		}
		ids[i] = c.ID
	}
	conns := make([]*rawConn, cfg.clients)
	for i := range conns {
		c, err := dialRaw(nodes[i%len(nodes)].addr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		conns[i] = c
	}
	write := measure(name, "write", cfg, func(c, i int) error {
		body := `{"ivr.email":"jane@example.com","ivr.premium":true,"ivr.track_id":"TRK-` + strconv.Itoa(i) + `"}`
		return conns[c].do("POST /v1/sessions/" + ids[c] + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	})
	read := measure(name, "read", cfg, func(c, i int) error {
		return conns[c].do("GET /v1/sessions/" + ids[c] + " HTTP/1.1\r\nHost: x\r\n\r\n")
	})
	return []row{read, write}, nil
}

// rawConn is one keep-alive HTTP/1.1 connection.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(addr string) (*rawConn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawConn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (r *rawConn) Close() error { return r.c.Close() }

// do sends one request and reads its response, which must be 200 with a
// Content-Length body.
func (r *rawConn) do(req string) error {
	if _, err := io.WriteString(r.c, req); err != nil {
		return err
	}
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 12 {
		return errors.New("short status line")
	}
	status := string(line[9:12])
	length := -1
	for {
		h, err := r.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	if _, err := r.br.Discard(length); err != nil {
		return err
	}
	if status != "200" {
		return fmt.Errorf("status %s", status)
	}
	return nil
}

// measure runs op from cfg.clients goroutines for the warm-up and then the
// measured time, and returns the throughput and latency percentiles of the
// measured part.
func measure(name, op string, cfg config, fn func(client, i int) error) row {
	start := time.Now()
	measureFrom := start.Add(cfg.warmup)
	end := measureFrom.Add(cfg.duration)
	lats := make([][]time.Duration, cfg.clients)
	errs := make([]int, cfg.clients)
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for c := 0; c < cfg.clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				err := fn(c, i)
				t1 := time.Now()
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					errs[c]++
					once.Do(func() { firstErr = err })
					continue
				}
				lats[c] = append(lats[c], t1.Sub(t0))
			}
		}()
	}
	wg.Wait()
	var all []time.Duration
	nerr := 0
	for c := range lats {
		all = append(all, lats[c]...)
		nerr += errs[c]
	}
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %d errors, the first: %v\n", name, op, nerr, firstErr)
	}
	slices.Sort(all)
	r := row{name: name, op: op, rps: float64(len(all)) / cfg.duration.Seconds(), errors: nerr}
	if len(all) > 0 {
		r.p50 = all[len(all)*50/100]
		r.p99 = all[len(all)*99/100]
	}
	return r
}

// report prints the rows and the ratios the issue sets targets for.
func report(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\top\treq/s\tp50\tp99\terrors\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%d\t\n", r.name, r.op, r.rps, fmtDur(r.p50), fmtDur(r.p99), r.errors)
	}
	tw.Flush()
	find := func(prefix, op string) float64 {
		for _, r := range rows {
			if strings.HasPrefix(r.name, prefix) && r.op == op {
				return r.rps
			}
		}
		return 0
	}
	set, get := find("redis-benchmark SET", "write"), find("redis-benchmark GET", "read")
	fmt.Fprintln(w)
	for _, p := range []string{"Redis store, no HTTP", "callctx, 1 node on Redis", "callctx, 2 nodes sharing Redis"} {
		fmt.Fprintf(w, "%-32s writes %.2f × SET (target ≥ 0.5), reads %.2f × GET (target ≥ 0.5)\n", p+":", find(p, "write")/set, find(p, "read")/get)
	}
	if b := find("callctx, 1 node on bbolt", "write"); b > 0 {
		fmt.Fprintf(w, "%-32s writes %.2f × bbolt, reads %.2f × bbolt\n", "callctx, 1 node on Redis:", find("callctx, 1 node on Redis", "write")/b, find("callctx, 1 node on Redis", "read")/find("callctx, 1 node on bbolt", "read"))
	}
}

func fmtDur(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// node is a callctx serve process.
type node struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

func startNode(bin, cfgPath, config string) (*node, error) {
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
	n := &node{cmd: cmd, done: make(chan struct{})}
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
		n.addr = a
	case <-n.done:
		return nil, fmt.Errorf("callctx exited: %s", logBuf.String())
	case <-time.After(20 * time.Second):
		n.stop()
		return nil, errors.New("callctx did not start listening")
	}
	return n, nil
}

func (n *node) stop() {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
}
