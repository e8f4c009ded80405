package flow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/triggers"
	"github.com/google/uuid"
)

// Config configures an Engine. Zero values take the defaults.
type Config struct {
	Service  *session.Service
	Store    session.Store // the store under Service: flow runs and the outbox
	Snapshot *Snapshot     // the flows to start with; Empty() when nil
	Logger   *slog.Logger

	// Client sends automation requests; one that does not follow
	// redirects is built when nil.
	Client *http.Client
	// Workers is how many automation requests are in flight at most.
	Workers int
	// Defaults of automations that do not set their own.
	Timeout    time.Duration // per attempt
	Attempts   int           // in all, the first included
	Backoff    time.Duration // before the first retry; doubles, with jitter
	MaxBackoff time.Duration
	// UserAgent of automation requests.
	UserAgent string
	// Rescan is how often the engine reads the pending outbox of a store
	// that several callctx nodes share (a session.SharedStore), to take
	// over the automations of nodes that died: half the store's outbox
	// lease when 0. On such a store a call's flow may also advance on any
	// node, so its run is read from the store for every request instead
	// of kept in memory.
	Rescan time.Duration

	Now   func() time.Time
	NewID func() string

	// Observer hears of trigger evaluations and automation deliveries, for
	// metrics; nothing is reported when nil.
	Observer Observer
}

// Defaults of Config.
const (
	DefaultWorkers    = 16
	DefaultTimeout    = 10 * time.Second
	DefaultAttempts   = 5
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = time.Minute
	DefaultRescan     = 5 * time.Second // on a shared store without an outbox lease
)

// Engine runs the flows of calls and delivers their automations. It is safe
// for concurrent use.
type Engine struct {
	svc    *session.Service
	store  session.Store
	log    *slog.Logger
	now    func() time.Time
	newID  func() string
	cfg    Config
	client *http.Client
	// shared: several nodes share the store (see Config.Rescan).
	shared bool

	snap     atomic.Pointer[Snapshot]
	mu       sync.Mutex
	versions map[string]*Snapshot // every snapshot loaded, for runs that started on one
	runs     map[string]*callRun  // runs of active calls held in memory
	// warned holds the call ID + automation of each automation the store
	// stopped queuing on a call's events (session.MaxEventFirings), so
	// that it is logged once per call.
	warned map[string]bool

	outbox *outbox
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// callRun serialises the requests of one call.
type callRun struct {
	mu   sync.Mutex
	run  *Run
	snap *Snapshot
}

// NewEngine returns an engine; Open starts its background work.
func NewEngine(cfg Config) *Engine {
	if cfg.Snapshot == nil {
		cfg.Snapshot = Empty()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "callctx"
	}
	shared, _ := cfg.Store.(session.SharedStore)
	if cfg.Rescan <= 0 {
		cfg.Rescan = DefaultRescan
		if shared != nil && shared.OutboxLease() > 0 {
			cfg.Rescan = shared.OutboxLease() / 2
		}
	}
	client := cfg.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Workers
		client = &http.Client{
			Transport: tr,
			// A redirect is an answer, not a delivery: the receiver moved.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	e := &Engine{
		svc: cfg.Service, store: cfg.Store, log: cfg.Logger, now: cfg.Now, newID: cfg.NewID,
		cfg: cfg, client: client, shared: shared != nil,
		versions: map[string]*Snapshot{},
		runs:     map[string]*callRun{},
		warned:   map[string]bool{},
	}
	e.snap.Store(cfg.Snapshot)
	e.versions[cfg.Snapshot.Version] = cfg.Snapshot
	e.outbox = newOutbox(e)
	return e
}

// Open loads the pending outbox (what a previous process queued and did
// not deliver) and starts delivering, and starts firing automations on call
// events.
func (e *Engine) Open() error {
	pending, err := e.store.PendingOutbox(context.Background())
	if err != nil {
		return fmt.Errorf("load pending automations: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	sub := e.svc.SubscribeCalls()
	e.svc.SetAutomations(engineAutomations{e})
	e.outbox.add(pending...)
	if len(pending) > 0 {
		e.log.Info("resuming automations queued before the restart", "pending", len(pending))
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.outbox.run(ctx)
	}()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.events(ctx, sub)
	}()
	if e.shared {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.rescan(ctx)
		}()
	}
	return nil
}

// rescan asks a shared store for the pending automations this node may
// deliver now, every Rescan: those queued on nodes that died come back
// claimed by this one. Entries the outbox knows are ignored.
func (e *Engine) rescan(ctx context.Context) {
	t := time.NewTicker(e.cfg.Rescan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pending, err := e.store.PendingOutbox(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("look for automations to take over", "error", err)
			}
			continue
		}
		e.outbox.add(pending...)
	}
}

