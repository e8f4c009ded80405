// Command httpbench measures callctx's HTTP API against its anchor, a bare
// gin + bbolt service doing the least a durable session service needs (see
// anchor.go), in one run on one machine:
//
//	GET  /v1/sessions/{id}   a read (the anchor: a bbolt View)
//	POST /v1/sessions/{id}   a durable three-variable merge (the anchor:
//	                         read-merge-write of one JSON object in DB.Batch)
//
// with 64 clients, the anchor and callctx alternating in every round, and
// then one client writing alone. Every figure is a ratio of two rows
// measured minutes apart at most: the machine's speed drifts, the ratios
// less so. -aging measures whether the write rate depends on history
// length or on the number of sessions; -tune looks for the anchor's best
// DB.Batch setting.
//
//	go run ./bench/httpbench [-duration 8s] [-clients 64] [-rounds 3] [-tune] [-aging]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/callctx/callctx/bench/internal/load"
)

// The anchor's DB.Batch setting: the best of -tune's on the 2-core
// development machine (docs/performance.md).
const (
	anchorBatchSize  = 64
	anchorBatchDelay = 10 * time.Millisecond
)

func main() {
	serveAnchor := flag.String("serve-anchor", "", "internal: run the anchor with its database in this directory")
	batchSize := flag.Int("anchor-batch-size", anchorBatchSize, "the anchor's DB.MaxBatchSize")
	batchDelay := flag.Duration("anchor-batch-delay", anchorBatchDelay, "the anchor's DB.MaxBatchDelay")
	var cfg config
	flag.DurationVar(&cfg.duration, "duration", 8*time.Second, "how long each measurement runs")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "warm-up before each measurement")
	flag.IntVar(&cfg.clients, "clients", 64, "concurrent clients")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds of anchor and callctx in alternation; ratios are the rounds' median")
	tune := flag.Bool("tune", false, "measure the anchor's writes under several DB.Batch settings instead")
	aging := flag.Bool("aging", false, "measure writes against long histories and many sessions instead")
	flag.StringVar(&cfg.profile, "cpuprofile", "", "write a CPU profile of callctx during its first POST round to this file (with -aging: the 10,000-session server's, and the fresh one's to this file + .fresh)")
	flag.StringVar(&cfg.getProfile, "cpuprofile-get", "", "write a CPU profile of callctx during its first GET round to this file")
	flag.StringVar(&cfg.trace, "trace", "", "write an execution trace of callctx during its first POST round to this file (go tool trace)")
	flag.Parse()
	if *serveAnchor != "" {
		if err := runAnchor(*serveAnchor, *batchSize, *batchDelay); err != nil {
			fmt.Fprintln(os.Stderr, "anchor:", err)
			os.Exit(1)
		}
		return
	}
	cfg.batchSize, cfg.batchDelay = *batchSize, *batchDelay
	var err error
	switch {
	case *tune:
		err = runTune(cfg)
	case *aging:
		err = runAging(cfg)
	default:
		err = run(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpbench:", err)
		os.Exit(1)
	}
}

type config struct {
	duration, warmup time.Duration
	clients, rounds  int
	batchSize        int
	batchDelay       time.Duration
	profile          string
	getProfile       string
	trace            string
}

func (c config) opts(clients int, pid int) load.Options {
	return load.Options{Clients: clients, Warmup: c.warmup, Duration: c.duration, PIDs: []int{pid}}
}

// server is a process under test: callctx or the anchor.
type server struct {
	name string
	addr string
	pid  int
	stop func()
	ids  []string // the calls the clients use
}

func header(cfg config) {
	fmt.Printf("httpbench: %d clients, %v per measurement after %v warm-up, GOMAXPROCS=%d, %s/%s, load average %s\n\n",
		cfg.clients, cfg.duration, cfg.warmup, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, load.LoadAverage())
}

