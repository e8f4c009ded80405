package flow_test

import (
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/triggers"
)

const graphYAML = `
triggers:
  known: {when: {var: ivr.email, op: not_empty}}
  vip: {when: {var: ivr.vip, op: eq, value: true}}
flows:
  menu:
    start: hold
    nodes:
      hold: {type: wait, until: known, timeout: 1s, next: pick, on_timeout: menu}
      menu: {type: input, var: choice, min: 1, max: 1, chars: digits, next: pick, on_timeout: bye, on_failure: menu}
      pick:
        type: switch
        cases: [{trigger: vip, next: agent}, {trigger: known, next: agent}]
        default: bye
      agent: {type: transfer, target: "sip:agent@pbx.example.com", on_failure: bye}
      bye: {type: hangup, reason: done}
      orphan: {type: say, text: never, next: bye}
`

func compileGraphFlows(t *testing.T) *flow.Snapshot {
	t.Helper()
	d, err := flow.ParseFS(fstest.MapFS{"flows.yaml": {Data: []byte(graphYAML)}})
	if err != nil {
		t.Fatal(err)
	}
	snap, _, err := flow.Compile(d, flow.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestFlow_Graph(t *testing.T) {
	f, _ := compileGraphFlows(t).Flow("menu")
	g := f.Graph()
	var nodes []string
	for _, n := range g.Nodes {
		nodes = append(nodes, n.ID)
	}
	// Breadth first from the start, the unreachable last.
	if want := []string{"node-hold", "node-pick", "node-menu", "node-agent", "node-bye", "node-orphan"}; !slices.Equal(nodes, want) {
		t.Errorf("nodes %q, want %q", nodes, want)
	}
	var edges []string
	for _, e := range g.Edges {
		edges = append(edges, e.ID+":"+e.From+">"+e.To+":"+e.Kind+":"+e.Trigger+":"+e.Label)
	}
	want := []string{
		"edge-0:hold>pick:next:known:known", "edge-1:hold>menu:timeout::timeout",
		"edge-2:pick>agent:case:vip:vip", "edge-3:pick>agent:case:known:known", "edge-4:pick>bye:default::default",
		"edge-5:menu>pick:next::input", "edge-6:menu>bye:timeout::timeout", "edge-7:menu>menu:failure::failed",
		"edge-8:agent>bye:failure::failed", "edge-9:orphan>bye:next::",
	}
	if !slices.Equal(edges, want) {
		t.Errorf("edges\n%q\nwant\n%q", edges, want)
	}
	final := map[string]bool{}
	for _, n := range g.Nodes {
		final[n.Name] = n.Final
	}
	if !final["agent"] || !final["bye"] || final["pick"] || final["menu"] || !g.Nodes[0].Start {
		t.Errorf("final %v, start %v", final, g.Nodes[0].Start)
	}
}

// TestGraph_Trace maps simulated runs onto the graph: each run's edges are
// the ones its recorded steps took, told apart by how each step ended.
func TestGraph_Trace(t *testing.T) {
	snap := compileGraphFlows(t)
	f, _ := snap.Flow("menu")
	g := f.Graph()
	for _, tt := range []struct {
		name   string
		vars   triggers.Map
		inputs []string
		nodes  []string
		edges  []string
	}{
		{"KnownAtOnce", triggers.Map{"ivr.email": "a@b.c"}, nil,
			[]string{"hold", "pick", "agent"}, []string{"edge-0", "edge-3"}},
		{"VIPCaseFirst", triggers.Map{"ivr.email": "a@b.c", "ivr.vip": true}, nil,
			[]string{"hold", "pick", "agent"}, []string{"edge-0", "edge-2"}},
		{"WaitTimesOutThenInputRefusedThenDefault", nil, []string{"x", "1"},
			[]string{"hold", "menu", "menu", "pick", "bye"}, []string{"edge-1", "edge-7", "edge-5", "edge-4"}},
		{"InputTimesOut", nil, nil,
			[]string{"hold", "menu", "bye"}, []string{"edge-1", "edge-6"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sim, err := flow.Simulate(snap, flow.SimulateOptions{Flow: "menu", Vars: tt.vars, Inputs: tt.inputs, Now: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatal(err)
			}
			tr := g.Trace(sim.Run)
			if !slices.Equal(tr.Nodes, tt.nodes) || !slices.Equal(tr.Edges, tt.edges) {
				t.Errorf("trace nodes %q edges %q, want %q %q", tr.Nodes, tr.Edges, tt.nodes, tt.edges)
			}
		})
	}

	t.Run("StandingAtAnAction", func(t *testing.T) {
		run := &flow.Run{CallID: "c1", Flow: "menu", Node: "menu", Presented: true, Path: []flow.Step{
			{Node: "hold", Type: flow.NodeWait, Wait: &flow.WaitRecord{Trigger: "known", Fired: false}, Next: "menu"},
			{Node: "menu", Type: flow.NodeInput, Step: 1, Action: flow.Action{"type": "input"}},
		}}
		tr := g.Trace(run)
		if tr.Current != "menu" || !slices.Equal(tr.Edges, []string{"edge-1"}) {
			t.Errorf("current %q edges %q", tr.Current, tr.Edges)
		}
	})

	t.Run("MovedOnWithoutAStepYet", func(t *testing.T) {
		// Refused input going back to itself: the call stands at menu again
		// before its next action was handed out.
		run := &flow.Run{CallID: "c1", Flow: "menu", Node: "menu", Path: []flow.Step{
			{Node: "menu", Type: flow.NodeInput, Step: 1, Action: flow.Action{"type": "input"}, Outcome: &flow.StepOutcome{Status: "done"}, Note: "input refused: 1 characters"},
		}}
		if tr := g.Trace(run); !slices.Equal(tr.Edges, []string{"edge-7"}) {
			t.Errorf("edges %q, want the failure loop", tr.Edges)
		}
	})
}
