// Package diagram lays out and draws callctx's graphs (call flows, number
// routing) as SVG with Graphviz's dot layout.
//
// It is the one package that imports go-graphviz, which runs Graphviz
// compiled to WebAssembly inside the process (wazero): pure Go, no cgo, no
// dot binary. That module is one per process and single-threaded, so every
// layout here takes one lock; a Renderer keeps the diagrams it drew, since
// the graphs it is given (a snapshot's flows) never change.
package diagram

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-graphviz"
)

// Graph is what a diagram shows: boxes joined by labelled arrows.
type Graph struct {
	// LeftToRight lays ranks out from left to right; top to bottom when
	// false.
	LeftToRight bool
	Nodes       []Node
	Edges       []Edge
}

// Node is one box.
type Node struct {
	Name  string // unique in the graph; edges name it
	ID    string // the SVG element's id
	Class string // the SVG element's class, beside Graphviz's "node"
	Lines []string
	Shape string // a Graphviz shape: box, diamond, hexagon, …
	Fill  string // a colour
	Bold  bool   // a thicker outline
}

// Edge is one arrow between two nodes.
type Edge struct {
	From, To string
	ID       string // the SVG element's id
	Class    string // the SVG element's class, beside Graphviz's "edge"
	Label    string
	Style    string // solid, dashed, dotted
	Color    string
}

// Renderer draws graphs. It is safe for concurrent use.
type Renderer struct {
	gv *graphviz.Graphviz

	mu    sync.Mutex
	cache map[string][]byte
	order []string // cache keys, oldest first
	max   int
}

// layoutMu serialises every use of the WebAssembly module, which
// go-graphviz holds once per process.
var layoutMu sync.Mutex

// New returns a renderer that keeps up to cached diagrams by key.
func New(ctx context.Context, cached int) (*Renderer, error) {
	layoutMu.Lock()
	defer layoutMu.Unlock()
	gv, err := graphviz.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("diagram: start graphviz: %w", err)
	}
	return &Renderer{gv: gv, cache: map[string][]byte{}, max: cached}, nil
}

// Close releases the renderer's Graphviz context.
func (r *Renderer) Close() error {
	layoutMu.Lock()
	defer layoutMu.Unlock()
	return r.gv.Close()
}

// SVG lays g out and returns it as an SVG document. A non-empty key names
// the graph for the cache: the same key returns the same document without
// laying it out again, so it must change whenever g does.
func (r *Renderer) SVG(ctx context.Context, key string, g *Graph) ([]byte, error) {
	if key != "" {
		r.mu.Lock()
		b, ok := r.cache[key]
		r.mu.Unlock()
		if ok {
			return b, nil
		}
	}
	b, err := r.render(ctx, g)
	if err != nil || key == "" || r.max <= 0 {
		return b, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cache[key]; !ok {
		r.cache[key] = b
		r.order = append(r.order, key)
		if len(r.order) > r.max {
			delete(r.cache, r.order[0])
			r.order = r.order[1:]
		}
	}
	return b, nil
}

func (r *Renderer) render(ctx context.Context, g *Graph) ([]byte, error) {
	src := g.DOT()
	layoutMu.Lock()
	defer layoutMu.Unlock()
	parsed, err := graphviz.ParseBytes(src)
	if err != nil {
		return nil, fmt.Errorf("diagram: parse: %w", err)
	}
	defer parsed.Close()
	var out bytes.Buffer
	if err := r.gv.Render(ctx, parsed, graphviz.SVG, &out); err != nil {
		return nil, fmt.Errorf("diagram: lay out: %w", err)
	}
	return out.Bytes(), nil
}

// DOT returns the graph in Graphviz's language, as it is laid out.
func (g *Graph) DOT() []byte {
	var b bytes.Buffer
	b.WriteString("digraph {\n")
	rankdir := "TB"
	if g.LeftToRight {
		rankdir = "LR"
	}
	fmt.Fprintf(&b, "graph [rankdir=%s nodesep=0.35 ranksep=0.45 pad=0.2 fontname=Helvetica ]\n", rankdir)
	b.WriteString("node [fontname=Helvetica fontsize=11 style=\"rounded,filled\" color=\"#5b6475\" margin=\"0.15,0.06\"]\n")
	b.WriteString("edge [fontname=Helvetica fontsize=10 color=\"#5b6475\" fontcolor=\"#3d4657\" arrowsize=0.7]\n")
	names := g.dotNames()
	for _, n := range g.Nodes {
		b.WriteString(quote(names[n.Name]))
		penwidth := ""
		if n.Bold {
			penwidth = "2"
		}
		attrs(&b, "id", n.ID, "class", n.Class, "label", strings.Join(cleanAll(n.Lines), "\n"),
			"shape", n.Shape, "fillcolor", n.Fill, "penwidth", penwidth)
	}
	for _, e := range g.Edges {
		b.WriteString(quote(names[e.From]) + " -> " + quote(names[e.To]))
		label := clean(e.Label)
		if label != "" {
			label = " " + label + " " // room between the label and its arrow
		}
		attrs(&b, "id", e.ID, "class", e.Class, "label", label, "style", e.Style, "color", e.Color)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// dotNames gives each node a name fit for Graphviz, its own where it can:
// shown as the node's SVG title, a name must be printable, and unique.
func (g *Graph) dotNames() map[string]string {
	names := make(map[string]string, len(g.Nodes))
	taken := make(map[string]bool, len(g.Nodes))
	name := func(s string) string {
		if n, ok := names[s]; ok {
			return n
		}
		n := printable(s)
		for i := 2; taken[n]; i++ {
			n = printable(s) + "#" + strconv.Itoa(i)
		}
		names[s], taken[n] = n, true
		return n
	}
	for _, n := range g.Nodes {
		name(n.Name)
	}
	for _, e := range g.Edges { // an edge to a node not listed makes one, as in DOT
		name(e.From)
		name(e.To)
	}
	return names
}

// attrs ends a node or edge statement with its attribute list: name, value
// pairs, those with an empty value left out.
func attrs(b *bytes.Buffer, kv ...string) {
	sep := " ["
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		b.WriteString(sep + kv[i] + "=" + quote(kv[i+1]))
		sep = " "
	}
	if sep == " " {
		b.WriteByte(']')
	}
	b.WriteByte('\n')
}

// quote makes s a quoted DOT string that Graphviz shows as written: its
// escape sequences (\n, \N, \G, …) start with a backslash, so backslashes
// are doubled, and quotes are escaped. A line break in s stays one.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// maxLine is the longest line a box shows; the rest is cut with an
// ellipsis (the graph's JSON has it whole).
const maxLine = 56

// printable returns s as valid UTF-8 without control characters.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// clean makes a line fit to show: printable, at most maxLine characters.
func clean(s string) string {
	s = printable(s)
	if utf8.RuneCountInString(s) > maxLine {
		s = string([]rune(s)[:maxLine-1]) + "…"
	}
	return s
}

func cleanAll(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, clean(l))
	}
	return out
}