// Close stops delivering. Requests in flight are abandoned, not recorded as
// failed: they stay queued and go out again after a restart, with the same
// Idempotency-Key.
func (e *Engine) Close() {
	if e.stop != nil {
		e.stop()
	}
	e.wg.Wait()
}

// Snapshot returns the flows in force.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// Reload puts a new snapshot in force. Calls whose flow has started keep
// the snapshot they started with.
func (e *Engine) Reload(s *Snapshot) {
	e.mu.Lock()
	e.versions[s.Version] = s
	e.mu.Unlock()
	e.snap.Store(s)
}

// StartCall starts the flow of a call that was just created: the automation
// nodes at the flow's start queue their requests at once. A call without a
// flow is left alone. CodeInvalid when the flow does not exist.
func (e *Engine) StartCall(ctx context.Context, c *session.Call) error {
	if c.Flow == "" {
		return nil
	}
	cr, err := e.callRun(ctx, c)
	if err != nil {
		return err
	}
	defer cr.mu.Unlock()
	e.release(cr)
	return nil
}

// release drops a run that another node may advance next: on a shared
// store the next request reads it again.
func (e *Engine) release(cr *callRun) {
	if e.shared {
		cr.run, cr.snap = nil, nil
	}
}

// Next applies the outcome of the last action to a call's flow and returns
// the run, whose Action is the next action (nil once the flow has ended).
// CodeNotFound for an unknown call or a call without a flow, CodeConflict
// for an ended call or an outcome nothing awaits, CodeInvalid for an
// outcome that does not fit.
func (e *Engine) Next(ctx context.Context, callID string, o *Outcome) (*Run, error) {
	c, err := e.svc.Call(ctx, callID)
	if err != nil {
		return nil, err
	}
	if c.Flow == "" {
		return nil, session.Errorf(session.CodeNotFound, "the call %s has no flow", callID)
	}
	if c.State == session.StateEnded {
		return nil, session.Errorf(session.CodeConflict, "the call %s has ended", callID)
	}
	cr, err := e.callRun(ctx, c)
	if err != nil {
		return nil, err
	}
	defer cr.mu.Unlock()
	flow, _ := cr.snap.Flow(cr.run.Flow)
	h := &engineHost{e: e, callID: callID}
	r := &stepper{h: h, flow: flow}
	transfer := flow != nil && cr.run.Presented && flow.Nodes[cr.run.Node] != nil && flow.Nodes[cr.run.Node].Type == NodeTransfer
	if err := r.advance(ctx, cr.run, o); err != nil {
		// The stored run is the truth; forget what this attempt changed.
		cr.run, cr.snap = nil, nil
		return nil, err
	}
	if transfer && !o.empty() && !o.Announced && !h.fired {
		// The outcome's write fired the transfer.status automations with it,
		// unless it changed nothing (the same outcome again) or the store
		// could not queue them: then they are fired now.
		var ev *session.Event
		if h.written != nil { // the outcome's write: its session is the event's
			ev = &session.Event{CallID: callID, Variables: h.written.Variables}
		}
		e.fire(ctx, EventTransferStatus, c, ev)
	}
	out := cloneRun(cr.run)
	if cr.run.Done {
		// An ended flow needs no memory; asking again reads the store.
		cr.run, cr.snap = nil, nil
		e.forget(callID)
	}
	e.release(cr)
	return out, nil
}

// FlowRun returns the run of a call's flow: where it stands and the path it
// took (the Store's FlowRun, decoded). CodeNotFound for an unknown call or
// one whose flow has not started.
func (e *Engine) FlowRun(ctx context.Context, callID string) (*Run, error) {
	raw, err := e.store.FlowRun(ctx, callID)
	if err != nil {
		if session.ErrorCode(err) == session.CodeNotFound {
			if _, cerr := e.svc.Call(ctx, callID); cerr != nil {
				return nil, cerr
			}
			return nil, session.Errorf(session.CodeNotFound, "the call %s has no flow run", callID)
		}
		return nil, err
	}
	return decodeRun(callID, raw)
}

// decodeRun decodes a stored flow run.
func decodeRun(callID string, raw []byte) (*Run, error) {
	run := new(Run)
	if err := json.Unmarshal(raw, run); err != nil {
		return nil, session.Internal(fmt.Errorf("decode flow run of %s: %w", callID, err))
	}
	return run, nil
}

