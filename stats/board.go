// Package stats keeps what a supervisor's wallboard and the console's call
// list show: the calls of this node that are active and where each stands
// in its flow, and, per minute over the last day, how many calls started and
// ended, how transfers went and how automations were delivered.
//
// It hears the same events as the metrics: the session feed's call.started
// and call.ended, and the reports of the flow engine and the SIP bridge
// (flow.Observer, sipbridge.Observer), which cmd hands to both. Everything
// is kept in memory; on a start the active calls and their flows' positions
// are read from the store, the counts start at zero.
package stats

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
)

// Config configures a Board.
type Config struct {
	Service *session.Service
	Logger  *slog.Logger
	// KeepEnded is how long an ended call stays on the list;
	// DefaultKeepEnded when 0.
	KeepEnded time.Duration
	// MaxEnded is how many ended calls the list holds at most: past it,
	// the call that ended first leaves before its KeepEnded is up.
	// DefaultMaxEnded when 0.
	MaxEnded int
	Now      func() time.Time
}

// DefaultKeepEnded is how long an ended call stays on the list by default.
const DefaultKeepEnded = 10 * time.Minute

// DefaultMaxEnded is how many ended calls the list holds at most by
// default: the whole of DefaultKeepEnded up to 1,000 calls a minute. A
// server taking more calls than that would otherwise hold every call of
// the last ten minutes in memory (about 500 bytes each: 2.4 GB at 8,000
// calls a second) and walk all of them for every change it streams.
const DefaultMaxEnded = 10000

// Board is the live state of this node's calls and the counts of the last
// day. Its methods are safe for concurrent use and quick: the flow engine
// and the SIP bridge report to it on their hot paths.
type Board struct {
	cfg   Config
	log   *slog.Logger
	flows *flow.Engine // nil without flows

	mu      sync.Mutex
	calls   map[string]*entry
	ended   []*entry      // the list's ended calls in the order they ended, and some since dropped
	nEnded  int           // ended calls on the list
	seq     uint64        // bumped by every change of the list
	removed []removal     // calls dropped from the list, in seq order
	floor   uint64        // changes at or before it may be lost: a reader behind it starts over
	changed chan struct{} // closed at the next change
	win     window
	pending int // automations waiting in the outbox
	// targets holds the SIP targets' last known state: a change wakes the
	// wallboards (the states themselves are the SIP bridge's).
	targets map[string]bool

	orderMu sync.Mutex
	orderOf *flow.Snapshot        // the snapshot order was taken from
	order   map[string][]NodeLoad // flow → its nodes in the order calls meet them

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// entry is one call on the list.
type entry struct {
	Call
	known bool      // call.started (or the store) has told what the call is
	made  time.Time // when the entry was made
}

type removal struct {
	id  string
	seq uint64
}

// Call is a call as the list shows it: the call, and where its flow stands.
type Call struct {
	// *session.Call is shared with the store and the feed, which never
	// change a call they handed out: the board holds no copy of its own
	// (about 200 bytes per active call) and changes one only by
	// replacing it.
	*session.Call
	// Node is the node its flow stands at; "" before the flow started and
	// once it ended (FlowDone).
	Node     string `json:"node,omitempty"`
	FlowDone bool   `json:"flowDone,omitempty"`
	// Seq is the list's change counter when the call last changed.
	Seq uint64 `json:"seq"`
}

// New returns a board; Open fills it and starts listening.
func New(cfg Config) *Board {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KeepEnded <= 0 {
		cfg.KeepEnded = DefaultKeepEnded
	}
	if cfg.MaxEnded <= 0 {
		cfg.MaxEnded = DefaultMaxEnded
	}
	return &Board{cfg: cfg, log: cfg.Logger, calls: map[string]*entry{}, changed: make(chan struct{})}
}

// Open reads the active calls and where their flows stand, and follows
// the session feed from then on. flows (nil without flows) tells where the
// flows of the calls stood before the start, and holds the flows whose
// nodes Report counts calls at.
func (b *Board) Open(ctx context.Context, flows *flow.Engine) error {
	b.flows = flows
	sub := b.cfg.Service.SubscribeCalls() // before reading: no call falls in between
	if _, err := b.load(ctx); err != nil {
		sub.Close()
		return err
	}
	ctx, b.stop = context.WithCancel(context.Background())
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.follow(ctx, sub)
	}()
	return nil
}

// Close stops following the feed.
func (b *Board) Close() {
	if b.stop != nil {
		b.stop()
	}
	b.wg.Wait()
}

