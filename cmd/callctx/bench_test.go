package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	main "github.com/callctx/callctx/cmd/callctx"
)

// BenchmarkFlowNext measures POST /v1/calls/{id}/flow/next over real HTTP
// on loopback against a real bbolt file, with 64 calls driven concurrently,
// each through a realistic flow (eight actions, then hangup; the calls are
// created outside the timed requests). It reports the latency percentiles
// of the flow/next requests and their rate.
func BenchmarkFlowNext(b *testing.B) {
	flows := b.TempDir()
	var nodes bytes.Buffer
	fmt.Fprintf(&nodes, "flows:\n  bench:\n    start: n0\n    nodes:\n")
	for i := range 8 {
		kind := "say"
		field := `text: "Step %d for {call.from}"`
		if i%2 == 1 {
			kind, field = "play", `prompt: "prompt-%d"`
		}
		fmt.Fprintf(&nodes, "      n%d: {type: %s, %s, next: n%d}\n", i, kind, fmt.Sprintf(field, i), i+1)
	}
	fmt.Fprintf(&nodes, "      n8: {type: hangup}\n")
	writeFile(b, filepath.Join(flows, "bench.yaml"), nodes.String())
	cfg := main.DefaultConfig()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SIP.Listen = "127.0.0.1:0"
	off := false
	cfg.HTTP.AccessLog = &off
	cfg.Data.Dir = b.TempDir()
	cfg.Flows.Dir = flows
	m := main.NewMain(cfg, nil)
	if err := m.Open(); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	base := "http://" + m.HTTPAddr()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	hc := &http.Client{Transport: tr}
	post := func(path string, body any) (map[string]any, error) {
		js, _ := json.Marshal(body)
		res, err := hc.Post(base+path, "application/json", bytes.NewReader(js))
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			return nil, fmt.Errorf("%s: %d %s", path, res.StatusCode, raw)
		}
		var out map[string]any
		return out, json.Unmarshal(raw, &out)
	}

	const workers = 64
	var left atomic.Int64
	left.Store(int64(b.N))
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Load() > 0 {
				call, err := post("/v1/calls", map[string]any{"from": "+4930123456", "to": "+4940555000", "flow": "bench"})
				if err != nil {
					failed.Store(err)
					return
				}
				id := call["id"].(string)
				var body any = map[string]any{}
				for left.Add(-1) >= 0 {
					t0 := time.Now()
					next, err := post("/v1/calls/"+id+"/flow/next", body)
					lat[w] = append(lat[w], time.Since(t0))
					if err != nil {
						failed.Store(err)
						return
					}
					if next["done"] == true {
						break
					}
					body = map[string]any{"status": "done", "step": next["step"]}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "next/s")
}

// BenchmarkHTTPWrite measures the durable write of the HTTP benchmark
// (POST /v1/sessions/{id}, three variables, one new each time) from 64
// clients over loopback, in process, so that a CPU profile shows where a
// write's time goes: `go test -cpuprofile`, or CALLCTX_BENCH_CPUPROFILE=FILE
// for the timed part alone. The clients run under the pprof label
// side=client: `go tool pprof -tagignore side=client` leaves the server.
func BenchmarkHTTPWrite(b *testing.B) { benchHTTP(b, 64, writeRequest) }

// BenchmarkHTTPWrite10000 is BenchmarkHTTPWrite over 10,000 active calls,
// which the clients write in turn (client c the calls c, c+64, …): every
// write touches another session.
func BenchmarkHTTPWrite10000(b *testing.B) { benchHTTP(b, 10000, writeRequest) }

func writeRequest(id string, n int) []byte {
	body := `{"ivr.email":"jane@example.com","ivr.premium":true,"ivr.track_id":"TRK-` + strconv.Itoa(n) + `"}`
	return []byte("POST /v1/sessions/" + id + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// BenchmarkHTTPRead is BenchmarkHTTPWrite for GET /v1/sessions/{id}.
func BenchmarkHTTPRead(b *testing.B) {
	benchHTTP(b, 64, func(id string, _ int) []byte {
		return []byte("GET /v1/sessions/" + id + " HTTP/1.1\r\nHost: x\r\n\r\n")
	})
}

// benchHTTP has 64 clients send request(call, n) over keep-alive
// connections, to calls calls created first, client c to the calls c,
// c+64, … in turn.
func benchHTTP(b *testing.B, calls int, request func(id string, n int) []byte) {
	defer debug.SetGCPercent(debug.SetGCPercent(main.ServeGCPercent))
	cfg := main.DefaultConfig()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SIP.Listen = ""
	off := false
	cfg.HTTP.AccessLog = &off
	cfg.Data.Dir = b.TempDir()
	cfg.Flows.Dir = filepath.Join(b.TempDir(), "none")
	m := main.NewMain(cfg, nil)
	if err := m.Open(); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const clients = 64
	conns := make([]*rawConn, clients)
	ids := make([]string, calls)
	for i := range ids {
		ids[i] = createCall(b, m.HTTPAddr())
	}
	for i := range conns {
		conn, err := net.Dial("tcp", m.HTTPAddr())
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		conns[i] = &rawConn{c: conn, br: bufio.NewReader(conn)}
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	var failed atomic.Value
	if path := os.Getenv("CALLCTX_BENCH_CPUPROFILE"); path != "" {
		// The timed part only, without the calls created before it.
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	b.ResetTimer()
	cpu0 := processCPU()
	pprof.Do(context.Background(), pprof.Labels("side", "client"), func(context.Context) {
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; left.Add(-1) >= 0; n++ {
					if err := conns[c].do(request(ids[(c+clients*n)%len(ids)], n)); err != nil {
						failed.Store(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	// CPU time is steadier than wall time on a shared machine; it counts
	// the clients too, which cost the same whatever the server does.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

// createCall creates a call through the API of the server at addr.
func createCall(b *testing.B, addr string) string {
	res, err := http.Post("http://"+addr+"/v1/calls", "application/json",
		strings.NewReader(`{"from":"+4930123456","to":"+4940555000","variables":{"ivr.email":"jane@example.com","app.lang":"de"}}`))
	if err != nil {
		b.Fatal(err)
	}
	var c struct{ ID string }
	err = json.NewDecoder(res.Body).Decode(&c)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusCreated {
		b.Fatalf("create call: %s %v", res.Status, err)
	}
	return c.ID
}

// processCPU is the user+system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawConn is one keep-alive HTTP/1.1 connection that wants 200 OK with a
// Content-Length body.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func (r *rawConn) do(req []byte) error {
	if _, err := r.c.Write(req); err != nil {
		return err
	}
	res, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", res.Status)
	}
	return err
}
