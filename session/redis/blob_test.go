package redis

import (
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

func TestBlob_RoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 20, 9, 0, 0, 123456789, time.UTC)
	for _, vars := range []map[string]json.RawMessage{
		{},
		{"ivr.a": json.RawMessage(`1`)},
		{"ivr.s": json.RawMessage(`"a\u0000b \" \\ <&>"`), "app.o": json.RawMessage(`{"k":[1,{"x":null}]}`), "call.id": json.RawMessage(`"c-1"`)},
	} {
		in := &session.Session{CallID: "c-1", State: session.StateEnded, Version: 42, Variables: vars, CreatedAt: at, UpdatedAt: at.Add(time.Second)}
		out, h, err := decodeBlob("c-1", encodeBlob(in))
		if err != nil {
			t.Fatal(err)
		}
		if out.Version != 42 || out.State != session.StateEnded || !out.CreatedAt.Equal(in.CreatedAt) || !out.UpdatedAt.Equal(in.UpdatedAt) {
			t.Fatalf("header %+v", out)
		}
		if h.count != len(vars) || h.bytes != in.Size() {
			t.Fatalf("counters %d, %d; want %d, %d", h.count, h.bytes, len(vars), in.Size())
		}
		if !maps.EqualFunc(out.Variables, vars, func(a, b json.RawMessage) bool { return string(a) == string(b) }) {
			t.Fatalf("variables %v, want %v", out.Variables, vars)
		}
		js, version, err := blobJSON("c-1", encodeBlob(in))
		if err != nil || version != 42 || string(js) != string(in.AppendJSON(nil)) {
			t.Fatalf("blobJSON = %s, %d, %v; want %s", js, version, err, in.AppendJSON(nil))
		}
	}
}

// FuzzDecodeBlob: whatever is stored under a session key, decoding it
// never panics, and what it accepts encodes back to the same session.
func FuzzDecodeBlob(f *testing.F) {
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	f.Add(encodeBlob(&session.Session{Version: 1, State: session.StateActive, CreatedAt: at, UpdatedAt: at,
		Variables: map[string]json.RawMessage{"ivr.a": json.RawMessage(`"x"`)}}))
	f.Add("1\x001\x00active\x002026-11-20T09:00:00Z\x002026-11-20T09:00:00Z\x000\x000")
	f.Add("1\x00")
	f.Add("")
	f.Add("2\x001\x00a\x00b\x00c\x000\x000")
	f.Fuzz(func(t *testing.T, blob string) {
		s, _, err := decodeBlob("c", blob)
		if _, _, jerr := blobJSON("c", blob); err == nil && jerr != nil {
			t.Fatalf("%q decodes but blobJSON refuses it: %v", blob, jerr)
		}
		if err != nil {
			return
		}
		again, _, err := decodeBlob("c", encodeBlob(s))
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", blob, err)
		}
		if again.Version != s.Version || again.State != s.State || len(again.Variables) != len(s.Variables) {
			t.Fatalf("%q: %+v became %+v", blob, s, again)
		}
	})
}
