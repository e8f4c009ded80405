package diagram_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/callctx/callctx/diagram"
)

// BenchmarkLayout200 lays out and draws a generated flow of 200 nodes
// (an IVR's tree of menus with ways back, as genFlow makes them) with
// go-graphviz, then the same DOT with the native dot of Debian's graphviz
// package, the anchor (a process per diagram, as a server calling dot would
// run it). The last line prints both and the ratio. make bench-diagram
// installs graphviz.
func BenchmarkLayout200(b *testing.B) {
	g := diagram.Flow(genFlow(b, 200, 200, "welcome-prompt").Graph())
	r := mustRenderer(b)
	var ours, anchor time.Duration
	b.Run("go-graphviz", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.SVG(context.Background(), "", g); err != nil {
				b.Fatal(err)
			}
		}
		ours = b.Elapsed() / time.Duration(b.N)
	})
	dot, err := exec.LookPath("dot")
	if err != nil {
		b.Logf("no dot on PATH, so no anchor: make bench-diagram installs graphviz")
		return
	}
	src := g.DOT()
	b.Run("dot-native", func(b *testing.B) {
		for b.Loop() {
			cmd := exec.Command(dot, "-Tsvg")
			cmd.Stdin = bytes.NewReader(src)
			if out, err := cmd.Output(); err != nil || len(out) == 0 {
				b.Fatalf("dot: %v", err)
			}
		}
		anchor = b.Elapsed() / time.Duration(b.N)
	})
	fmt.Printf("layout of %d nodes, %d edges: go-graphviz %.1f ms, native dot %.1f ms; ratio %.2f\n",
		len(g.Nodes), len(g.Edges), ms(ours), ms(anchor), float64(ours)/float64(anchor))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
