package session_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/jsontest"
	"github.com/callctx/callctx/session"
)

func TestCompactValue_Unreadable(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"\"M\xfcller\"", "not valid UTF-8: byte 0xFC"},
		{`"\ud800"`, `lone UTF-16 surrogate \ud800`},
		{`"\ud800\u0041"`, `lone UTF-16 surrogate \ud800`},
		{`"\udfff\ud83d"`, `lone UTF-16 surrogate \udfff`},
		{`{"k":"\ud83d"}`, `lone UTF-16 surrogate \ud83d`},
		{`1e400`, "beyond the range of a 64-bit float"},
		{`{"a":[-1.8e308]}`, "beyond the range of a 64-bit float"},
		{`1` + strings.Repeat("0", 400), "beyond the range of a 64-bit float"},
		{strings.Repeat("[", 33) + strings.Repeat("]", 33), "nests more than 32 levels"},
	} {
		_, err := session.CompactValue(json.RawMessage(tc.value), 1<<20)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CompactValue(%q) = %v, want an error saying %q", tc.value, err, tc.want)
		}
	}
	for _, ok := range []string{`"\ud83d\ude00"`, `"\\ud800"`, `"\ufffd"`, "\"\xef\xbf\xbd\"", `1.7976931348623157e308`, `1e-400`,
		`123456789012345678901234567890`, `"M` + "\u00fc" + `ller"`, strings.Repeat("[", 32) + strings.Repeat("]", 32), `{"a\"[":"]["}`} {
		if _, err := session.CompactValue(json.RawMessage(ok), 1<<20); err != nil {
			t.Errorf("CompactValue(%q) = %v, want it accepted", ok, err)
		}
	}
}

// FuzzCompactValue: a value is accepted exactly when it is well-formed JSON
// that a strict client reads back (the independent oracle of jsontest),
// nested at most MaxValueDepth levels and within the size limit; an
// accepted value is its compact form.
func FuzzCompactValue(f *testing.F) {
	for _, s := range []string{`"a"`, `1e400`, `"\ud800"`, "\"\xff\"", `{"a":[1,2,{"b":null}]}`, `-0.0`, `"\ud83d\ude00"`, `"\\\ud800"`, ` null `, `[[[[1]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		const max = 1 << 12
		got, err := session.CompactValue(raw, max)
		var compact bytes.Buffer
		well := json.Compact(&compact, bytes.TrimSpace(raw)) == nil
		want := well && compact.Len() <= max && jsontest.Strict(compact.Bytes()) == nil && depth(compact.Bytes()) <= session.MaxValueDepth
		if (err == nil) != want {
			t.Fatalf("CompactValue(%q): %v; the oracle says accepted=%v", raw, err, want)
		}
		if err == nil && got != nil && !bytes.Equal(got, compact.Bytes()) {
			t.Fatalf("CompactValue(%q) = %q, want %q", raw, got, compact.Bytes())
		}
	})
}

// depth measures nesting by decoding, independently of the product's scan.
func depth(b []byte) int {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return 0
	}
	var walk func(any) int
	walk = func(v any) int {
		d := 0
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				d = max(d, walk(e))
			}
			return d + 1
		case map[string]any:
			for _, e := range x {
				d = max(d, walk(e))
			}
			return d + 1
		}
		return 0
	}
	return walk(v)
}
