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
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/callctx/callctx/bench/internal/load"
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

func (c config) opts() load.Options {
	return load.Options{Clients: c.clients, Warmup: c.warmup, Duration: c.duration}
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
	fmt.Fprintf(out, "load average before the run: %s (anything else busy on this machine skews every row)\n\n", load.LoadAverage())

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
	redisCfg := fmt.Sprintf("store: redis\nredis:\n  url: %s\n  pool_size: %d\nhttp:\n  access_log: false\nsip:\n  listen: \"\"\n", srv.URL(), cfg.clients)
	for _, setup := range []struct {
		name    string
		configs []string
	}{
		{"callctx, 1 node on Redis", []string{redisCfg}},
		{"callctx, 2 nodes sharing Redis", []string{redisCfg, redisCfg}},
		{"callctx, 1 node on bbolt", []string{fmt.Sprintf("data:\n  dir: %s\nhttp:\n  access_log: false\nsip:\n  listen: \"\"\n", filepath.Join(work, "bolt"))}},
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
	cpu    time.Duration // callctx's CPU time per request (the store row: the benchmark process's, Redis' not counted)
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
	opts := cfg.opts()
	opts.PIDs = []int{os.Getpid()}
	write := load.Run("Redis store, no HTTP (Service.Merge)", opts, func(c, i int) error {
		_, _, err := svc.Merge(ctx, ids[c], writeVars(i), session.WriteOptions{Actor: "bench"})
		return err
	})
	read := load.Run("Redis store, no HTTP (Service.Session)", opts, func(c, i int) error {
		_, err := svc.Session(ctx, ids[c])
		return err
	})
	return []row{toRow(read, "read"), toRow(write, "write")}, nil
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
// and measures reads and writes, and the nodes' CPU time per request.
func benchNodes(bin, work, name string, configs []string, cfg config) ([]row, error) {
	var nodes []*load.Node
	defer func() {
		for _, n := range nodes {
			n.Stop()
		}
	}()
	var addrs []string
	var pids []int
	for i, c := range configs {
		n, err := load.StartCallctx(bin, filepath.Join(work, fmt.Sprintf("%s-%d.yaml", strings.ReplaceAll(name, " ", "_"), i)), c)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
		addrs = append(addrs, n.Addr)
		pids = append(pids, n.PID())
	}
	ids, err := load.CreateCalls(addrs, cfg.clients)
	if err != nil {
		return nil, err
	}
	conns, err := load.Conns(addrs, cfg.clients)
	if err != nil {
		return nil, err
	}
	defer load.CloseAll(conns)
	opts := cfg.opts()
	opts.PIDs = pids
	write := load.Run(name, opts, func(c, i int) error { return conns[c].Do(load.WriteSession(ids[c], i)) })
	read := load.Run(name, opts, func(c, i int) error { return conns[c].Do(load.GetSession(ids[c])) })
	return []row{toRow(read, "read"), toRow(write, "write")}, nil
}

// toRow is a measured row.
func toRow(r *load.Result, op string) row {
	if r.FirstErr != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %d errors, the first: %v\n", r.Name, op, r.Errors, r.FirstErr)
	}
	return row{name: r.Name, op: op, rps: r.Rate(), p50: r.Pct(0.50), p99: r.Pct(0.99), errors: r.Errors, cpu: r.CPUPerRequest()}
}

// report prints the rows and the ratios the issue sets targets for; the
// last line is the ratio to the anchor, redis-benchmark SET.
func report(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\top\treq/s\tp50\tp99\terrors\tcallctx CPU/req\t")
	for _, r := range rows {
		cpu := "-"
		if r.cpu > 0 {
			cpu = strconv.FormatInt(r.cpu.Microseconds(), 10) + "µs"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%d\t%s\t\n", r.name, r.op, r.rps, fmtDur(r.p50), fmtDur(r.p99), r.errors, cpu)
	}
	tw.Flush()
	find := func(prefix, op string) row {
		for _, r := range rows {
			if strings.HasPrefix(r.name, prefix) && r.op == op {
				return r
			}
		}
		return row{}
	}
	set, get := find("redis-benchmark SET", "write").rps, find("redis-benchmark GET", "read").rps
	fmt.Fprintln(w)
	for _, p := range []string{"Redis store, no HTTP", "callctx, 1 node on Redis", "callctx, 2 nodes sharing Redis"} {
		fmt.Fprintf(w, "%-32s writes %.2f × SET (target ≥ 0.5), reads %.2f × GET (target ≥ 0.5)\n", p+":", find(p, "write").rps/set, find(p, "read").rps/get)
	}
	onRedis, onBolt := find("callctx, 1 node on Redis", "write"), find("callctx, 1 node on bbolt", "write")
	if onBolt.rps > 0 {
		fmt.Fprintf(w, "%-32s writes %.2f × bbolt, reads %.2f × bbolt\n", "callctx, 1 node on Redis:", onRedis.rps/onBolt.rps, find("callctx, 1 node on Redis", "read").rps/find("callctx, 1 node on bbolt", "read").rps)
		fmt.Fprintf(w, "callctx CPU per write: %dµs on Redis, %dµs on bbolt (target on Redis ≤ 80µs and ≤ bbolt's)\n", onRedis.cpu.Microseconds(), onBolt.cpu.Microseconds())
	}
	fmt.Fprintf(w, "ratio to anchor: callctx writes on Redis %.2f× redis-benchmark SET\n", onRedis.rps/set)
}

func fmtDur(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}