func run(cfg config) error {
	tmp, err := os.MkdirTemp("", "httpbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	header(cfg)
	anchor, err := startAnchor(tmp, "anchor", cfg.batchSize, cfg.batchDelay, cfg.clients)
	if err != nil {
		return err
	}
	defer anchor.stop()
	cc, err := startCallctx(tmp, "callctx", cfg.clients)
	if err != nil {
		return err
	}
	defer cc.stop()
	anchorBytes, ccBytes, err := samePayload(anchor, cc)
	if err != nil {
		return err
	}
	fmt.Printf("a session as read: the anchor's %d bytes, callctx's %d (the same fields and variables)\n\n", anchorBytes, ccBytes)

	var results []*load.Result
	var getRatios, writeRatios []float64
	var commitStats []string
	for i := 1; i <= max(1, cfg.rounds); i++ {
		ag := measureGets(cfg, anchor, fmt.Sprintf("anchor GET, round %d", i))
		var getProfiled chan error
		if i == 1 && cfg.getProfile != "" {
			getProfiled = profile(cc.addr, "profile", cfg.getProfile, cfg.warmup, cfg.duration)
		}
		cg := measureGets(cfg, cc, fmt.Sprintf("callctx GET, round %d", i))
		if err := fetched(getProfiled); err != nil {
			return err
		}
		aw := measureWrites(cfg, anchor, cfg.clients, fmt.Sprintf("anchor POST, round %d", i))
		var profiled chan error
		if i == 1 && cfg.profile != "" {
			profiled = profile(cc.addr, "profile", cfg.profile, cfg.warmup, cfg.duration)
		}
		var traced chan error
		if i == 1 && cfg.trace != "" {
			traced = profile(cc.addr, "trace", cfg.trace, cfg.warmup, min(cfg.duration, 4*time.Second))
		}
		before, err := readCommits(cc.addr)
		if err != nil {
			return err
		}
		cw := measureWrites(cfg, cc, cfg.clients, fmt.Sprintf("callctx POST, round %d", i))
		after, err := readCommits(cc.addr)
		if err != nil {
			return err
		}
		commitStats = append(commitStats, fmt.Sprintf("round %d: %s", i, before.until(after)))
		if err := fetched(profiled, traced); err != nil {
			return err
		}
		results = append(results, ag, cg, aw, cw)
		getRatios = append(getRatios, cg.Rate()/ag.Rate())
		writeRatios = append(writeRatios, cw.Rate()/aw.Rate())
	}
	aOne := measureWrites(cfg, anchor, 1, "anchor POST, one client alone")
	before, err := readCommits(cc.addr)
	if err != nil {
		return err
	}
	cOne := measureWrites(cfg, cc, 1, "callctx POST, one client alone")
	after, err := readCommits(cc.addr)
	if err != nil {
		return err
	}
	commitStats = append(commitStats, "one client alone: "+before.until(after))
	results = append(results, aOne, cOne)

	printResults(results)
	fmt.Printf("\ncallctx's group commits (its /metrics, warm-up included; the anchor commits at most %d writes per DB.Batch):\n", cfg.batchSize)
	for _, s := range commitStats {
		fmt.Println("  " + s)
	}
	var cpu []float64
	var p99 []time.Duration
	for _, r := range results {
		if strings.HasPrefix(r.Name, "callctx POST, round") {
			cpu = append(cpu, float64(r.CPUPerRequest())/float64(time.Microsecond))
			p99 = append(p99, r.Pct(0.99))
		}
	}
	fmt.Printf("\nload average at the end: %s\n", load.LoadAverage())
	fmt.Printf("callctx POST, 64 clients: p99 %s in the rounds   (target ≤ 10ms)\n", joinDurations(p99))
	fmt.Printf("callctx POST, 64 clients: server CPU per write %.0f µs (median of %s)   (target ≤ 80 µs)\n", load.Median(cpu), load.FormatRatios(cpu))
	fmt.Printf("callctx POST, one client alone: p99 %v (anchor %v)   (target ≤ 1ms)\n", cOne.Pct(0.99).Round(time.Microsecond), aOne.Pct(0.99).Round(time.Microsecond))
	fmt.Printf("callctx GET / anchor GET = %.2f, the median of %s   (target ≥ 0.95)\n", load.Median(getRatios), load.FormatRatios(getRatios))
	fmt.Printf("callctx POST / anchor POST = %.2f, the median of %s   (target ≥ 1.2)\n", load.Median(writeRatios), load.FormatRatios(writeRatios))
	fmt.Printf("ratio to anchor: writes %.2f×, reads %.2f×\n", load.Median(writeRatios), load.Median(getRatios))
	return nil
}

func measureGets(cfg config, s *server, name string) *load.Result {
	reqs := make([][]byte, len(s.ids))
	for i, id := range s.ids {
		reqs[i] = load.GetSession(id)
	}
	conns, err := load.Conns([]string{s.addr}, cfg.clients)
	if err != nil {
		return &load.Result{Name: name, Errors: 1, FirstErr: err, Elapsed: cfg.duration}
	}
	defer load.CloseAll(conns)
	return load.Run(name, cfg.opts(cfg.clients, s.pid), func(c, _ int) error { return conns[c].Do(reqs[c%len(reqs)]) })
}

// measureWrites has clients write; client c writes to the calls c,
// c+clients, c+2·clients, … of s in turn.
func measureWrites(cfg config, s *server, clients int, name string) *load.Result {
	conns, err := load.Conns([]string{s.addr}, clients)
	if err != nil {
		return &load.Result{Name: name, Errors: 1, FirstErr: err, Elapsed: cfg.duration}
	}
	defer load.CloseAll(conns)
	perClient := max(1, len(s.ids)/clients)
	return load.Run(name, cfg.opts(clients, s.pid), func(c, i int) error {
		id := s.ids[(c+clients*(i%perClient))%len(s.ids)]
		return conns[c].Do(load.WriteSession(id, i))
	})
}

func printResults(results []*load.Result) {
	fmt.Printf("%-40s %10s %9s %9s %7s %14s\n", "measurement", "req/s", "p50", "p99", "errors", "server CPU/req")
	for _, r := range results {
		cpu := "-"
		if d := r.CPUPerRequest(); d > 0 {
			cpu = d.Round(100 * time.Nanosecond).String()
		}
		fmt.Printf("%-40s %10.0f %9s %9s %7d %14s\n", r.Name, r.Rate(), r.Pct(0.50).Round(time.Microsecond), r.Pct(0.99).Round(time.Microsecond), r.Errors, cpu)
		if r.FirstErr != nil {
			fmt.Printf("    first error: %v\n", r.FirstErr)
		}
	}
}

func joinDurations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Round(10 * time.Microsecond).String()
	}
	return strings.Join(parts, ", ")
}

