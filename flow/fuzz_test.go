package flow_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

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
	f.Add([]byte(routingYAML))
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
		if r := snap.Routing(); r != nil {
			for _, to := range []string{"+49301234567", "030 1234567", "sip:x@y", ""} {
				got, ok := r.Route(to, nil, now)
				if ok && snap.Routing() != nil {
					if _, loaded := snap.Flow(got.Flow); !loaded {
						t.Fatalf("route %+v to a flow that is not loaded", got)
					}
				}
			}
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

// FuzzNormalizeNumber feeds arbitrary dialled numbers (a SIP Request-URI
// user, a tel: URI, what a REST client sends) to the routing table's
// normalisation: it must not panic, keep text valid, and be idempotent, so
// that a route written in E.164 matches what it produces.
func FuzzNormalizeNumber(f *testing.F) {
	for _, s := range []string{"+49 30 1234567", "030 1234567", "tel:+1-212-555-0100;ext=1", "sip:+4930@pbx", "sales", "0049", "+", "(0)30/123-45"} {
		f.Add(s, "DE")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, raw, country string) {
		if len(country) > 3 {
			country = country[:3]
		}
		n := flow.NormalizeNumber(raw, country)
		if utf8.ValidString(raw) && !utf8.ValidString(n) {
			t.Fatalf("NormalizeNumber(%q) = %q, not valid UTF-8", raw, n)
		}
		if strings.HasPrefix(n, "+") && len(n) > 1 {
			if again := flow.NormalizeNumber(n, country); again != n {
				t.Fatalf("NormalizeNumber(%q) = %q, then %q", raw, n, again)
			}
		}
		_ = flow.NormalizePrefix(raw, country)
	})
}