// callRun returns the locked run of a call, loading it from the store or
// starting it. The caller unlocks it.
func (e *Engine) callRun(ctx context.Context, c *session.Call) (*callRun, error) {
	e.mu.Lock()
	cr := e.runs[c.ID]
	if cr == nil {
		cr = &callRun{}
		e.runs[c.ID] = cr
	}
	e.mu.Unlock()
	cr.mu.Lock()
	if cr.run != nil {
		return cr, nil
	}
	err := e.loadRun(ctx, c, cr)
	if session.ErrorCode(err) == session.CodeNotFound {
		err = e.newRun(ctx, c, cr)
	}
	if err != nil {
		cr.mu.Unlock()
		return nil, err
	}
	return cr, nil
}

func (e *Engine) loadRun(ctx context.Context, c *session.Call, cr *callRun) error {
	raw, err := e.store.FlowRun(ctx, c.ID)
	if err != nil {
		return err
	}
	run, err := decodeRun(c.ID, raw)
	if err != nil {
		return err
	}
	e.mu.Lock()
	snap := e.versions[run.Version]
	e.mu.Unlock()
	if snap == nil {
		snap = e.Snapshot()
		e.log.Warn("the flow version a call started with is gone; it continues with the current one",
			"call_id", c.ID, "flow", run.Flow, "started_version", run.Version, "version", snap.Version)
	}
	if _, ok := snap.Flow(run.Flow); !ok && !run.Done {
		return session.Errorf(session.CodeConflict, "the flow %s of call %s is no longer defined", run.Flow, c.ID)
	}
	cr.run, cr.snap = run, snap
	return nil
}

func (e *Engine) newRun(ctx context.Context, c *session.Call, cr *callRun) error {
	snap := e.Snapshot()
	flow, ok := snap.Flow(c.Flow)
	if !ok {
		return &session.Error{Code: session.CodeInvalid, Message: fmt.Sprintf("there is no flow %s", c.Flow),
			Fields: []session.FieldError{{Name: "flow", Message: "no flow of that name is loaded"}}}
	}
	now := e.now().UTC()
	run := &Run{CallID: c.ID, Flow: flow.Name, Version: snap.Version, Node: flow.Start, StartedAt: now, UpdatedAt: now, Path: []Step{}}
	r := &stepper{h: &engineHost{e: e, callID: c.ID}, flow: flow}
	if err := r.start(ctx, run); err != nil {
		return err
	}
	cr.run, cr.snap = run, snap
	return nil
}

// forget drops the in-memory run of a call; the next request loads it from
// the store.
func (e *Engine) forget(callID string) {
	e.mu.Lock()
	delete(e.runs, callID)
	e.mu.Unlock()
}

func cloneRun(r *Run) *Run {
	c := *r
	c.Path = append([]Step(nil), r.Path...)
	return &c
}

// engineHost is the stepper's world for a real call.
type engineHost struct {
	e      *Engine
	callID string
	queued []*session.OutboxEntry
	// written is the session as the flow's own last write left it: what a
	// read straight after that write would return, without the read.
	written *session.Session
	// fired: the last write asked to fire further events (a transfer
	// outcome) queued their automations with it.
	fired bool
}

func (h *engineHost) now() time.Time { return h.e.now() }

func (h *engineHost) vars(ctx context.Context) (triggers.Map, error) {
	if h.written != nil {
		return DecodeVars(h.written.Variables), nil
	}
	return h.e.sessionVars(ctx, h.callID)
}

// sessionVars reads a call's session as the variables triggers see.
func (e *Engine) sessionVars(ctx context.Context, callID string) (triggers.Map, error) {
	s, err := e.svc.Session(ctx, callID)
	if err != nil {
		return nil, err
	}
	return DecodeVars(s.Variables), nil
}

func (h *engineHost) write(ctx context.Context, run *Run, vars map[string]json.RawMessage, fires ...session.EventType) error {
	s, changed, err := h.e.svc.Merge(ctx, h.callID, vars, session.WriteOptions{Actor: "flow:" + run.Flow, Origin: session.OriginClient, Fires: fires})
	if err == nil {
		h.written = s
		if len(fires) > 0 {
			h.fired = changed
		}
	}
	return err
}

func (h *engineHost) queue(ctx context.Context, run *Run, a *Automation, vars triggers.Map) (string, error) {
	entry := h.e.newEntry(h.callID, a, vars, "node:"+run.Flow+"/"+run.Node)
	h.queued = append(h.queued, entry)
	return entry.ID, nil
}

