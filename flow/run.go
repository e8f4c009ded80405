package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/triggers"
)

// Outcome statuses the media platform reports.
const (
	StatusDone    = "done"
	StatusTimeout = "timeout"
	StatusFailed  = "failed"
)

// Outcome is what the media platform reports about the last action.
type Outcome struct {
	// Status is done, timeout or failed; empty means done when Input is
	// set.
	Status string
	// Input is what an input action collected.
	Input *string
	// Step is the step of the action the outcome answers, as the last
	// answer gave it; 0 answers the current action. With it a client can
	// safely retry: an outcome for an older step is not applied twice.
	Step int
	// Announced says the transfer's outcome was published already as a
	// transfer.status event of the session (the SIP bridge records the
	// transfers it performs), so Next must not fire those automations again.
	Announced bool
}

func (o *Outcome) empty() bool { return o == nil || (o.Status == "" && o.Input == nil) }

// Action is what the media platform is asked to do: {"type": "play",
// "prompt": …}, {"type": "input", "var": …}, and so on.
type Action map[string]any

// Run is the state of one call's flow: where it stands and the path it
// took. It is stored with the call and survives restarts.
type Run struct {
	CallID    string    `json:"callId"`
	Flow      string    `json:"flow"`
	Version   string    `json:"version"`
	Node      string    `json:"node"`      // the current node; "" once the flow has ended
	Presented bool      `json:"presented"` // Node's action was handed out and awaits its outcome
	Step      int       `json:"step"`      // how many actions were handed out
	Action    Action    `json:"action"`    // the last action handed out
	Done      bool      `json:"done"`
	StartedAt time.Time `json:"startedAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	Path      []Step    `json:"path"`
	Dropped   int       `json:"dropped,omitempty"` // the oldest steps dropped to bound the record
}

// Step is one node on the path a call took.
type Step struct {
	At          time.Time     `json:"at"`
	Node        string        `json:"node"`
	Type        NodeType      `json:"type"`
	Step        int           `json:"step,omitempty"`    // for actions: the step number
	Action      Action        `json:"action,omitempty"`  // for actions: what was asked
	Outcome     *StepOutcome  `json:"outcome,omitempty"` // for actions: what the platform reported
	Wait        *WaitRecord   `json:"wait,omitempty"`
	Cases       []CaseRecord  `json:"cases,omitempty"`
	Automations []FiredRecord `json:"automations,omitempty"`
	Next        string        `json:"next,omitempty"`
	Note        string        `json:"note,omitempty"`
}

// StepOutcome is an outcome as recorded on the path.
type StepOutcome struct {
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Input  *string   `json:"input,omitempty"`
}

// WaitRecord says how a wait ended.
type WaitRecord struct {
	Trigger   string `json:"trigger"`
	TimeoutMs int64  `json:"timeoutMs"`
	WaitedMs  int64  `json:"waitedMs"`
	Fired     bool   `json:"fired"` // false: the timeout passed
}

// CaseRecord is one case a switch evaluated, with the trigger's explanation.
type CaseRecord struct {
	Trigger string               `json:"trigger"`
	Result  bool                 `json:"result"`
	Explain triggers.Explanation `json:"explain"`
}

// FiredRecord is an automation a node queued.
type FiredRecord struct {
	Automation string `json:"automation"`
	ID         string `json:"id"` // the outbox entry, and the request's Idempotency-Key
}

// MaxPath bounds the steps a Run records; older ones are dropped.
const MaxPath = 200

// maxHops bounds the nodes one advance may run without reaching an action,
// so that a switch looping onto itself cannot hold a request forever.
const maxHops = 64

// host is what the stepper needs from the world: the engine's is the real
// session and outbox, simulate's an in-memory session that prints.
type host interface {
	now() time.Time
	// vars returns the session's variables as they are now.
	vars(ctx context.Context) (triggers.Map, error)
	// write writes variables into the session as the flow; the write also
	// fires the automations of the events fires names.
	write(ctx context.Context, run *Run, vars map[string]json.RawMessage, fires ...session.EventType) error
	// queue renders and queues an automation; it becomes durable with the
	// next checkpoint.
	queue(ctx context.Context, run *Run, a *Automation, vars triggers.Map) (string, error)
	// checkpoint stores the run and the automations queued since the last
	// checkpoint, in one step.
	checkpoint(ctx context.Context, run *Run) error
	// wait holds until w.Until fires on the session or w.Timeout passes.
	wait(ctx context.Context, w *Wait) (fired bool, after triggers.Map, err error)
	// evaluated reports a switch case's trigger evaluation (for metrics).
	evaluated(trigger string, fired bool)
}

// stepper moves one call's run through its flow, step by step.
type stepper struct {
	h    host
	flow *Flow
}

// start runs the automation nodes at the start of a flow, so that their
// requests go out as the call arrives, and stops at the first other node.
func (r *stepper) start(ctx context.Context, run *Run) error {
	vars, err := r.h.vars(ctx)
	if err != nil {
		return err
	}
	for hops := 0; run.Node != ""; hops++ {
		n := r.flow.Nodes[run.Node]
		if n == nil || n.Type != NodeAutomation || hops >= maxHops {
			break
		}
		if err := r.automations(ctx, run, n, vars); err != nil {
			return err
		}
	}
	return r.h.checkpoint(ctx, run)
}

// advance applies an outcome to the action awaiting one and runs the flow
// to the next action, which it leaves in run.Action (nil once the flow has
// ended). It returns CodeConflict for an outcome nothing awaits, and
// CodeInvalid for an outcome that does not fit the action.
func (r *stepper) advance(ctx context.Context, run *Run, o *Outcome) error {
	if run.Done {
		run.Action = nil // nothing more to do; asking again is not an error
		return nil
	}
	switch {
	case o != nil && o.Step > run.Step:
		return session.Errorf(session.CodeConflict, "step %d has not been handed out yet; the current step is %d", o.Step, run.Step)
	case o != nil && o.Step > 0 && o.Step < run.Step:
		// An answer to an older action, e.g. a client's retry: it was
		// applied already. Answer with the current action.
		return r.toAction(ctx, run)
	case run.Presented && !o.empty():
		if err := r.apply(ctx, run, o); err != nil {
			return err
		}
	case run.Presented:
		return nil // asked again: the same action
	case !o.empty() && o.Step == 0:
		return session.Errorf(session.CodeConflict, "no action awaits an outcome; send {} to get the next action")
	}
	return r.toAction(ctx, run)
}

// toAction runs internal nodes until an action node, hands its action out
// and checkpoints.
func (r *stepper) toAction(ctx context.Context, run *Run) error {
	if run.Presented {
		return nil
	}
	if run.Node == "" { // the flow ended: no variables needed
		run.Done, run.Action = true, nil
		return r.h.checkpoint(ctx, run)
	}
	vars, err := r.h.vars(ctx)
	if err != nil {
		return err
	}
	for hops := 0; ; hops++ {
		if run.Node == "" {
			run.Done, run.Action = true, nil
			return r.h.checkpoint(ctx, run)
		}
		if hops >= maxHops {
			_ = r.h.checkpoint(ctx, run)
			return session.Errorf(session.CodeConflict, "%s: the flow ran through %d nodes without an action; a switch or automation node loops", describe(r.flow, run.Node), maxHops)
		}
		n := r.flow.Nodes[run.Node]
		if n == nil {
			return session.Internal(fmt.Errorf("%s: no such node", describe(r.flow, run.Node)))
		}
		switch n.Type {
		case NodeAutomation:
			if err := r.automations(ctx, run, n, vars); err != nil {
				return err
			}
		case NodeSwitch:
			if vars, err = r.decide(ctx, run, n, vars); err != nil {
				return err
			}
		case NodeWait:
			// Make queued automations durable before holding the request.
			if err := r.h.checkpoint(ctx, run); err != nil {
				return err
			}
			fired, after, err := r.wait(ctx, n.Wait, vars)
			if err != nil {
				return err
			}
			vars = after.vars
			next := n.Next
			if !fired && n.OnTimeout != "" {
				next = n.OnTimeout
			}
			r.record(run, Step{Node: n.Name, Type: n.Type, Wait: after.record, Next: next})
			run.Node = next
		default:
			run.Step++
			run.Presented = true
			run.Action = n.action(vars)
			r.record(run, Step{Node: n.Name, Type: n.Type, Step: run.Step, Action: run.Action})
			if n.Type == NodeHangup {
				run.Done, run.Presented, run.Node = true, false, ""
			}
			return r.h.checkpoint(ctx, run)
		}
	}
}

func (r *stepper) automations(ctx context.Context, run *Run, n *Node, vars triggers.Map) error {
	st := Step{Node: n.Name, Type: n.Type, Next: n.Next}
	for _, a := range n.Automations {
		id, err := r.h.queue(ctx, run, a, vars)
		if err != nil {
			return err
		}
		st.Automations = append(st.Automations, FiredRecord{Automation: a.Name, ID: id})
	}
	r.record(run, st)
	run.Node = n.Next
	return nil
}

type waited struct {
	vars   triggers.Map
	record *WaitRecord
}

func (r *stepper) wait(ctx context.Context, w *Wait, vars triggers.Map) (bool, waited, error) {
	start := r.h.now()
	fired, after, err := r.h.wait(ctx, w)
	if err != nil {
		return false, waited{}, err
	}
	rec := &WaitRecord{Trigger: w.Until.Name, TimeoutMs: w.Timeout.Milliseconds(), WaitedMs: r.h.now().Sub(start).Milliseconds(), Fired: fired}
	return fired, waited{vars: after, record: rec}, nil
}

// decide runs a switch node: the optional wait, then the first case whose
// trigger fires, else the default.
func (r *stepper) decide(ctx context.Context, run *Run, n *Node, vars triggers.Map) (triggers.Map, error) {
	st := Step{Node: n.Name, Type: n.Type}
	if n.Wait != nil {
		if err := r.h.checkpoint(ctx, run); err != nil {
			return nil, err
		}
		_, after, err := r.wait(ctx, n.Wait, vars)
		if err != nil {
			return nil, err
		}
		vars, st.Wait = after.vars, after.record
	}
	now := r.h.now()
	st.Next = n.Default
	for _, cs := range n.Cases {
		e := cs.Trigger.Explain(vars, now)
		r.h.evaluated(cs.Trigger.Name, e.Result)
		st.Cases = append(st.Cases, CaseRecord{Trigger: cs.Trigger.Name, Result: e.Result, Explain: e})
		if e.Result {
			st.Next = cs.Next
			break
		}
	}
	r.record(run, st)
	run.Node = st.Next
	return vars, nil
}

// apply applies an outcome to the presented action and moves to the node
// it leads to.
func (r *stepper) apply(ctx context.Context, run *Run, o *Outcome) error {
	n := r.flow.Nodes[run.Node]
	if n == nil {
		return session.Internal(fmt.Errorf("%s: no such node", describe(r.flow, run.Node)))
	}
	status := o.Status
	if status == "" {
		status = StatusDone
	}
	if o.Input != nil && n.Type != NodeInput {
		return session.Errorf(session.CodeInvalid, "the current action is %s, not input; it takes a status, not input", n.Type)
	}
	if o.Input != nil && status != StatusDone {
		return session.Errorf(session.CodeInvalid, "input comes with status done (or no status)")
	}
	next, note := n.Next, ""
	switch status {
	case StatusTimeout:
		if n.OnTimeout != "" {
			next = n.OnTimeout
		}
	case StatusFailed:
		if n.OnFailure != "" {
			next = n.OnFailure
		}
	}
	switch n.Type {
	case NodeInput:
		if status == StatusDone {
			in := ""
			if o.Input != nil {
				in = *o.Input
			}
			value, problem := n.checkInput(in)
			if problem != "" {
				note = "input refused: " + problem
				if n.OnFailure != "" {
					next = n.OnFailure
				}
			} else {
				raw, _ := json.Marshal(value)
				if err := r.h.write(ctx, run, map[string]json.RawMessage{n.Var: raw}); err != nil {
					return err
				}
			}
		}
	case NodeTransfer:
		// The outcome fires the transfer.status automations, with its write,
		// unless the SIP bridge published it as a transfer.status already.
		var fires []session.EventType
		if !o.Announced {
			fires = append(fires, session.EventTransferStatus)
		}
		raw, _ := json.Marshal(status)
		if err := r.h.write(ctx, run, map[string]json.RawMessage{"app." + n.Name + ".status": raw}, fires...); err != nil {
			return err
		}
		// A transfer that went through ends the flow, unless the node says where it goes on
		// (a bridged call callctx stays in).
		if status != StatusDone {
			next = n.OnFailure
		}
	}
	r.recordOutcome(run, StepOutcome{At: r.h.now(), Status: status, Input: o.Input}, note)
	run.Presented = false
	run.Node = next
	return nil
}

// checkInput validates what an input action collected and returns the
// value to store, or why it is refused.
func (n *Node) checkInput(in string) (string, string) {
	if n.Terminator != "" {
		in = strings.TrimSuffix(in, n.Terminator)
	}
	count := utf8.RuneCountInString(in)
	switch {
	case !utf8.ValidString(in):
		return "", "not valid UTF-8"
	case count < n.Min:
		return "", fmt.Sprintf("%d characters, fewer than %d", count, n.Min)
	case count > n.Max:
		return "", fmt.Sprintf("%d characters, more than %d", count, n.Max)
	}
	for _, c := range in {
		switch {
		case n.Chars == "digits" && !(c >= '0' && c <= '9'):
			return "", fmt.Sprintf("%q is not a digit", c)
		case n.Chars == "alphanumeric" && !(unicode.IsLetter(c) || unicode.IsDigit(c)):
			return "", fmt.Sprintf("%q is not a letter or digit", c)
		case unicode.IsControl(c):
			return "", fmt.Sprintf("control character %U", c)
		}
	}
	return in, ""
}

// action renders the node's action with the session's variables.
func (n *Node) action(vars triggers.Map) Action {
	a := Action{"type": string(n.Type)}
	switch n.Type {
	case NodePlay:
		a["prompt"] = n.Prompt.Render(vars)
	case NodeSay:
		a["text"] = n.Text.Render(vars)
		if n.Voice != "" {
			a["voice"] = n.Voice
		}
		if n.Language != "" {
			a["language"] = n.Language
		}
	case NodeInput:
		a["var"] = n.Var
		a["min"] = n.Min
		a["max"] = n.Max
		a["timeoutMs"] = n.Timeout.Milliseconds()
		a["terminator"] = n.Terminator
		a["chars"] = n.Chars
		if p := n.Prompt.Render(vars); p != "" {
			a["prompt"] = p
		}
	case NodeTransfer:
		a["target"] = n.Target.Render(vars)
		a["mode"] = n.Mode
		headers := map[string]string{}
		for _, h := range n.Headers {
			headers[h.Name] = h.Value.Render(vars)
		}
		a["headers"] = headers
		if u := n.UUI.Render(vars); u != "" {
			a["uui"] = u
		}
	case NodeHangup:
		if n.Reason != "" {
			a["reason"] = n.Reason
		}
	}
	return a
}

func (r *stepper) record(run *Run, st Step) {
	st.At = r.h.now()
	run.Path = append(run.Path, st)
	if over := len(run.Path) - MaxPath; over > 0 {
		run.Path = append(run.Path[:0], run.Path[over:]...)
		run.Dropped += over
	}
	run.UpdatedAt = st.At
}

// recordOutcome attaches an outcome to the step of the action it answers.
func (r *stepper) recordOutcome(run *Run, o StepOutcome, note string) {
	for i := len(run.Path) - 1; i >= 0; i-- {
		if run.Path[i].Step == run.Step && run.Path[i].Action != nil {
			run.Path[i].Outcome = &o
			if note != "" {
				run.Path[i].Note = note
			}
			break
		}
	}
	run.UpdatedAt = o.At
}
