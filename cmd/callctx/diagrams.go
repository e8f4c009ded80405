package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/callctx/callctx/diagram"
	"github.com/callctx/callctx/flow"
)

// writeDiagrams writes the diagram of every flow of snap to dir/<flow>.svg,
// as GET /v1/flows/{name}/graph?format=svg draws it.
func writeDiagrams(snap *flow.Snapshot, dir string, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("check --svg: %w", err)
	}
	r, err := diagram.New(context.Background(), 0)
	if err != nil {
		return fmt.Errorf("check --svg: %w", err)
	}
	defer r.Close()
	for _, f := range snap.Flows() {
		svg, err := r.SVG(context.Background(), "", diagram.Flow(f.Graph()))
		if err != nil {
			return fmt.Errorf("check --svg: flow %s: %w", f.Name, err)
		}
		path := filepath.Join(dir, f.Name+".svg")
		if err := os.WriteFile(path, svg, 0o644); err != nil {
			return fmt.Errorf("check --svg: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s (%d nodes)\n", path, len(f.Nodes))
	}
	return nil
}
