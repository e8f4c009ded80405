package triggers_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/yamldoc"
	"github.com/callctx/callctx/triggers"
)

// FuzzCompile feeds arbitrary bytes as a flows directory file's triggers
// section, unchecked by the file format's schema: Compile must stand any
// JSON value. Whatever the input, compiling must not panic; a failure must
// be positioned problems in that file; a success must give triggers that
// evaluate, and explain, without panicking and with the same result.
func FuzzCompile(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/errors/*/*.y*ml")
	more, _ := filepath.Glob("../flow/testdata/dir/*/*.y*ml")
	errs, _ := filepath.Glob("../flow/testdata/dir/errors/*/*.y*ml")
	for _, p := range append(append(seeds, more...), errs...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(scenario))
	f.Add([]byte(`"`)) // a YAML error without a line: the first line
	f.Add([]byte("triggers:\n  a:\n    when: {var: ivr.v, op: in, value: [a, 1, true, null, [x], {k: v}]}\n"))
	vars := []triggers.Map{
		{},
		{"ivr.v": "a", "ivr.email": "x@y.z", "ivr.premium": true},
		{"ivr.v": json.Number("1e400"), "ivr.x": nil, "ivr.a": []any{"a", 1.0}, "ivr.b": map[string]any{"k": "v"}},
		{"ivr.v": "2025-03-10T09:00:00+01:00", "call.from": "+49301", "ivr.n": 3.5, "ivr.i": 7},
	}
	now := time.Date(2025, 3, 10, 8, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, err := parseDefs("f.yaml", data)
		var set *triggers.Set
		if err == nil {
			set, err = triggers.Compile(defs)
		}
		if err != nil {
			list := yamldoc.AsErrors(err)
			if len(list) == 0 {
				t.Fatalf("error without position: %v", err)
			}
			for _, e := range list {
				if e.File != "f.yaml" || e.Line < 1 {
					t.Fatalf("error without file or line: %#v", e)
				}
			}
			return
		}
		for _, tr := range set.All() {
			for _, v := range vars {
				got := tr.Eval(v, now)
				e := tr.Explain(v, now)
				if e.Result != got {
					t.Fatalf("%s: Eval=%v, Explain().Result=%v", tr.Name, got, e.Result)
				}
				if _, err := json.Marshal(e); err != nil {
					t.Fatalf("%s: marshal explanation: %v", tr.Name, err)
				}
			}
		}
	})
}
