package diagram_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/callctx/callctx/diagram"
	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/svgtest"
)

var (
	rendererOnce sync.Once
	renderer     *diagram.Renderer
	rendererErr  error
)

// mustRenderer returns one renderer for the package's tests: starting
// Graphviz's WebAssembly module is the expensive part.
func mustRenderer(tb testing.TB) *diagram.Renderer {
	tb.Helper()
	rendererOnce.Do(func() { renderer, rendererErr = diagram.New(context.Background(), 16) })
	if rendererErr != nil {
		tb.Fatal(rendererErr)
	}
	return renderer
}

func mustLoad(tb testing.TB, dir string) *flow.Snapshot {
	tb.Helper()
	snap, _, err := flow.Load(dir, flow.CompileOptions{AllowMissingSecrets: true})
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

func TestFlow_SVG(t *testing.T) {
	r := mustRenderer(t)
	snap := mustLoad(t, filepath.Join("..", "examples", "order-status", "flows"))
	f, ok := snap.Flow("order-status")
	if !ok {
		t.Fatal("no flow order-status")
	}
	g := f.Graph()
	svg, err := r.SVG(context.Background(), "", diagram.Flow(g))
	if err != nil {
		t.Fatal(err)
	}
	byID := svgtest.CheckFlow(t, g, svg)

	t.Run("NodesShowNameAndAction", func(t *testing.T) {
		welcome := byID["node-welcome"]
		if got, want := welcome.Texts, []string{"welcome", "play welcome-order-status"}; !slices.Equal(got, want) {
			t.Errorf("welcome shows %q, want %q", got, want)
		}
		if !welcome.Has("type-play") {
			t.Errorf("welcome's class %q names no type-play", welcome.Class)
		}
		start := byID["node-lookup-number"]
		if !start.Has("start") {
			t.Errorf("the start node's class %q has no start", start.Class)
		}
		if bye := byID["node-bye"]; !bye.Has("final") {
			t.Errorf("the hangup node's class %q has no final", bye.Class)
		}
	})

	t.Run("EdgesShowTriggerOrOutcome", func(t *testing.T) {
		labels := map[string]string{}
		for _, e := range g.Edges {
			labels[e.From+">"+e.To+" "+e.Kind] = byID[e.ID].Text()
		}
		for key, want := range map[string]string{
			"premium-check>to-agent case":      "premium",
			"premium-check>send-email default": "default",
			"inputReader>goodbye timeout":      "timeout",
			"inputReader>goodbye failure":      "failed",
			"to-agent>send-email failure":      "failed",
			"known-caller>premium-check case":  "caller-known",
		} {
			if got, ok := labels[key]; !ok || got != want {
				t.Errorf("edge %s is labelled %q (present: %v), want %q", key, got, ok, want)
			}
		}
	})

	t.Run("Cached", func(t *testing.T) {
		a, err := r.SVG(context.Background(), "k1", diagram.Flow(g))
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.SVG(context.Background(), "k1", &diagram.Graph{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Error("the same key drew again")
		}
	})
}

// TestGraph_Labels checks that text from the flows directory is shown as
// written, whatever it holds: quotes, backslashes, Graphviz's escapes,
// markup, control characters, invalid UTF-8.
func TestGraph_Labels(t *testing.T) {
	r := mustRenderer(t)
	for _, label := range []string{
		`say "hi"`, `ends with \`, `\N \G \E \T \H \L \l \r`, `<b>bold</b> & <script>x</script>`,
		"tab\tand\x00nul", "line\nbreak", "\xff\xfe bad", `"\"`, "]; x -> y [", "--> <!-- -->",
	} {
		t.Run(label, func(t *testing.T) {
			g := &diagram.Graph{
				Nodes: []diagram.Node{{Name: "a", ID: "node-a", Lines: []string{label}}, {Name: label, ID: "node-b", Lines: []string{"b"}}},
				Edges: []diagram.Edge{{From: "a", To: label, ID: "edge-0", Label: label}},
			}
			svg, err := r.SVG(context.Background(), "", g)
			if err != nil {
				t.Fatal(err)
			}
			groups := svgtest.Parse(t, svg)
			if len(groups) != 3 {
				t.Fatalf("%d groups, want 2 nodes and 1 edge:\n%s", len(groups), svg)
			}
			want := strings.Join(strings.Fields(strings.Map(func(r rune) rune {
				if r < ' ' || r == 0x7f {
					return ' '
				}
				return r
			}, strings.ToValidUTF8(label, "\uFFFD"))), " ")
			if got := groups[0].Text(); got != want {
				t.Errorf("node shows %q, want %q", got, want)
			}
			if e := groups[2].Text(); e != want {
				t.Errorf("edge shows %q, want %q", e, want)
			}
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if renderer != nil {
		renderer.Close()
	}
	os.Exit(code)
}

// FuzzFlowSVG draws generated flows: any size up to 300 nodes, any text in
// their prompts. The SVG must parse and hold one element per node and edge.
func FuzzFlowSVG(f *testing.F) {
	f.Add(uint64(1), uint16(12), "welcome")
	f.Add(uint64(2), uint16(200), `say "hi" \N <b>&amp;`)
	f.Add(uint64(3), uint16(1), "")
	f.Fuzz(func(t *testing.T, seed uint64, size uint16, text string) {
		fl, err := tryGenFlow(seed, 1+int(size)%300, text)
		if err != nil {
			t.Skip(err) // text the flows directory refuses
		}
		g := fl.Graph()
		svg, err := mustRenderer(t).SVG(context.Background(), "", diagram.Flow(g))
		if err != nil {
			t.Fatal(err)
		}
		svgtest.CheckFlow(t, g, svg)
	})
}
