package stats

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
)

// Report is what the wallboard shows: the calls now, and per minute over a
// window what happened. Every series holds one count per minute of
// Minutes, oldest first; the last is the minute under way.
type Report struct {
	At            time.Time `json:"at"`
	WindowSeconds int       `json:"windowSeconds"`
	// Minutes are the starts of the window's minutes, in Unix seconds.
	Minutes     []int64          `json:"minutes"`
	ActiveCalls int              `json:"activeCalls"`
	Calls       CallSeries       `json:"calls"`
	Transfers   TransferSeries   `json:"transfers"`
	Automations AutomationSeries `json:"automations"`
	// Flows says how many active calls stand at each node of each flow.
	Flows []FlowLoad `json:"flows"`
}

// CallSeries counts calls per minute.
type CallSeries struct {
	Started Series `json:"started"`
	Ended   Series `json:"ended"`
}

// TransferSeries counts finished transfers per minute.
type TransferSeries struct {
	// Answered counts those the target answered (or, without waiting for
	// the outcome, whose REFER was accepted).
	Answered Series `json:"answered"`
	// Failed counts those that failed, and FailedBy splits them by reason
	// code (no-answer, busy, declined, error, …).
	Failed   Series            `json:"failed"`
	FailedBy map[string]Series `json:"failedBy"`
	// Totals counts each outcome over the window.
	Totals map[string]int `json:"totals"`
}

// AutomationSeries counts automation deliveries per minute.
type AutomationSeries struct {
	Delivered Series `json:"delivered"`
	Failed    Series `json:"failed"` // attempts that failed and are retried
	GaveUp    Series `json:"gaveUp"` // deliveries that failed for good
	Pending   int    `json:"pending"`
}

// FlowLoad is how many active calls stand in a flow, node by node.
type FlowLoad struct {
	Flow  string `json:"flow"`
	Calls int    `json:"calls"`
	// Nodes lists every node of the flow in force, as a call meets them
	// from the start, with the calls at each; a node of an older version
	// that calls still stand at comes last.
	Nodes []NodeLoad `json:"nodes"`
	// Done counts active calls whose flow has ended (a transfer went
	// through, the call has not hung up yet); Starting those whose flow
	// has not recorded a node yet.
	Done     int `json:"done"`
	Starting int `json:"starting"`
}

// NodeLoad is the calls at one node.
type NodeLoad struct {
	Node  string        `json:"node"`
	Type  flow.NodeType `json:"type,omitempty"`
	Calls int           `json:"calls"`
}

// ParseWindow reads a window such as 1h or 15m: whole minutes, from one
// minute to MaxWindow.
func ParseWindow(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute || d > MaxWindow || d%time.Minute != 0 {
		return 0, fmt.Errorf("window must be whole minutes from 1m to %s, such as 15m or 1h", "24h")
	}
	return d, nil
}

// Report returns the board over the last window (whole minutes, at most
// MaxWindow).
func (b *Board) Report(window time.Duration) *Report {
	n := int(window / time.Minute)
	n = max(1, min(n, minutes))
	now := b.cfg.Now()
	r := &Report{At: now.UTC(), WindowSeconds: n * 60}
	b.mu.Lock()
	times, rows := b.win.series(now, n)
	r.Minutes = times
	r.Calls = CallSeries{
		Started: column(rows, func(k *bucket) int { return k.callsStarted }),
		Ended:   column(rows, func(k *bucket) int { return k.callsEnded }),
	}
	r.Transfers = TransferSeries{
		Answered: column(rows, func(k *bucket) int {
			return k.transfers[string(session.TransferAnswered)] + k.transfers[string(session.TransferAccepted)]
		}),
		FailedBy: map[string]Series{},
		Totals:   map[string]int{},
	}
	for _, o := range outcomes(rows) {
		s := column(rows, func(k *bucket) int { return k.transfers[o] })
		for _, v := range s {
			r.Transfers.Totals[o] += v
		}
		if o != string(session.TransferAnswered) && o != string(session.TransferAccepted) {
			r.Transfers.FailedBy[o] = s
		}
	}
	r.Transfers.Failed = column(rows, func(k *bucket) int {
		n := 0
		for o, c := range k.transfers {
			if o != string(session.TransferAnswered) && o != string(session.TransferAccepted) {
				n += c
			}
		}
		return n
	})
	r.Automations = AutomationSeries{
		Delivered: column(rows, func(k *bucket) int { return k.delivered }),
		Failed:    column(rows, func(k *bucket) int { return k.failed }),
		GaveUp:    column(rows, func(k *bucket) int { return k.gaveUp }),
		Pending:   b.pending,
	}
	at := map[string]map[string]int{} // flow → node → calls
	done := map[string]int{}
	for _, e := range b.calls {
		if !e.known || e.State != session.StateActive {
			continue
		}
		r.ActiveCalls++
		if e.Flow == "" {
			continue
		}
		if at[e.Flow] == nil {
			at[e.Flow] = map[string]int{}
		}
		switch {
		case e.FlowDone:
			done[e.Flow]++
		default:
			at[e.Flow][e.Node]++ // "" : the flow has not recorded a node yet
		}
	}
	b.mu.Unlock()
	r.Flows = b.loads(at, done)
	return r
}

// nodeOrder returns a flow's nodes in the order calls meet them, kept per
// snapshot: a report is asked for every second by every wallboard.
func (b *Board) nodeOrder(snap *flow.Snapshot, f *flow.Flow) []NodeLoad {
	b.orderMu.Lock()
	defer b.orderMu.Unlock()
	if b.orderOf != snap {
		b.orderOf, b.order = snap, map[string][]NodeLoad{}
	}
	nodes, ok := b.order[f.Name]
	if !ok {
		for _, n := range f.Graph().Nodes {
			nodes = append(nodes, NodeLoad{Node: n.Name, Type: n.Type})
		}
		b.order[f.Name] = nodes
	}
	return nodes
}

// loads lays the calls per node out along each flow of the snapshot in
// force: every node, in the order calls meet them.
func (b *Board) loads(at map[string]map[string]int, done map[string]int) []FlowLoad {
	snap := flow.Empty()
	if b.flows != nil {
		snap = b.flows.Snapshot()
	}
	out := []FlowLoad{}
	seen := map[string]bool{}
	add := func(name string, f *flow.Flow) {
		seen[name] = true
		counts := at[name]
		l := FlowLoad{Flow: name, Nodes: []NodeLoad{}, Done: done[name], Starting: counts[""]}
		listed := map[string]bool{"": true}
		if f != nil {
			for _, n := range b.nodeOrder(snap, f) {
				listed[n.Node] = true
				n.Calls = counts[n.Node]
				l.Nodes = append(l.Nodes, n)
			}
		}
		for _, node := range slices.Sorted(maps.Keys(counts)) {
			if !listed[node] {
				l.Nodes = append(l.Nodes, NodeLoad{Node: node, Calls: counts[node]})
			}
		}
		for _, c := range counts {
			l.Calls += c
		}
		l.Calls += l.Done
		out = append(out, l)
	}
	for _, f := range snap.Flows() {
		add(f.Name, f)
	}
	var others []string
	for name := range at {
		others = append(others, name)
	}
	for name := range done {
		others = append(others, name)
	}
	slices.Sort(others)
	for _, name := range slices.Compact(others) {
		if !seen[name] {
			add(name, nil)
		}
	}
	return out
}
