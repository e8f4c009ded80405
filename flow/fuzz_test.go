package flow_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/yamldoc"
)

// FuzzLoad feeds arbitrary bytes to the flows loader as one file of the
// flows directory. Loading must never panic; a failure must be positioned
// problems in that file; whatever loads must simulate without panicking.
func FuzzLoad(f *testing.F) {
	for _, pattern := range []string{"testdata/*/*.yaml", "testdata/*/*/*.yaml", "../examples/*/flows/*.yaml"} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("flows:\n  f:\n    start: a\n    nodes:\n      a: {type: switch, cases: [], default: a}\n"))
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	getenv := env("https://crm.example.com")
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := flow.ParseFS(fstest.MapFS{"f.yaml": {Data: data}})
		var snap *flow.Snapshot
		var warns yamldoc.Errors
		if err == nil {
			snap, warns, err = flow.Compile(d, flow.CompileOptions{Getenv: getenv})
		}
		for _, e := range append(yamldoc.AsErrors(err), warns...) {
			if e.File != "f.yaml" || e.Line < 1 {
				t.Fatalf("problem without file or line: %#v", e)
			}
		}
		if err != nil {
			if len(yamldoc.AsErrors(err)) == 0 {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		for _, fl := range snap.Flows() {
			sim, err := flow.Simulate(snap, flow.SimulateOptions{Flow: fl.Name, Now: now, Inputs: []string{"1234", "AB12345"}, MaxActions: 20})
			if err != nil {
				// Only a loop of internal nodes may stop a simulation.
				if yamldoc.AsErrors(err) != nil {
					t.Fatalf("simulate %s: %v", fl.Name, err)
				}
				continue
			}
			if _, err := json.Marshal(sim); err != nil {
				t.Fatalf("simulation of %s does not marshal: %v", fl.Name, err)
			}
		}
	})
}
