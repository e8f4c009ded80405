package diagram

import (
	"strings"

	"github.com/callctx/callctx/flow"
)

// nodeLook is how a node of each type is drawn.
var nodeLook = map[flow.NodeType]struct{ shape, fill string }{
	flow.NodePlay:       {"box", "#e8f0fe"},
	flow.NodeSay:        {"box", "#e8f0fe"},
	flow.NodeInput:      {"box", "#fff4e0"},
	flow.NodeSwitch:     {"diamond", "#f6e8fb"},
	flow.NodeWait:       {"hexagon", "#f6e8fb"},
	flow.NodeAutomation: {"component", "#e6f6ec"},
	flow.NodeTransfer:   {"cds", "#e0f5f5"},
	flow.NodeHangup:     {"octagon", "#eceef2"},
}

// edgeLook is how an edge of each kind is drawn.
var edgeLook = map[string]struct{ style, color string }{
	flow.EdgeNext:    {"solid", ""},
	flow.EdgeCase:    {"solid", "#7b3fa0"},
	flow.EdgeDefault: {"dashed", ""},
	flow.EdgeTimeout: {"dotted", "#b7791f"},
	flow.EdgeFailure: {"dashed", "#c53030"},
}

// Flow returns the diagram of a flow's graph. Each node becomes one SVG
// group whose id is the node's ID and whose class names its type
// ("node type-switch", plus "start" and "final"); each edge one group with
// the edge's ID and its kind ("edge kind-case").
func Flow(g *flow.Graph) *Graph {
	d := &Graph{Nodes: make([]Node, 0, len(g.Nodes)), Edges: make([]Edge, 0, len(g.Edges))}
	for _, n := range g.Nodes {
		look := nodeLook[n.Type]
		class := "type-" + string(n.Type)
		if n.Start {
			class += " start"
		}
		if n.Final {
			class += " final"
		}
		d.Nodes = append(d.Nodes, Node{
			Name: n.Name, ID: n.ID, Class: class,
			// A switch's wait goes on a line of its own: a diamond grows
			// with its widest line.
			Lines: append([]string{n.Name}, strings.Split(n.Summary, "; ")...),
			Shape: look.shape, Fill: look.fill, Bold: n.Start,
		})
	}
	for _, e := range g.Edges {
		look := edgeLook[e.Kind]
		d.Edges = append(d.Edges, Edge{
			From: e.From, To: e.To, ID: e.ID, Class: "kind-" + e.Kind,
			Label: e.Label, Style: look.style, Color: look.color,
		})
	}
	return d
}
