package main

import (
	"fmt"
	"os"
	"time"

	"github.com/callctx/callctx/bench/internal/load"
)

// Aged databases, as -aging builds them.
const (
	longHistories   = 64    // sessions …
	longHistoryLen  = 5000  // … with this many versions each
	manySessions    = 10000 // active sessions …
	manySessionsLen = 20    // … with this many versions each
)

// runAging measures whether the write rate depends on the length of the
// sessions' histories or on the number of sessions: callctx on a fresh
// database (64 sessions) against callctx on one whose 64 sessions hold
// 5,000 versions each, and against one holding 10,000 active sessions of
// 20 versions each, which the clients write in turn (client c the
// sessions c, c+64, …). The servers run side by side and are measured in
// alternation. With -cpuprofile FILE, the first round's profile of the
// 10,000-session server goes to FILE and the fresh one's to FILE.fresh.
func runAging(cfg config) error {
	tmp, err := os.MkdirTemp("", "httpbench-aging-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	header(cfg)
	fresh, err := startCallctx(tmp, "fresh", cfg.clients)
	if err != nil {
		return err
	}
	defer fresh.stop()
	history, err := startCallctx(tmp, "history", longHistories)
	if err != nil {
		return err
	}
	defer history.stop()
	t0 := time.Now()
	if err := fill(history, longHistoryLen-1); err != nil {
		return err
	}
	fmt.Printf("filled %d sessions × %d versions in %v\n", longHistories, longHistoryLen, time.Since(t0).Round(time.Second))
	many, err := startCallctx(tmp, "sessions", manySessions)
	if err != nil {
		return err
	}
	defer many.stop()
	t0 = time.Now()
	if err := fill(many, manySessionsLen-1); err != nil {
		return err
	}
	fmt.Printf("filled %d sessions × %d versions in %v\n\n", manySessions, manySessionsLen, time.Since(t0).Round(time.Second))

	var results []*load.Result
	var histRatios, manyRatios []float64
	for i := 1; i <= max(1, cfg.rounds); i++ {
		profiling := i == 1 && cfg.profile != ""
		var freshProfiled, manyProfiled chan error
		if profiling {
			freshProfiled = profile(fresh.addr, "profile", cfg.profile+".fresh", cfg.warmup, cfg.duration)
		}
		f := measureWrites(cfg, fresh, cfg.clients, fmt.Sprintf("fresh, 64 sessions, round %d", i))
		h := measureWrites(cfg, history, cfg.clients, fmt.Sprintf("64 × %d versions, round %d", longHistoryLen, i))
		if profiling {
			manyProfiled = profile(many.addr, "profile", cfg.profile, cfg.warmup, cfg.duration)
		}
		m := measureWrites(cfg, many, cfg.clients, fmt.Sprintf("%d × %d versions, round %d", manySessions, manySessionsLen, i))
		if err := fetched(freshProfiled, manyProfiled); err != nil {
			return err
		}
		results = append(results, f, h, m)
		histRatios = append(histRatios, h.Rate()/f.Rate())
		manyRatios = append(manyRatios, m.Rate()/f.Rate())
	}
	printResults(results)
	fmt.Printf("\nload average at the end: %s\n", load.LoadAverage())
	fmt.Printf("64 sessions × %d versions / fresh = %.2f, the median of %s   (target ≥ 0.90)\n", longHistoryLen, load.Median(histRatios), load.FormatRatios(histRatios))
	fmt.Printf("%d sessions × %d versions / fresh = %.2f, the median of %s   (target ≥ 0.90)\n", manySessions, manySessionsLen, load.Median(manyRatios), load.FormatRatios(manyRatios))
	fmt.Printf("ratio to fresh: long histories %.2f×, many sessions %.2f×\n", load.Median(histRatios), load.Median(manyRatios))
	return nil
}

// fill writes versions more versions into every call of s, from 64 clients.
func fill(s *server, versions int) error {
	const clients = 64
	conns, err := load.Conns([]string{s.addr}, clients)
	if err != nil {
		return err
	}
	defer load.CloseAll(conns)
	errs := make(chan error, clients)
	for c := range clients {
		go func() {
			for i := 0; i < versions; i++ {
				for k := c; k < len(s.ids); k += clients {
					if err := conns[c].Do(load.WriteSession(s.ids[k], i+1)); err != nil {
						errs <- fmt.Errorf("fill %s: %w", s.name, err)
						return
					}
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range clients {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
