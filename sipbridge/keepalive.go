package sipbridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The bridge sends SIP OPTIONS to every target it may send calls to and to the SBC, as ACS
// direct routing judges an SBC "Online": a target that answers (any status below 500) is up;
// one that answers 5xx/6xx, or not within the timeout, is down. The state shows in /metrics,
// /readyz and the console, and a transfer to a target known to be down fails at once (reason
// code target-down) instead of waiting for a timeout.

// DefaultKeepaliveTimeout is how long a probe waits for an answer when KeepaliveConfig says
// nothing.
const DefaultKeepaliveTimeout = 5 * time.Second

// KeepaliveConfig says how the bridge checks its targets. Zero values take defaults.
type KeepaliveConfig struct {
	// Interval is the time between two probes of a target; 0 turns the probes off (the
	// default: probing every target of every flow is for a deployment to ask for).
	Interval time.Duration
	// Timeout bounds the wait for an answer; DefaultKeepaliveTimeout when 0.
	Timeout time.Duration
	// Targets are watched besides those the bridge knows (Target, SBC, TransferTarget, the
	// flows' transfer_target): SIP URIs or host[:port], e.g. the targets of transfer nodes.
	Targets []string
}

// TargetState is what the bridge knows of one target it watches.
type TargetState struct {
	Target    string        // sip:host:port (;transport=… when not UDP)
	Up        bool          // answered the last probe
	Checked   bool          // probed at least once (before that the state is unknown)
	Since     time.Time     // when Up last changed (the first probe)
	CheckedAt time.Time     // the last probe
	Status    int           // the last answer's status; 0 when there was none
	RTT       time.Duration // the last answer's round trip
	Error     string        // why the last probe found it down
}

// targetDownError says a call was not placed because its target is known to be down.
type targetDownError struct{ st TargetState }

func (e targetDownError) Error() string {
	return fmt.Sprintf("%s is down: it has not answered OPTIONS since %s (%s)", e.st.Target, e.st.Since.UTC().Format(time.RFC3339), e.st.Error)
}

// watcher holds the states of the watched targets.
type watcher struct {
	mu     sync.Mutex
	states map[string]*TargetState // by key
}

// targetKey names a watched target: scheme, host and port, and the transport.
func targetKey(u sip.Uri) (key string, probe sip.Uri) {
	port := u.Port
	if port == 0 {
		port = 5060
		if u.Scheme == "sips" {
			port = 5061
		}
	}
	probe = sip.Uri{Scheme: u.Scheme, Host: strings.ToLower(u.Host), Port: port}
	key = probe.Scheme + ":" + probe.Host + ":" + strconv.Itoa(port)
	if tp, ok := u.UriParams.Get("transport"); ok && tp != "" && !strings.EqualFold(tp, "udp") {
		tp = strings.ToLower(tp)
		probe.UriParams = sip.HeaderParams{{K: "transport", V: tp}}
		key += ";transport=" + tp
	}
	return key, probe
}

// watchList returns the targets to watch, by key, from the configuration and the flows.
func (b *Bridge) watchList() map[string]sip.Uri {
	out := map[string]sip.Uri{}
	add := func(s string) {
		if s == "" || strings.Contains(s, "{") { // a target with placeholders is known per call only
			return
		}
		if !strings.Contains(s, ":") || !strings.HasPrefix(strings.ToLower(s), "sip") && !strings.HasPrefix(strings.ToLower(s), "tel:") {
			s = "sip:" + s // host[:port]
		}
		t, err := parseTarget(s, b.cfg.SBC, false)
		if err != nil {
			return
		}
		k, u := targetKey(t.uri)
		out[k] = u
	}
	if b.target != nil {
		k, u := targetKey(b.target.uri)
		out[k] = u
	}
	add(b.cfg.SBC)
	add(b.cfg.TransferTarget)
	for _, t := range b.cfg.Keepalive.Targets {
		add(t)
	}
	if b.cfg.Flows != nil {
		// The flows' default targets; a transfer node's target is watched when listed in
		// Targets (flows name many, some only reachable from elsewhere).
		for _, f := range b.cfg.Flows.Snapshot().Flows() {
			add(f.TransferTarget)
		}
	}
	return out
}

// keepalive probes the watched targets until the bridge stops.
func (b *Bridge) keepalive() {
	if b.cfg.Keepalive.Interval <= 0 {
		return
	}
	for {
		b.probeAll()
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(b.cfg.Keepalive.Interval):
		}
	}
}

// probeAll probes every watched target once, at most 8 at a time, and forgets targets no
// longer watched (a flow reloaded without them).
func (b *Bridge) probeAll() {
	list := b.watchList()
	b.watch.mu.Lock()
	for k := range b.watch.states {
		if _, ok := list[k]; !ok {
			delete(b.watch.states, k)
		}
	}
	b.watch.mu.Unlock()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for key, u := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b.probe(key, u)
		}()
	}
	wg.Wait()
}

// probe sends one OPTIONS and records the outcome.
func (b *Bridge) probe(key string, u sip.Uri) {
	req := sip.NewRequest(sip.OPTIONS, u)
	if tp, ok := u.UriParams.Get("transport"); ok {
		req.SetTransport(sip.NetworkToLower(tp))
	} else if u.Scheme == "sips" {
		req.SetTransport("tls")
	}
	req.AppendHeader(sip.NewHeader("User-Agent", b.cfg.UserAgent))
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.Keepalive.Timeout)
	start := time.Now()
	res, err := b.client.Do(ctx, req)
	cancel()
	if b.ctx.Err() != nil {
		return // stopping: not a verdict on the target
	}
	now := time.Now()
	st := TargetState{Target: u.String(), Checked: true, CheckedAt: now}
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		st.Error = fmt.Sprintf("no answer within %s", b.cfg.Keepalive.Timeout)
	case err != nil:
		st.Error = err.Error()
	default:
		st.Status, st.RTT = res.StatusCode, now.Sub(start)
		st.Up = res.StatusCode < 500
		if !st.Up {
			st.Error = fmt.Sprintf("answered %d %s", res.StatusCode, res.Reason)
		}
	}
	b.cfg.Observer.SIPRequest(false, string(sip.OPTIONS), st.Status)
	b.watch.mu.Lock()
	prev := b.watch.states[key]
	st.Since = now
	if prev != nil && prev.Up == st.Up {
		st.Since = prev.Since
	}
	b.watch.states[key] = &st
	b.watch.mu.Unlock()
	b.cfg.Observer.TargetState(st.Target, st.Up)
	if prev == nil || prev.Up != st.Up {
		if st.Up {
			b.log.Info("sip target up", "target", st.Target, "status", st.Status)
		} else {
			b.log.Warn("sip target down", "target", st.Target, "reason", st.Error)
		}
	}
}

// Targets returns the state of every watched target, sorted by target.
func (b *Bridge) Targets() []TargetState {
	b.watch.mu.Lock()
	out := make([]TargetState, 0, len(b.watch.states))
	for _, st := range b.watch.states {
		out = append(out, *st)
	}
	b.watch.mu.Unlock()
	slices.SortFunc(out, func(a, b TargetState) int { return strings.Compare(a.Target, b.Target) })
	return out
}

// targetDown reports whether t is a watched target whose last probe found it down.
func (b *Bridge) targetDown(t target) (TargetState, bool) {
	if t.tel != "" {
		return TargetState{}, false
	}
	key, _ := targetKey(t.uri)
	b.watch.mu.Lock()
	defer b.watch.mu.Unlock()
	st := b.watch.states[key]
	if st == nil || !st.Checked || st.Up {
		return TargetState{}, false
	}
	return *st, true
}
