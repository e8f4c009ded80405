package yamldoc_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/callctx/callctx/internal/yamldoc"
)

// FuzzParse: whatever the bytes, Parse must not panic; an error must name
// the file and a line; a document must be a JSON value whose positions are
// known, and validating it must not panic either.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../../flow/testdata/dir/*/*/*.y*ml")
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{"a: 1", "a: &x [*x]", "? [a]\n: 1", "a: !!binary aGk=", "\"", "a: {b: 1\n", "x: &x {k: v}\ny:\n  <<: *x"} {
		f.Add([]byte(s))
	}
	schema := mustSchema(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := yamldoc.Parse("f.yaml", data)
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
		if _, err := json.Marshal(d.Value); err != nil {
			t.Fatalf("value is not JSON: %v", err)
		}
		for _, e := range schema.Validate(d) {
			if e.Line < 1 {
				t.Fatalf("schema error without line: %#v", e)
			}
		}
	})
}
