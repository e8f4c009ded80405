// Package svgtest reads the SVG diagrams callctx draws, for tests: it
// parses them strictly with encoding/xml and checks them against the graph
// they draw.
package svgtest

import (
	"bytes"
	"encoding/xml"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/callctx/callctx/flow"
)

// Group is a node or edge group (<g class="node …"> or <g class="edge …">)
// of a diagram, with the text it shows.
type Group struct {
	ID, Class string
	Title     string
	Texts     []string
}

// Has reports whether the group's class lists c.
func (g Group) Has(c string) bool { return slices.Contains(strings.Fields(g.Class), c) }

// Text returns the group's text lines joined by spaces, runs of spaces as one.
func (g Group) Text() string { return strings.Join(strings.Fields(strings.Join(g.Texts, " ")), " ") }

// Parse parses an SVG document strictly and returns its node and edge
// groups. Anything that is not well-formed XML with an <svg> root fails the
// test.
func Parse(tb testing.TB, b []byte) []Group {
	tb.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	var groups []Group
	var cur *Group
	var inText, inTitle bool
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatalf("the SVG is not well-formed XML: %v\n%s", err, b)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = t.Name.Local
			}
			switch t.Name.Local {
			case "g":
				g := Group{}
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "id":
						g.ID = a.Value
					case "class":
						g.Class = a.Value
					}
				}
				if g.Has("node") || g.Has("edge") {
					groups = append(groups, g)
					cur = &groups[len(groups)-1]
				}
			case "text":
				inText = true
				if cur != nil {
					cur.Texts = append(cur.Texts, "")
				}
			case "title":
				inTitle = true
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "text":
				inText = false
			case "title":
				inTitle = false
			}
		case xml.CharData:
			switch {
			case cur == nil:
			case inText:
				cur.Texts[len(cur.Texts)-1] += string(t)
			case inTitle:
				cur.Title += string(t)
			}
		}
	}
	if root != "svg" {
		tb.Fatalf("the document's root is <%s>, want <svg>", root)
	}
	return groups
}

// CheckFlow parses the diagram of graph g and checks that it holds one
// node group per node and one edge group per edge, with the graph's IDs,
// and nothing else. It returns the groups by ID.
func CheckFlow(tb testing.TB, g *flow.Graph, svg []byte) map[string]Group {
	tb.Helper()
	byID := map[string]Group{}
	var nodes, edges, wantNodes, wantEdges []string
	for _, gr := range Parse(tb, svg) {
		byID[gr.ID] = gr
		if gr.Has("node") {
			nodes = append(nodes, gr.ID)
		} else {
			edges = append(edges, gr.ID)
		}
	}
	for _, n := range g.Nodes {
		wantNodes = append(wantNodes, n.ID)
	}
	for _, e := range g.Edges {
		wantEdges = append(wantEdges, e.ID)
	}
	for _, l := range [][]string{nodes, edges, wantNodes, wantEdges} {
		slices.Sort(l)
	}
	if !slices.Equal(nodes, wantNodes) {
		tb.Errorf("node elements %q, want one per node %q", nodes, wantNodes)
	}
	if !slices.Equal(edges, wantEdges) {
		tb.Errorf("edge elements %q, want one per edge %q", edges, wantEdges)
	}
	return byID
}
