// Command httpbench measures callctx's HTTP API against a bare gin handler
// on the same machine, in one run:
//
//	(a) a bare gin handler returning a fixed small JSON (the baseline),
//	(b) GET /v1/sessions/{id},
//	(c) POST /v1/sessions/{id} merging three variables, durable,
//
// each with 64 concurrent clients, plus (d) one client writing alone.
// The machine's speed drifts between measurements, so (a) and (b) run in
// alternation -rounds times and the ratio reported is the median of the
// rounds' ratios.
// Both servers run as separate processes; the load generator speaks raw
// HTTP/1.1 over keep-alive connections so that it takes as little CPU
// from them as it can.
//
//	go run ./bench/httpbench [-duration 10s] [-clients 64] [-rounds 3] [-tune]
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
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
	"time"

	"github.com/gin-gonic/gin"
)

func main() {
	serveBaseline := flag.Bool("serve-baseline", false, "internal: run the bare gin baseline server")
	duration := flag.Duration("duration", 10*time.Second, "how long each measurement runs")
	warmup := flag.Duration("warmup", 2*time.Second, "warm-up before each measurement")
	clients := flag.Int("clients", 64, "concurrent clients")
	tune := flag.Bool("tune", false, "also measure (c) under several DB.Batch settings")
	rounds := flag.Int("rounds", 3, "alternate (a) and (b) this many times and report the median ratio")
	flag.Parse()
	if *serveBaseline {
		runBaseline()
		return
	}
	if err := run(*duration, *warmup, *clients, *rounds, *tune); err != nil {
		fmt.Fprintln(os.Stderr, "httpbench:", err)
		os.Exit(1)
	}
}

// runBaseline serves GET /ping with a fixed small JSON, the way a bare gin
// service would, and prints its address.
func runBaseline() {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/ping", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok", "version": 1}) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	http.Serve(ln, r)
}

type result struct {
	name     string
	requests int
	errors   int
	elapsed  time.Duration
	lat      []time.Duration
	cpu      time.Duration // the server's CPU time (user+system) in the measured part; 0 if unknown
}

// cpuPerRequest is the server's CPU time per completed request.
func (r *result) cpuPerRequest() string {
	if r.cpu <= 0 || r.requests == 0 {
		return "-"
	}
	return (r.cpu / time.Duration(r.requests)).Round(100 * time.Nanosecond).String()
}

// processCPU reads a process's user+system CPU time from /proc (Linux; the
// kernel reports it in clock ticks, 100 per second on every common
// configuration). It returns 0 where /proc is not available.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

func (r *result) rate() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

