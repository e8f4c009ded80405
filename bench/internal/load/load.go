// Package load is the closed-loop load generator of the HTTP benchmarks
// (bench/httpbench, bench/redisbench): clients that each send a request,
// wait for its answer and send the next, over raw HTTP/1.1 keep-alive
// connections so that the generator takes as little CPU from the servers
// as it can; and the helpers to start callctx and read what a server
// process spent.
package load

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options say how to run one measurement.
type Options struct {
	Clients  int
	Warmup   time.Duration // unmeasured time first
	Duration time.Duration // measured time
	// PIDs are the server processes whose CPU time the measured part
	// counts (see Result.CPU); none: CPU is not measured.
	PIDs []int
}

// Result is one measurement.
type Result struct {
	Name     string
	Requests int // completed without error in the measured part
	Errors   int
	FirstErr error
	Elapsed  time.Duration
	Lat      []time.Duration // sorted
	CPU      time.Duration   // the servers' CPU time (user+system) in the measured part; 0 if unknown
}

// Rate is the completed requests per second.
func (r *Result) Rate() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Pct returns the latency percentile p (0..1).
func (r *Result) Pct(p float64) time.Duration {
	if len(r.Lat) == 0 {
		return 0
	}
	return r.Lat[min(len(r.Lat)-1, int(float64(len(r.Lat))*p))]
}

// CPUPerRequest is the servers' CPU time per completed request; 0 if
// unknown.
func (r *Result) CPUPerRequest() time.Duration {
	if r.CPU <= 0 || r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

// Run runs fn(client, i) from opts.Clients goroutines, each calling it
// with i = 0, 1, 2, … as fast as it returns, for the warm-up and then the
// measured time, and returns what the measured part did.
func Run(name string, opts Options, fn func(client, i int) error) *Result {
	start := time.Now()
	from, stop := start.Add(opts.Warmup), start.Add(opts.Warmup+opts.Duration)
	lats := make([][]time.Duration, opts.Clients)
	errs := make([]int, opts.Clients)
	var (
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	for c := range opts.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				t0 := time.Now()
				if t0.After(stop) {
					return
				}
				err := fn(c, i)
				took := time.Since(t0)
				if t0.Before(from) {
					continue
				}
				if err != nil {
					errs[c]++
					once.Do(func() { firstErr = err })
					continue
				}
				lats[c] = append(lats[c], took)
			}
		}()
	}
	time.Sleep(time.Until(from))
	cpu0 := cpuOf(opts.PIDs)
	time.Sleep(time.Until(stop))
	cpu1 := cpuOf(opts.PIDs)
	wg.Wait()
	r := &Result{Name: name, Elapsed: opts.Duration, FirstErr: firstErr}
	if cpu0 > 0 && cpu1 > cpu0 {
		r.CPU = cpu1 - cpu0
	}
	for c := range lats {
		r.Lat = append(r.Lat, lats[c]...)
		r.Errors += errs[c]
	}
	slices.Sort(r.Lat)
	r.Requests = len(r.Lat)
	return r
}

func cpuOf(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		total += ProcessCPU(pid)
	}
	return total
}

// ProcessCPU reads a process's user+system CPU time from /proc (Linux; the
// kernel reports it in clock ticks, 100 per second on every common
// configuration). It returns 0 where /proc is not available.
func ProcessCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	var utime, stime int64
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	if _, err := fmt.Sscan(f[11]+" "+f[12], &utime, &stime); err != nil {
		return 0
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

// LoadAverage returns the machine's 1, 5 and 15 minute load averages as
// /proc/loadavg has them, "unknown" where it cannot be read.
func LoadAverage() string {
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

// Median returns the median of xs: the middle value, or the mean of the
// two middle values of an even count (of two rounds, their mean, not the
// higher one); 0 for none.
func Median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	switch {
	case n == 0:
		return 0
	case n%2 == 0:
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}

// FormatRatios formats ratios as "0.91, 1.02, 0.97".
func FormatRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, ", ")
}