// load puts the active calls of the store on the list, and returns their
// IDs.
func (b *Board) load(ctx context.Context) (map[string]bool, error) {
	opts := session.ListOptions{State: session.FilterActive, Limit: session.MaxListLimit}
	seen := map[string]bool{}
	for {
		page, err := b.cfg.Service.ListCalls(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, c := range page.Items {
			seen[c.ID] = true
			node, done := "", false
			if c.Flow != "" && b.flows != nil {
				run, err := b.flows.FlowRun(ctx, c.ID)
				switch {
				case err == nil:
					node, done = run.Node, run.Done
				case session.ErrorCode(err) != session.CodeNotFound:
					return nil, err
				}
			}
			b.mu.Lock()
			e := b.entry(c.ID)
			if !e.known {
				b.setCall(e, c)
				if e.Node == "" && !e.FlowDone {
					e.Node, e.FlowDone = node, done
				}
				b.touch(e)
			}
			b.mu.Unlock()
		}
		if page.Next == "" {
			return seen, nil
		}
		opts.Cursor = page.Next
	}
}

// reload reads the active calls again after the feed dropped the board:
// calls that started meanwhile are added, and those listed as active that
// are no longer are read, to list how they ended (or dropped if purged).
func (b *Board) reload(ctx context.Context) error {
	seen, err := b.load(ctx)
	if err != nil {
		return err
	}
	var gone []string
	b.mu.Lock()
	for id, e := range b.calls {
		if e.known && e.State == session.StateActive && !seen[id] {
			gone = append(gone, id)
		}
	}
	b.mu.Unlock()
	for _, id := range gone {
		c, err := b.cfg.Service.Call(ctx, id)
		if err != nil && session.ErrorCode(err) != session.CodeNotFound {
			return err
		}
		b.mu.Lock()
		if e := b.calls[id]; e != nil {
			if c != nil {
				b.setCall(e, c)
				e.Node = ""
				b.touch(e)
			} else {
				b.drop(id)
			}
		}
		b.mu.Unlock()
	}
	return nil
}

// follow takes the feed's call events into the board until ctx ends.
func (b *Board) follow(ctx context.Context, sub *session.Subscription) {
	defer func() { sub.Close() }()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			b.sweep()
		case ev, ok := <-sub.Events():
			if !ok {
				// Dropped for lagging: the calls that started or ended
				// meanwhile are read again from the store.
				b.log.Warn("the call list fell behind the session feed; reading the active calls again")
				sub = b.cfg.Service.SubscribeCalls()
				if err := b.reload(ctx); err != nil && !errors.Is(err, context.Canceled) {
					b.log.Error("read the active calls", "error", err)
				}
				continue
			}
			b.event(ev)
		}
	}
}

// event takes one call event into the board.
func (b *Board) event(ev session.Event) {
	if ev.Call == nil || ev.Type != session.EventCallStarted && ev.Type != session.EventCallEnded {
		return
	}
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entry(ev.CallID)
	// The counts are this node's; another node's call.ended (which the
	// feed passes on) still ends the call on the list.
	switch ev.Type {
	case session.EventCallStarted:
		if !ev.Remote {
			b.win.at(now).callsStarted++
		}
		b.setCall(e, ev.Call)
	case session.EventCallEnded:
		if !ev.Remote {
			b.win.at(now).callsEnded++
		}
		b.setCall(e, ev.Call)
		e.Node = ""
	}
	b.touch(e)
}

// entry returns the list's entry of a call, made empty when there is none.
func (b *Board) entry(id string) *entry {
	e := b.calls[id]
	if e == nil {
		e = &entry{Call: Call{Call: &session.Call{ID: id}}, made: b.cfg.Now()}
		b.calls[id] = e
	}
	return e
}

// setCall sets what the list shows of the call itself, and keeps count of
// the ended calls; the caller holds b.mu.
func (b *Board) setCall(e *entry, c *session.Call) {
	was := e.isEnded()
	e.known = true
	e.Call.Call = c
	switch now := e.isEnded(); {
	case now && !was:
		b.nEnded++
		b.ended = append(b.ended, e)
		b.trimEnded()
	case was && !now: // its entry in ended stays, and is skipped
		b.nEnded--
	}
}

func (e *entry) isEnded() bool { return e.known && e.State == session.StateEnded }

// trimEnded drops the calls that ended first while there are more than
// MaxEnded; the caller holds b.mu.
func (b *Board) trimEnded() {
	for b.nEnded > b.cfg.MaxEnded && len(b.ended) > 0 {
		e := b.popEnded()
		if b.calls[e.ID] == e && e.isEnded() {
			b.drop(e.ID)
		}
	}
}

// popEnded takes the first of ended.
func (b *Board) popEnded() *entry {
	e := b.ended[0]
	b.ended[0] = nil
	b.ended = b.ended[1:]
	return e
}

