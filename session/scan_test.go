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