func (h *engineHost) checkpoint(ctx context.Context, run *Run) error {
	state, err := json.Marshal(run)
	if err != nil {
		return session.Internal(fmt.Errorf("encode flow run: %w", err))
	}
	// The request may have been abandoned by its client; the step it made
	// must still be stored.
	if err := h.e.store.SaveFlowRun(context.WithoutCancel(ctx), h.callID, state, h.queued); err != nil {
		return err
	}
	h.e.outbox.add(h.queued...)
	h.queued = nil
	h.e.cfg.Observer.CallMoved(h.callID, run.Flow, run.Node)
	return nil
}

func (h *engineHost) evaluated(trigger string, fired bool) {
	h.e.cfg.Observer.TriggerEvaluated(trigger, fired)
}

func (h *engineHost) wait(ctx context.Context, w *Wait) (bool, triggers.Map, error) {
	return h.e.waitFor(ctx, h.callID, w)
}

// waitFor holds until w.Until fires on the call's session or w.Timeout
// passes. It is woken by the session's writes, never polls, and re-reads
// the session only when its subscription fell behind.
func (e *Engine) waitFor(ctx context.Context, callID string, w *Wait) (bool, triggers.Map, error) {
	sub := e.svc.Subscribe(callID)
	defer func() { sub.Close() }()
	// Read after subscribing, so that no write in between is missed.
	read := func() (triggers.Map, error) { return e.sessionVars(ctx, callID) }
	vars, err := read()
	if err != nil {
		return false, nil, err
	}
	if e.evaluate(w.Until, vars) {
		return true, vars, nil
	}
	timer := time.NewTimer(w.Timeout)
	defer timer.Stop()
	var tick <-chan time.Time
	if w.Until.UsesClock() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return false, vars, ctx.Err()
		case <-timer.C:
			return false, vars, nil
		case <-tick:
		case ev, ok := <-sub.Events():
			if !ok {
				// Dropped for lagging: subscribe again and catch up.
				sub = e.svc.Subscribe(callID)
				if vars, err = read(); err != nil {
					return false, nil, err
				}
				break
			}
			applyChanges(vars, ev.Changes)
			if ev.Type == session.EventCallEnded {
				return false, vars, nil
			}
		}
		if e.evaluate(w.Until, vars) {
			return true, vars, nil
		}
	}
}

// evaluate evaluates a trigger on a live call's variables and reports it.
func (e *Engine) evaluate(t *triggers.Trigger, vars triggers.Map) bool {
	fired := t.Eval(vars, e.now())
	e.cfg.Observer.TriggerEvaluated(t.Name, fired)
	return fired
}

// DecodeVars decodes a session's variables for triggers and templates,
// keeping numbers exact; a value that does not decode is left out.
func DecodeVars(raw map[string]json.RawMessage) triggers.Map {
	m := make(triggers.Map, len(raw))
	for name, v := range raw {
		if x, ok := decodeValue(v); ok {
			m[name] = x
		}
	}
	return m
}

// decodeValue decodes a stored (compact, checked) value as triggers see
// it: numbers as json.Number, objects and arrays as encoding/json makes
// them. The values sessions hold most (true, false, a number, a string
// without escapes) are decoded without a decoder.
func decodeValue(raw json.RawMessage) (any, bool) {
	switch s := string(raw); {
	case s == "true":
		return true, true
	case s == "false":
		return false, true
	case len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && plainString(s[1:len(s)-1]):
		return s[1 : len(s)-1], true
	case len(s) > 0 && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid(raw):
		return json.Number(s), true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// plainString reports whether the inside of a JSON string token holds no
// escape and no character that needs one: it decodes to itself.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// applyChanges brings decoded variables up to date with a write.
func applyChanges(vars triggers.Map, changes map[string]session.Change) {
	for name, c := range changes {
		if c.New == nil {
			delete(vars, name)
			continue
		}
		if v, ok := decodeValue(c.New); ok {
			vars[name] = v
		}
	}
}

// events forgets the runs of the calls that ended. (The automations call
// events fire are queued with the change itself, see engineAutomations;
// nothing here fires any.)
func (e *Engine) events(ctx context.Context, sub *session.Subscription) {
	defer func() { sub.Close() }()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.Events():
			if !ok {
				if ctx.Err() != nil {
					return
				}
				// Fell behind: the runs of calls that ended meanwhile stay
				// in memory until their next request finds them ended.
				sub = e.svc.SubscribeCalls()
				continue
			}
			if ev.Type == session.EventCallEnded {
				e.forget(ev.CallID)
				e.mu.Lock()
				for k := range e.warned {
					if strings.HasPrefix(k, ev.CallID+"\x00") {
						delete(e.warned, k)
					}
				}
				e.mu.Unlock()
			}
		}
	}
}

