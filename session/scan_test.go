package session_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// FuzzParseVariables: ParseVariables accepts exactly what json.Unmarshal
// into map[string]json.RawMessage accepts, with the same result.
func FuzzParseVariables(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "ivr.a" : 1 , "ivr.b":"x" } `, `{"ivr.a":{"b":[1,2,{"c":null}]},"ivr.c":[]}`,
		`{"a\u00e9\n":true,"a":false,"a":null}`, `{"n":-0.5e+10}`, `{"n":01}`, `{"n":1.}`, `{"s":"\x01"}`,
		`{"s":"\ud800"}`, `{"s":"\q"}`, `[]`, `{"a":1}x`, `{"a":1,}`, `{"a"}`, `{"a":tru}`, `"x"`, ``,
		`{"a":"é€"}`, "{\"a\":\"\xff\"}", `{"a":[1,]}`, `{"a":1e}`, `{"a":-}`, `{"a":[[[[[]]]]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal(data, &want)
		got, err := session.ParseVariables(bytes.Clone(data))
		if wantErr == nil && want == nil { // JSON null: encoding/json gives a nil map, a write needs an object
			if err == nil {
				t.Fatalf("ParseVariables(%q) accepted null", data)
			}
			return
		}
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("ParseVariables(%q): err %v, encoding/json: %v", data, err, wantErr)
		}
		if err != nil {
			return
		}
		if !maps.EqualFunc(got, want, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Fatalf("ParseVariables(%q) = %q, encoding/json: %q", data, got, want)
		}
	})
}

func TestSession_UnmarshalJSON(t *testing.T) {
	s := &session.Session{
		CallID: "c-1\u00e9", State: session.StateEnded, Version: 7,
		Variables: map[string]json.RawMessage{"ivr.a": json.RawMessage(`{"k":["x\"y",1.5e3,null]}`), "ivr.b": json.RawMessage(`"\u00e9\n"`)},
		CreatedAt: time.Date(2026, 11, 20, 9, 0, 0, 1, time.UTC), UpdatedAt: time.Date(2026, 11, 20, 9, 0, 1, 0, time.UTC),
	}
	var got session.Session
	if err := got.UnmarshalJSON(s.AppendJSON(nil)); err != nil {
		t.Fatal(err)
	}
	if string(got.AppendJSON(nil)) != string(s.AppendJSON(nil)) {
		t.Fatalf("round trip:\n got %s\nwant %s", got.AppendJSON(nil), s.AppendJSON(nil))
	}
}

// TestParseVariables_depth: nesting is bounded through objects as through arrays, where
// encoding/json bounds it, so a deep body cannot run the scanner's recursion away.
func TestParseVariables_depth(t *testing.T) {
	for _, depth := range []int{100, 9998, 10001, 50000} {
		for _, open := range []string{`{"a":`, `[`, `[{"a":`} {
			closing := map[string]string{`{"a":`: `}`, `[`: `]`, `[{"a":`: `}]`}[open]
			var b bytes.Buffer
			b.WriteString(`{"ivr.x":`)
			for range depth {
				b.WriteString(open)
			}
			b.WriteString(`1`)
			for range depth {
				b.WriteString(closing)
			}
			b.WriteString(`}`)
			var want map[string]json.RawMessage
			wantErr := json.Unmarshal(b.Bytes(), &want)
			_, err := session.ParseVariables(b.Bytes())
			if (err != nil) != (wantErr != nil) {
				t.Errorf("depth %d of %s: err %v, encoding/json: %v", depth, open, err, wantErr)
			}
		}
	}
}
