package flow

import (
	"strconv"
)

// RoutingGraph is a routing table as a diagram shows it: a node per route,
// in the order they are tried, and for the default; a node per flow they
// send calls to; an edge from each route to its flow.
type RoutingGraph struct {
	Country string        `json:"country,omitempty"`
	Nodes   []RoutingNode `json:"nodes"`
	Edges   []GraphEdge   `json:"edges"`
}

// RoutingNode is a route, the default or a flow.
type RoutingNode struct {
	// ID names the node's element in the diagram: route-<index>,
	// route-default or flow-<name>.
	ID   string `json:"id"`
	Kind string `json:"kind"` // route, default or flow
	// Label is the route's name (what call.route records) or the flow's.
	Label string `json:"label"`
	// Summary says what a route takes: "number +4930…", "prefix +49800"
	// or "pattern …", and its trigger.
	Summary string `json:"summary"`
	Trigger string `json:"trigger,omitempty"`
}

// Graph returns the routing table's graph; a nil table has none.
func (r *Routing) Graph() *RoutingGraph {
	g := &RoutingGraph{Nodes: []RoutingNode{}, Edges: []GraphEdge{}}
	if r == nil {
		return g
	}
	g.Country = r.Country
	flows := map[string]bool{}
	edge := func(from, to, trigger string) {
		label := ""
		if trigger != "" {
			label = "if " + trigger
		}
		g.Edges = append(g.Edges, GraphEdge{ID: "edge-" + strconv.Itoa(len(g.Edges)), From: from, To: to, Kind: EdgeNext, Trigger: trigger, Label: label})
	}
	flowNode := func(name string) string {
		if !flows[name] {
			flows[name] = true
			g.Nodes = append(g.Nodes, RoutingNode{ID: "flow-" + name, Kind: "flow", Label: name, Summary: "flow " + name})
		}
		return "flow-" + name
	}
	for i, rt := range r.Routes {
		n := RoutingNode{ID: "route-" + strconv.Itoa(i), Kind: "route", Label: rt.Name, Summary: rt.Match()}
		if rt.When != nil {
			n.Trigger = rt.When.Name
			n.Summary += ", if " + rt.When.Name + " fires"
		}
		g.Nodes = append(g.Nodes, n)
		edge(n.ID, flowNode(rt.Flow), n.Trigger)
	}
	if r.Default != "" {
		g.Nodes = append(g.Nodes, RoutingNode{ID: "route-" + DefaultRoute, Kind: "default", Label: DefaultRoute, Summary: "any number no route takes"})
		edge("route-"+DefaultRoute, flowNode(r.Default), "")
	}
	return g
}
