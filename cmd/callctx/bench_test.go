package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
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
