package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/triggers"
)

// SimulateOptions describe an offline run of a flow.
type SimulateOptions struct {
	// Flow is the flow to run; when empty, the routing table picks it for
	// a call to To, as it would for a new inbound call.
	Flow string
	To   string
	// Vars is the session the call starts with (call.* included if the
	// flow reads them).
	Vars triggers.Map
	// Inputs answer the flow's input actions, in order; when they run out,
	// an input action times out.
	Inputs []string
	// Now is the time triggers see; time.Now when zero.
	Now time.Time
	// MaxActions stops a flow that loops; 100 when 0.
	MaxActions int
}

// Simulation is what an offline run did.
type Simulation struct {
	Route    *Routed            `json:"route,omitempty"` // how the routing table picked the flow, if it did
	Run      *Run               `json:"run"`
	Requests []SimulatedRequest `json:"requests"`          // the automation requests it would have sent
	Vars     triggers.Map       `json:"vars"`              // the session at the end
	Stopped  string             `json:"stopped,omitempty"` // why it stopped before the flow ended, if it did
}

// SimulatedRequest is an automation request a simulation would have sent.
type SimulatedRequest struct {
	ID         string            `json:"id"`
	Node       string            `json:"node"`
	Automation string            `json:"automation"`
	Method     string            `json:"method"`
	URL        string            `json:"url"`
	Headers    map[string]string `json:"headers"`
	Body       json.RawMessage   `json:"body"`
	Error      string            `json:"error,omitempty"` // why it would not be sent
}

// Simulate runs a flow offline, against an in-memory session, and reports
// the path it takes: no request goes out and nothing is stored. Nothing
// writes to the session while it runs, so a wait whose trigger does not
// fire at once times out. Every play, say and transfer action is done;
// input actions take Inputs in order.
func Simulate(snap *Snapshot, opts SimulateOptions) (*Simulation, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	vars := maps.Clone(opts.Vars)
	if vars == nil {
		vars = triggers.Map{}
	}
	var route *Routed
	if opts.To != "" {
		vars["call.to"] = opts.To
	}
	if opts.Flow == "" {
		if snap.Routing() == nil {
			return nil, fmt.Errorf("name a flow: the flows directory has no routing table to pick one for %q", opts.To)
		}
		rt, ok := snap.Routing().Route(opts.To, vars, now)
		if !ok {
			return nil, fmt.Errorf("no route for the number %s, and the routing table has no default", rt.Number)
		}
		route, opts.Flow = &rt, rt.Flow
		vars["call.route"] = rt.Route
	}
	flow, ok := snap.Flow(opts.Flow)
	if !ok {
		return nil, fmt.Errorf("there is no flow %s", opts.Flow)
	}
	vars["call.flow"] = flow.Name
	if opts.MaxActions <= 0 {
		opts.MaxActions = 100
	}
	h := &simHost{clock: now, session: vars}
	run := &Run{CallID: "simulated", Flow: flow.Name, Version: snap.Version, Node: flow.Start, StartedAt: now, UpdatedAt: now, Path: []Step{}}
	r := &stepper{h: h, flow: flow}
	ctx := context.Background()
	sim := &Simulation{Run: run, Route: route}
	if err := r.start(ctx, run); err != nil {
		return nil, err
	}
	inputs := opts.Inputs
	var o *Outcome
	for actions := 0; ; actions++ {
		if actions >= opts.MaxActions {
			sim.Stopped = fmt.Sprintf("stopped after %d actions: the flow loops", opts.MaxActions)
			break
		}
		if err := r.advance(ctx, run, o); err != nil {
			return nil, err
		}
		if run.Done {
			break
		}
		o = &Outcome{Status: StatusDone}
		if t, _ := run.Action["type"].(string); t == string(NodeInput) {
			if len(inputs) == 0 {
				o.Status = StatusTimeout
			} else {
				in := inputs[0]
				inputs = inputs[1:]
				o.Input = &in
			}
		}
	}
	sim.Requests, sim.Vars = h.requests, h.session
	if sim.Requests == nil {
		sim.Requests = []SimulatedRequest{}
	}
	return sim, nil
}

type simHost struct {
	clock    time.Time
	session  triggers.Map
	requests []SimulatedRequest
}

func (h *simHost) now() time.Time { return h.clock }

func (h *simHost) vars(context.Context) (triggers.Map, error) { return maps.Clone(h.session), nil }

func (h *simHost) checkpoint(context.Context, *Run) error { return nil }

func (h *simHost) queue(_ context.Context, run *Run, a *Automation, vars triggers.Map) (string, error) {
	d := a.render(vars)
	id := fmt.Sprintf("simulated-%d", len(h.requests)+1)
	h.requests = append(h.requests, SimulatedRequest{
		ID: id, Node: run.Node, Automation: a.Name, Method: d.Method, URL: d.URL,
		Headers: d.Headers, Body: d.Body, Error: d.Error,
	})
	return id, nil
}

func (h *simHost) write(_ context.Context, _ *Run, vars map[string]json.RawMessage, _ ...session.EventType) error {
	for name, raw := range vars {
		if v, ok := decodeValue(raw); ok {
			h.session[name] = v
		}
	}
	return nil
}

func (h *simHost) wait(_ context.Context, w *Wait) (bool, triggers.Map, error) {
	return w.Until.Eval(h.session, h.clock), maps.Clone(h.session), nil
}

// evaluated reports nothing: a simulation is not traffic.
func (h *simHost) evaluated(string, bool) {}

var _ host = (*simHost)(nil)