// touch marks a change of e; the caller holds b.mu.
func (b *Board) touch(e *entry) {
	b.seq++
	e.Seq = b.seq
	b.notify()
}

// notify wakes those waiting on Changed; the caller holds b.mu.
func (b *Board) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// sweep drops the calls that ended more than KeepEnded ago, and those the
// feed never told about within a minute (a flow moved here for a call that
// another node sharing the store started).
func (b *Board) sweep() {
	now := b.cfg.Now()
	cut := now.Add(-b.cfg.KeepEnded)
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, e := range b.calls {
		if !e.EndedAt.IsZero() && e.EndedAt.Before(cut) || !e.known && now.Sub(e.made) > time.Minute {
			b.drop(id)
		}
	}
	// The calls it dropped ended first, so their places lead ended: take
	// them out, or ended would keep every call of the day at a low rate.
	for len(b.ended) > 0 && (b.calls[b.ended[0].ID] != b.ended[0] || !b.ended[0].isEnded()) {
		b.popEnded()
	}
	b.notify()
}

// The board hears the flow engine, beside the metrics.
var _ flow.Observer = (*Board)(nil)

// TriggerEvaluated is part of flow.Observer: the board counts no
// evaluations.
func (b *Board) TriggerEvaluated(string, bool) {}

// keepRemovals is how many removals from the list are kept at least, for
// readers a little behind; one further behind starts over.
const keepRemovals = 10000

// drop removes a call from the list; the caller holds b.mu.
func (b *Board) drop(id string) {
	if e := b.calls[id]; e != nil && e.isEnded() {
		b.nEnded--
	}
	delete(b.calls, id)
	b.seq++
	b.removed = append(b.removed, removal{id: id, seq: b.seq})
	if over := len(b.removed) - keepRemovals; over >= keepRemovals {
		b.floor = b.removed[over-1].seq
		b.removed = append(b.removed[:0], b.removed[over:]...)
	}
	b.notify()
}

// CallMoved records where a call's flow stands: at node, or ended when
// node is "" (flow.Observer).
func (b *Board) CallMoved(callID, flowName, node string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entry(callID)
	if e.State == session.StateEnded {
		return
	}
	if e.Flow != flowName {
		c := *e.Call.Call
		c.Flow = flowName
		e.Call.Call = &c
	}
	e.Node, e.FlowDone = node, node == ""
	b.touch(e)
}

// Transfer counts a finished transfer: outcome is answered, accepted or
// the reason it failed (sipbridge.Observer).
func (b *Board) Transfer(method, outcome string) {
	b.count(func(k *bucket) {
		if k.transfers == nil {
			k.transfers = map[string]int{}
		}
		k.transfers[outcome]++
	})
}

// AutomationSent counts a delivered automation (flow.Observer).
func (b *Board) AutomationSent(string) { b.count(func(k *bucket) { k.delivered++ }) }

// AutomationFailed counts a failed attempt; final: no retry follows
// (flow.Observer).
func (b *Board) AutomationFailed(_ string, final bool) {
	b.count(func(k *bucket) {
		if final {
			k.gaveUp++
		} else {
			k.failed++
		}
	})
}

// TargetState hears an OPTIONS probe of a SIP target (sipbridge.Observer):
// when the target went up or down, the wallboards are told.
func (b *Board) TargetState(target string, up bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if was, ok := b.targets[target]; ok && was == up {
		return
	}
	if b.targets == nil {
		b.targets = map[string]bool{}
	}
	b.targets[target] = up
	b.notify()
}

// AutomationsPending records how many automations wait (flow.Observer).
func (b *Board) AutomationsPending(n int) {
	b.mu.Lock()
	b.pending = n
	b.notify()
	b.mu.Unlock()
}

// count changes this minute's bucket.
func (b *Board) count(f func(*bucket)) {
	now := b.cfg.Now()
	b.mu.Lock()
	f(b.win.at(now))
	b.notify()
	b.mu.Unlock()
}

// Changed returns a channel closed at the next change of the board.
func (b *Board) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// Changes returns the calls of the list that changed after since, the IDs
// of those dropped from it, and the sequence number they bring a reader
// to. reset says the reader is too far behind for a difference: calls then
// holds the whole list, and the reader drops what it had.
func (b *Board) Changes(since uint64) (calls []Call, removed []string, seq uint64, reset bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	reset = since < b.floor || since > b.seq
	for _, e := range b.calls {
		if e.known && (reset || e.Seq > since) {
			calls = append(calls, e.Call)
		}
	}
	if !reset {
		for _, r := range b.removed {
			if r.seq > since {
				removed = append(removed, r.id)
			}
		}
	}
	return calls, removed, b.seq, reset
}