// engineAutomations lets the Service have the automations that call events
// fire queued together with the changes (session.Automations).
type engineAutomations struct{ e *Engine }

// Fire implements session.Automations.
func (a engineAutomations) Fire(ev *session.Event) []*session.OutboxEntry {
	if ev.Variables == nil { // never read the store while it prepares a write
		ev.Variables = map[string]json.RawMessage{}
	}
	return a.e.entriesFor(context.Background(), string(ev.Type), ev.Call, ev)
}

// Queued implements session.Automations.
func (a engineAutomations) Queued(queued, dropped []*session.OutboxEntry) {
	a.e.queued(queued, dropped)
}

// queued hands the entries a store queued to the outbox, and warns (once
// per call) of an automation the store stopped queuing because it fired
// session.MaxEventFirings times on the call's events.
func (e *Engine) queued(queued, dropped []*session.OutboxEntry) {
	for _, en := range dropped {
		key := en.CallID + "\x00" + en.Automation
		e.mu.Lock()
		first := !e.warned[key]
		e.warned[key] = true
		e.mu.Unlock()
		if first {
			e.log.Warn("automation fired too often on one call's events; ignoring further events", "automation", en.Automation, "call_id", en.CallID, "limit", session.MaxEventFirings)
		}
	}
	e.outbox.add(queued...)
}

// fire queues the automations that listen to an event of a call. c may be
// nil (session.updated events do not carry the call); it is read when an
// automation filters on the flow.
func (e *Engine) fire(ctx context.Context, event string, c *session.Call, ev *session.Event) {
	e.enqueue(ctx, e.entriesFor(ctx, event, c, ev))
}

// entriesFor returns the outbox entries of the automations that listen to
// an event of a call; see fire. c or ev (or both) is given. The call's
// flow, which automations may filter on, is c's or the session's
// call.flow; the variables are the event's, read only when it has none.
// The store leaves out an automation that has fired MaxEventFirings times
// on the call's events.
func (e *Engine) entriesFor(ctx context.Context, event string, c *session.Call, ev *session.Event) []*session.OutboxEntry {
	callID, flowName := "", ""
	if c != nil {
		callID, flowName = c.ID, c.Flow
	} else {
		callID = ev.CallID
		if raw, ok := ev.Variables["call.flow"]; ok {
			_ = json.Unmarshal(raw, &flowName)
		}
	}
	var vars triggers.Map
	var entries []*session.OutboxEntry
	for _, a := range e.Snapshot().automationList { // not Automations(): no copy per event
		if !listens(a, event, flowName, ev) {
			continue
		}
		if vars == nil {
			if ev != nil && ev.Variables != nil {
				vars = DecodeVars(ev.Variables)
			} else if vars, _ = e.sessionVars(ctx, callID); vars == nil {
				return nil // purged meanwhile
			}
		}
		if a.When != nil && !e.evaluate(a.When, vars) {
			continue
		}
		en := e.newEntry(callID, a, vars, "event:"+event)
		en.Event = session.EventType(event)
		entries = append(entries, en)
	}
	return entries
}

// enqueue queues outbox entries of one call in one store write, and hands
// them to the outbox.
func (e *Engine) enqueue(ctx context.Context, entries []*session.OutboxEntry) {
	if len(entries) == 0 {
		return
	}
	queued, err := e.store.EnqueueOutbox(context.WithoutCancel(ctx), entries)
	if err != nil {
		if session.ErrorCode(err) != session.CodeNotFound { // not a call purged meanwhile
			e.log.Error("queue automations", "call_id", entries[0].CallID, "entries", len(entries), "error", err)
		}
		return
	}
	var dropped []*session.OutboxEntry
	for _, en := range entries {
		if !slices.Contains(queued, en) {
			dropped = append(dropped, en)
		}
	}
	e.queued(queued, dropped)
}

// listens reports whether automation a fires on an event of a call of
// flow flowName.
func listens(a *Automation, event, flowName string, ev *session.Event) bool {
	if !slices.Contains(a.On, event) || len(a.Flows) > 0 && !slices.Contains(a.Flows, flowName) {
		return false
	}
	if event == EventSessionUpdated && len(a.Changed) > 0 && ev != nil {
		return slices.ContainsFunc(a.Changed, func(name string) bool { _, ok := ev.Changes[name]; return ok })
	}
	return true
}