func run(duration, warmup time.Duration, clients, rounds int, tune bool) error {
	tmp, err := os.MkdirTemp("", "httpbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "callctx")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/callctx").CombinedOutput(); err != nil {
		return fmt.Errorf("build callctx (run from the repository root): %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("httpbench: %d clients, %v per measurement, GOMAXPROCS=%d, %s/%s\n\n", clients, duration, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)

	baseline, baseAddr, err := startBaseline(self)
	if err != nil {
		return err
	}
	defer baseline.Process.Kill()
	srv, addr, err := startCallctx(bin, filepath.Join(tmp, "data"), 0, 0)
	if err != nil {
		return err
	}
	callIDs, err := createCalls(addr, clients)
	if err != nil {
		srv.Process.Kill()
		return err
	}
	// The read requests never change: built once, so that the load
	// generator spends no CPU on them while it measures.
	gets := make([][]byte, len(callIDs))
	for i, id := range callIDs {
		gets[i] = []byte("GET /v1/sessions/" + id + " HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	reqGet := func(i, _ int) []byte { return gets[i] }
	ping := []byte("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
	reqPing := func(int, int) []byte { return ping }
	var results []*result
	var ratios []float64
	for i := 1; i <= max(1, rounds); i++ {
		a := measure(fmt.Sprintf("(a) bare gin GET /ping, round %d", i), baseAddr, baseline.Process.Pid, clients, warmup, duration, reqPing)
		b := measure(fmt.Sprintf("(b) GET /v1/sessions/{id}, round %d", i), addr, srv.Process.Pid, clients, warmup, duration, reqGet)
		results = append(results, a, b)
		ratios = append(ratios, b.rate()/a.rate())
	}
	c := measure("(c) POST /v1/sessions/{id}, 3 vars", addr, srv.Process.Pid, clients, warmup, duration, writeRequest(callIDs))
	d := measure("(d) POST, one client alone", addr, srv.Process.Pid, 1, warmup, duration, writeRequest(callIDs))
	results = append(results, c, d)
	srv.Process.Signal(os.Interrupt)
	srv.Wait()

	fmt.Printf("%-40s %10s %9s %9s %7s %14s\n", "measurement", "req/s", "p50", "p99", "errors", "server CPU/req")
	for _, r := range results {
		fmt.Printf("%-40s %10.0f %9s %9s %7d %14s\n", r.name, r.rate(), r.pct(0.50).Round(time.Microsecond), r.pct(0.99).Round(time.Microsecond), r.errors, r.cpuPerRequest())
	}
	sorted := slices.Clone(ratios)
	slices.Sort(sorted)
	parts := make([]string, len(ratios))
	for i, r := range ratios {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	fmt.Printf("\n(b)/(a) = %.2f, the median of the rounds' %s   (target ≥ 0.85)\n", sorted[len(sorted)/2], strings.Join(parts, ", "))
	fmt.Printf("(c) = %.0f acknowledged writes/s, p99 %v   (target ≥ 30000/s, p99 ≤ 5ms)\n", c.rate(), c.pct(0.99).Round(time.Microsecond))
	fmt.Printf("(d) single-client write p99 = %v   (target ≤ 1ms)\n", d.pct(0.99).Round(time.Microsecond))

	if tune {
		fmt.Printf("\nDB.Batch tuning, measurement (c) with %d clients:\n", clients)
		fmt.Printf("%-26s %10s %9s %9s %14s\n", "max_size / max_delay", "writes/s", "p50", "p99", "server CPU/req")
		for _, s := range []struct {
			size  int
			delay time.Duration
		}{{1000, 10 * time.Millisecond}, {64, 10 * time.Millisecond}, {64, 2 * time.Millisecond}, {64, 500 * time.Microsecond}, {32, 500 * time.Microsecond}, {16, 200 * time.Microsecond}} {
			srv, addr, err := startCallctx(bin, filepath.Join(tmp, fmt.Sprintf("tune-%d-%d", s.size, s.delay)), s.size, s.delay)
			if err != nil {
				return err
			}
			ids, err := createCalls(addr, clients)
			if err != nil {
				srv.Process.Kill()
				return err
			}
			r := measure("tune", addr, srv.Process.Pid, clients, warmup, duration, writeRequest(ids))
			srv.Process.Signal(os.Interrupt)
			srv.Wait()
			fmt.Printf("%-26s %10.0f %9s %9s %14s\n", fmt.Sprintf("%d / %v", s.size, s.delay), r.rate(), r.pct(0.50).Round(time.Microsecond), r.pct(0.99).Round(time.Microsecond), r.cpuPerRequest())
		}
	}
	return nil
}

// writeRequest builds client i's n-th write: three variables, one of them
// new every time, so that every write is a real change with its own fsync'd
// version.
func writeRequest(callIDs []string) func(i, n int) []byte {
	return func(i, n int) []byte {
		body := `{"ivr.email":"jane@example.com","ivr.premium":true,"ivr.track_id":"TRK-` + strconv.Itoa(n) + `"}`
		return []byte("POST /v1/sessions/" + callIDs[i] + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	}
}

func startBaseline(self string) (*exec.Cmd, string, error) {
	cmd := exec.Command(self, "-serve-baseline")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, "", fmt.Errorf("baseline server: %w", err)
	}
	return cmd, strings.TrimSpace(line), nil
}

// startCallctx runs callctx serve with access logs and the SIP bridge off
// (it would take the default SIP port, which another process may hold) and
// the given batch settings (0: the defaults), and returns its address.
func startCallctx(bin, dataDir string, batchSize int, batchDelay time.Duration) (*exec.Cmd, string, error) {
	conf := "http:\n  access_log: false\nlog:\n  level: warn\nsip:\n  listen: \"\"\n"
	if batchSize > 0 {
		conf += fmt.Sprintf("data:\n  batch:\n    max_size: %d\n    max_delay: %s\n", batchSize, batchDelay)
	}
	confPath := dataDir + ".yaml"
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--http", addr, "--data", dataDir, "--config", confPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get("http://" + addr + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return cmd, addr, nil
			}
		}
	}
	cmd.Process.Kill()
	return nil, "", errors.New("callctx did not become ready")
}

// createCalls creates one call per client, each with a few variables.
func createCalls(addr string, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		body := `{"from":"+4930123456","to":"+4940555000","variables":{"ivr.email":"jane@example.com","ivr.premium":true,"ivr.track_id":"TRK-0","app.lang":"de"}}`
		res, err := http.Post("http://"+addr+"/v1/calls", "application/json", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		var c struct{ ID string }
		json.NewDecoder(res.Body).Decode(&c)
		res.Body.Close()
		if res.StatusCode != 201 {
			return nil, fmt.Errorf("create call: %d", res.StatusCode)
		}
		ids[i] = c.ID
	}
	return ids, nil
}

// measure runs clients connections against addr for warmup+duration and
// records the requests completed in the measured part, and the CPU time the
// server process (pid) spent in it.
func measure(name, addr string, pid, clients int, warmup, duration time.Duration, request func(i, n int) []byte) *result {
	var mu sync.Mutex
	r := &result{name: name}
	start := time.Now()
	measureFrom, stop := start.Add(warmup), start.Add(warmup+duration)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			lat, errs := runClient(addr, i, measureFrom, stop, request)
			mu.Lock()
			r.lat = append(r.lat, lat...)
			r.errors += errs
			mu.Unlock()
		}(i)
	}
	time.Sleep(time.Until(measureFrom))
	cpu0 := processCPU(pid)
	time.Sleep(time.Until(stop))
	if cpu0 > 0 {
		r.cpu = processCPU(pid) - cpu0
	}
	wg.Wait()
	r.requests = len(r.lat)
	r.elapsed = duration
	slices.Sort(r.lat)
	return r
}

func runClient(addr string, i int, from, stop time.Time, request func(i, n int) []byte) (lat []time.Duration, errs int) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, 1
	}
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 16<<10)
	for n := 0; ; n++ {
		t0 := time.Now()
		if t0.After(stop) {
			return lat, errs
		}
		if _, err := conn.Write(request(i, n)); err != nil {
			return lat, errs + 1
		}
		status, err := readResponse(br)
		if err != nil {
			return lat, errs + 1
		}
		if status != 200 {
			errs++
			continue
		}
		if t0.After(from) {
			lat = append(lat, time.Since(t0))
		}
	}
}

// readResponse reads one HTTP/1.1 response with a Content-Length body.
func readResponse(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 {
		return 0, errors.New("short status line")
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, err
	}
	length := -1
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length")
	}
	_, err = br.Discard(length)
	return status, err
}