// startCallctx starts callctx with access logs and the SIP bridge off (it
// would take the default SIP port, which another process may hold), data
// in tmp/name, and creates calls calls.
func startCallctx(tmp, name string, calls int) (*server, error) {
	bin := filepath.Join(tmp, "callctx")
	if _, err := os.Stat(bin); err != nil {
		if bin, err = load.BuildCallctx(tmp); err != nil {
			return nil, err
		}
	}
	conf := fmt.Sprintf("data:\n  dir: %s\nhttp:\n  access_log: false\nsip:\n  listen: \"\"\n", filepath.Join(tmp, name+"-data"))
	n, err := load.StartCallctx(bin, filepath.Join(tmp, name+".yaml"), conf)
	if err != nil {
		return nil, err
	}
	s := &server{name: name, addr: n.Addr, pid: n.PID(), stop: n.Stop}
	if s.ids, err = load.CreateCalls([]string{s.addr}, calls); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startAnchor runs this command as the anchor with its database in
// tmp/name and creates calls calls.
func startAnchor(tmp, name string, size int, delay time.Duration, calls int) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(tmp, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve-anchor", dir, "-anchor-batch-size", strconv.Itoa(size), "-anchor-batch-delay", delay.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("anchor: %w", err)
	}
	s := &server{name: name, addr: strings.TrimSpace(line), pid: cmd.Process.Pid, stop: func() {
		stdin.Close()
		cmd.Wait()
	}}
	if s.ids, err = load.CreateCalls([]string{s.addr}, calls); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// runTune measures the anchor's writes under several DB.Batch settings,
// each against a fresh database.
func runTune(cfg config) error {
	tmp, err := os.MkdirTemp("", "httpbench-tune-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	header(cfg)
	fmt.Printf("the anchor's POST under DB.Batch settings, %d clients:\n", cfg.clients)
	fmt.Printf("%-26s %10s %9s %9s %14s\n", "max_size / max_delay", "writes/s", "p50", "p99", "server CPU/req")
	best, bestRate := "", 0.0
	for _, s := range []struct {
		size  int
		delay time.Duration
	}{{1000, 10 * time.Millisecond}, {1000, time.Millisecond}, {64, 10 * time.Millisecond}, {64, 2 * time.Millisecond},
		{64, time.Millisecond}, {64, 500 * time.Microsecond}, {32, 500 * time.Microsecond}, {16, 200 * time.Microsecond}} {
		name := fmt.Sprintf("%d / %v", s.size, s.delay)
		a, err := startAnchor(tmp, fmt.Sprintf("tune-%d-%d", s.size, s.delay), s.size, s.delay, cfg.clients)
		if err != nil {
			return err
		}
		r := measureWrites(cfg, a, cfg.clients, name)
		a.stop()
		fmt.Printf("%-26s %10.0f %9s %9s %14s\n", name, r.Rate(), r.Pct(0.50).Round(time.Microsecond), r.Pct(0.99).Round(time.Microsecond), r.CPUPerRequest().Round(100*time.Nanosecond))
		if r.Rate() > bestRate {
			best, bestRate = name, r.Rate()
		}
	}
	fmt.Printf("best: %s (%.0f writes/s)\n", best, bestRate)
	return nil
}

// fetched waits for the fetches profile started (nil ones were not) and
// returns the first error.
func fetched(fetches ...chan error) error {
	var first error
	for _, ch := range fetches {
		if ch == nil {
			continue
		}
		if err := <-ch; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// profile fetches a CPU profile of the server at addr over the measured
// part of a measurement starting now, into path.
func profile(addr, kind, path string, warmup, duration time.Duration) chan error {
	done := make(chan error, 1)
	go func() {
		time.Sleep(warmup)
		secs := max(1, int(duration/time.Second)-1)
		res, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, secs))
		if err != nil {
			done <- err
			return
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			done <- fmt.Errorf("%s: %s", kind, res.Status)
			return
		}
		f, err := os.Create(path)
		if err == nil {
			_, err = io.Copy(f, res.Body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		done <- err
	}()
	return done
}
