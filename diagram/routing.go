package diagram

import (
	"strconv"
	"strings"

	"github.com/callctx/callctx/flow"
)

// Routing returns the diagram of a routing table's graph, left to right:
// the routes in the order they are tried (numbered), the default, and the
// flows they lead to. Each node's SVG group has the graph node's ID and
// the class kind-route, kind-default or kind-flow.
func Routing(g *flow.RoutingGraph) *Graph {
	d := &Graph{LeftToRight: true, Nodes: make([]Node, 0, len(g.Nodes)), Edges: make([]Edge, 0, len(g.Edges))}
	n := 0
	for _, rn := range g.Nodes {
		node := Node{Name: rn.ID, ID: rn.ID, Class: "kind-" + rn.Kind, Shape: "box"}
		switch rn.Kind {
		case "route":
			n++
			summary, trigger, _ := strings.Cut(rn.Summary, ", if ")
			node.Lines = []string{strconv.Itoa(n) + ". " + rn.Label, summary}
			if trigger != "" {
				node.Lines = append(node.Lines, "if "+trigger)
			}
			node.Fill = "#fff4e0"
		case "default":
			node.Lines = []string{"default", rn.Summary}
			node.Fill = "#eceef2"
		default:
			node.Lines = []string{rn.Label}
			node.Fill, node.Bold = "#e8f0fe", true
		}
		d.Nodes = append(d.Nodes, node)
	}
	for _, e := range g.Edges {
		d.Edges = append(d.Edges, Edge{From: e.From, To: e.To, ID: e.ID, Class: "kind-route"})
	}
	return d
}
