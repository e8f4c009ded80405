package flow

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Graph is a flow as a diagram shows it: its nodes with what each does, and
// its edges labelled with what takes a call along them.
type Graph struct {
	Flow        string      `json:"flow"`
	Description string      `json:"description,omitempty"`
	Start       string      `json:"start"`
	Nodes       []GraphNode `json:"nodes"`
	Edges       []GraphEdge `json:"edges"`
}

// GraphNode is one node of a flow's graph.
type GraphNode struct {
	// ID names the node's element in the diagram: "node-" and its name.
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Type        NodeType `json:"type"`
	Description string   `json:"description,omitempty"`
	// Summary says in a line what the node does: the prompt it plays, the
	// text it says, the target it transfers to.
	Summary string `json:"summary"`
	// Action holds the node's settings as written (templates unrendered):
	// prompt, text, var, target, mode, headers, automations, until, ….
	Action map[string]any `json:"action"`
	Start  bool           `json:"start,omitempty"`
	// Final marks a node after which the flow may end: a hangup, a transfer
	// that goes through, or a node without a next one.
	Final bool `json:"final,omitempty"`
}

// Edge kinds: which setting of a node an edge comes from.
const (
	EdgeNext    = "next"    // next: the action was done, the wait's trigger fired, the automations were queued
	EdgeCase    = "case"    // a switch case: its trigger fired
	EdgeDefault = "default" // a switch's default: no case fired
	EdgeTimeout = "timeout" // on_timeout
	EdgeFailure = "failure" // on_failure
)

// GraphEdge is one way out of a node.
type GraphEdge struct {
	// ID names the edge's element in the diagram: "edge-" and its index.
	ID   string `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"`
	// Trigger is the trigger of a switch case, or of a wait, whose firing
	// takes a call along the edge.
	Trigger string `json:"trigger,omitempty"`
	Label   string `json:"label"`
}

// NodeID is the diagram element ID of the node called name.
func NodeID(name string) string { return "node-" + name }

// Graph returns the flow's graph: nodes in the order a call meets them
// from the start (breadth first; nodes no path reaches last, by name), and
// edges in node order, each node's in the order of its settings.
func (f *Flow) Graph() *Graph {
	g := &Graph{Flow: f.Name, Description: f.Description, Start: f.Start, Nodes: []GraphNode{}, Edges: []GraphEdge{}}
	for _, name := range f.nodeOrder() {
		n := f.Nodes[name]
		out := n.edges()
		g.Nodes = append(g.Nodes, GraphNode{
			ID: NodeID(n.Name), Name: n.Name, Type: n.Type, Description: n.Description,
			Summary: n.summary(), Action: n.settings(), Start: n.Name == f.Start,
			Final: n.Type == NodeHangup || n.Type == NodeTransfer || !slices.ContainsFunc(out, func(e GraphEdge) bool { return e.Kind != EdgeTimeout && e.Kind != EdgeFailure }),
		})
		for _, e := range out {
			e.ID = "edge-" + strconv.Itoa(len(g.Edges))
			g.Edges = append(g.Edges, e)
		}
	}
	return g
}

// nodeOrder lists the node names breadth first from the start, then the
// unreachable ones sorted.
func (f *Flow) nodeOrder() []string {
	order := make([]string, 0, len(f.Nodes))
	seen := make(map[string]bool, len(f.Nodes))
	queue := []string{f.Start}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] || f.Nodes[name] == nil {
			continue
		}
		seen[name] = true
		order = append(order, name)
		for _, e := range f.Nodes[name].edges() {
			queue = append(queue, e.To)
		}
	}
	var rest []string
	for name := range f.Nodes {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return append(order, rest...)
}

// edges returns the ways out of a node, without IDs.
func (n *Node) edges() []GraphEdge {
	var out []GraphEdge
	add := func(to, kind, trigger, label string) {
		if to != "" {
			out = append(out, GraphEdge{From: n.Name, To: to, Kind: kind, Trigger: trigger, Label: label})
		}
	}
	switch n.Type {
	case NodeSwitch:
		for _, c := range n.Cases {
			add(c.Next, EdgeCase, c.Trigger.Name, c.Trigger.Name)
		}
		add(n.Default, EdgeDefault, "", "default")
	case NodeWait:
		add(n.Next, EdgeNext, n.Wait.Until.Name, n.Wait.Until.Name)
	case NodeInput:
		add(n.Next, EdgeNext, "", "input")
	default:
		add(n.Next, EdgeNext, "", "")
	}
	add(n.OnTimeout, EdgeTimeout, "", "timeout")
	add(n.OnFailure, EdgeFailure, "", "failed")
	return out
}

// summary says in a line what a node does.
func (n *Node) summary() string {
	switch n.Type {
	case NodePlay:
		return "play " + n.Prompt.String()
	case NodeSay:
		return "say “" + n.Text.String() + "”"
	case NodeInput:
		s := "input " + n.Var
		if p := n.Prompt.String(); p != "" {
			s += " after " + p
		}
		return s
	case NodeSwitch:
		names := make([]string, len(n.Cases))
		for i, c := range n.Cases {
			names[i] = c.Trigger.Name
		}
		s := "switch on " + strings.Join(names, ", ")
		if n.Wait != nil {
			s += "; waits up to " + n.Wait.Timeout.String() + " for " + n.Wait.Until.Name
		}
		return s
	case NodeWait:
		return "wait up to " + n.Wait.Timeout.String() + " for " + n.Wait.Until.Name
	case NodeAutomation:
		names := make([]string, len(n.Automations))
		for i, a := range n.Automations {
			names[i] = a.Name
		}
		return "automation " + strings.Join(names, ", ")
	case NodeTransfer:
		return "transfer (" + n.Mode + ") to " + n.Target.String()
	case NodeHangup:
		if n.Reason != "" {
			return "hang up (" + n.Reason + ")"
		}
		return "hang up"
	}
	return string(n.Type)
}

