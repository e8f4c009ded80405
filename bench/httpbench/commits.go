package main

import (
	"bufio"
	"fmt"
	"net/http"
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
}

// readCommits reads the store's commit metrics from the server at addr.
func readCommits(addr string) (commits, error) {
	c := commits{at: time.Now()}
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
	return fmt.Sprintf("%.0f commits/s of %.1f writes each, %.0f µs per log append and sync",
		n/later.at.Sub(c.at).Seconds(), (later.writes-c.writes)/n, (later.seconds-c.seconds)/n*1e6)
}
