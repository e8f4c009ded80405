package main

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// commits is what callctx's /metrics says of its group commits so far:
// the commits (each one log append and sync), the writes in them, and the
// time they took.
type commits struct {
	n, writes, seconds float64
	at                 time.Time
	// storeWrites holds the cumulative buckets of
	// callctx_store_write_duration_seconds: each write's time from the
	// writer's queue to durability, by upper bound in seconds.
	storeWrites map[float64]float64
}

// readCommits reads the store's commit metrics from the server at addr.
func readCommits(addr string) (commits, error) {
	c := commits{at: time.Now(), storeWrites: map[float64]float64{}}
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return c, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return c, fmt.Errorf("metrics: %s", res.Status)
	}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if le, ok := strings.CutPrefix(name, `callctx_store_write_duration_seconds_bucket{le="`); ok {
			bound, err := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64)
			if err != nil {
				return c, fmt.Errorf("metrics: %s: %w", name, err)
			}
			if c.storeWrites[bound], err = strconv.ParseFloat(value, 64); err != nil {
				return c, fmt.Errorf("metrics: %s: %w", name, err)
			}
			continue
		}
		var into *float64
		switch name {
		case "callctx_store_batch_size_count":
			into = &c.n
		case "callctx_store_batch_size_sum":
			into = &c.writes
		case "callctx_store_commit_duration_seconds_sum":
			into = &c.seconds
		default:
			continue
		}
		if *into, err = strconv.ParseFloat(value, 64); err != nil {
			return c, fmt.Errorf("metrics: %s: %w", name, err)
		}
	}
	return c, sc.Err()
}

// until describes the commits between c and later.
func (c commits) until(later commits) string {
	n := later.n - c.n
	if n <= 0 {
		return "no commits"
	}
	return fmt.Sprintf("%.0f commits/s of %.1f writes each, %.0f µs per log append and sync; a write's time in the store p50 %s, p99 %s",
		n/later.at.Sub(c.at).Seconds(), (later.writes-c.writes)/n, (later.seconds-c.seconds)/n*1e6,
		c.storeQuantile(later, 0.5), c.storeQuantile(later, 0.99))
}

// storeQuantile estimates the q-quantile of the store write times between
// c and later from the histogram's buckets, interpolating within the
// bucket it falls in as Prometheus' histogram_quantile does.
func (c commits) storeQuantile(later commits, q float64) string {
	bounds := make([]float64, 0, len(later.storeWrites))
	for b := range later.storeWrites {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 {
		return "-"
	}
	total := later.storeWrites[bounds[len(bounds)-1]] - c.storeWrites[bounds[len(bounds)-1]] // +Inf
	if total <= 0 {
		return "-"
	}
	rank, lower, below := q*total, 0.0, 0.0
	for _, b := range bounds {
		n := later.storeWrites[b] - c.storeWrites[b]
		if n >= rank {
			if math.IsInf(b, 1) {
				return fmt.Sprintf("> %v", time.Duration(lower*float64(time.Second)))
			}
			at := lower + (b-lower)*(rank-below)/max(n-below, 1)
			return time.Duration(at * float64(time.Second)).Round(10 * time.Microsecond).String()
		}
		lower, below = b, n
	}
	return "-"
}