// settings returns a node's settings as written, for the graph's Action.
func (n *Node) settings() map[string]any {
	a := map[string]any{"type": string(n.Type)}
	switch n.Type {
	case NodePlay:
		a["prompt"] = n.Prompt.String()
	case NodeSay:
		a["text"] = n.Text.String()
		if n.Voice != "" {
			a["voice"] = n.Voice
		}
		if n.Language != "" {
			a["language"] = n.Language
		}
	case NodeInput:
		a["var"], a["min"], a["max"], a["timeoutMs"], a["chars"] = n.Var, n.Min, n.Max, n.Timeout.Milliseconds(), n.Chars
		if p := n.Prompt.String(); p != "" {
			a["prompt"] = p
		}
	case NodeSwitch:
		cases := make([]string, len(n.Cases))
		for i, c := range n.Cases {
			cases[i] = c.Trigger.Name
		}
		a["cases"] = cases
		if n.Wait != nil {
			a["wait"] = map[string]any{"until": n.Wait.Until.Name, "timeoutMs": n.Wait.Timeout.Milliseconds()}
		}
	case NodeWait:
		a["until"], a["timeoutMs"] = n.Wait.Until.Name, n.Wait.Timeout.Milliseconds()
	case NodeAutomation:
		names := make([]string, len(n.Automations))
		for i, au := range n.Automations {
			names[i] = au.Name
		}
		a["automations"] = names
	case NodeTransfer:
		a["target"], a["mode"] = n.Target.String(), n.Mode
		headers := make(map[string]string, len(n.Headers))
		for _, h := range n.Headers {
			headers[h.Name] = h.Value.String()
		}
		a["headers"] = headers
		if u := n.UUI.String(); u != "" {
			a["uui"] = u
		}
	case NodeHangup:
		if n.Reason != "" {
			a["reason"] = n.Reason
		}
	}
	return a
}

// Trace is the part of a flow's graph a call has been through.
type Trace struct {
	CallID  string   `json:"callId"`
	Version string   `json:"version"`
	Nodes   []string `json:"nodes"` // the recorded path's nodes, in order, repeats included
	Edges   []string `json:"edges"` // IDs of the edges taken, in order
	Current string   `json:"current,omitempty"`
	Done    bool     `json:"done"`
	Dropped int      `json:"dropped,omitempty"` // steps dropped from the start of the record
}

// Trace maps a call's recorded path onto the graph g of its flow: the nodes
// it passed and the edges it took between them, and where it stands.
func (g *Graph) Trace(run *Run) *Trace {
	t := &Trace{CallID: run.CallID, Version: run.Version, Nodes: []string{}, Edges: []string{}, Done: run.Done, Dropped: run.Dropped}
	if !run.Done {
		t.Current = run.Node
	}
	for i, st := range run.Path {
		t.Nodes = append(t.Nodes, st.Node)
		next := ""
		switch {
		case i+1 < len(run.Path):
			next = run.Path[i+1].Node
		case !run.Done && (st.Action == nil || st.Outcome != nil):
			// The last step is over (an internal node, or an action whose
			// outcome came): the call moved on to a node that has not
			// recorded a step yet.
			next = run.Node
		}
		if next == "" {
			continue
		}
		if id := g.edgeTaken(st, next); id != "" {
			t.Edges = append(t.Edges, id)
		}
	}
	return t
}

// edgeTaken returns the ID of the edge from step st's node to next that the
// step took, judged by how it ended: the case that fired, the outcome
// reported, the wait that timed out. "" when the graph has no such edge
// (the flow changed under the call).
func (g *Graph) edgeTaken(st Step, next string) string {
	kind, trigger := EdgeNext, ""
	switch {
	case len(st.Cases) > 0 || st.Type == NodeSwitch:
		kind = EdgeDefault
		for _, c := range st.Cases {
			if c.Result {
				kind, trigger = EdgeCase, c.Trigger
			}
		}
	case st.Wait != nil && st.Type == NodeWait && !st.Wait.Fired:
		kind = EdgeTimeout
	case st.Outcome != nil && st.Outcome.Status == StatusTimeout:
		kind = EdgeTimeout
	case st.Outcome != nil && (st.Outcome.Status == StatusFailed || strings.HasPrefix(st.Note, "input refused")):
		kind = EdgeFailure
	}
	fallback := ""
	for _, e := range g.Edges {
		if e.From != st.Node || e.To != next {
			continue
		}
		if e.Kind == kind && (trigger == "" || e.Trigger == trigger) {
			return e.ID
		}
		if fallback == "" {
			fallback = e.ID
		}
	}
	return fallback
}

// Digest identifies a flow's definition: two snapshots whose flow of the
// same name has the same digest hold the same flow.
func (f *Flow) Digest() string {
	b, _ := json.Marshal(f.Def) // map keys sorted: the same definition, the same bytes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
