package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestWrite_UnreadableText: a value that strict clients cannot read back
// (bytes that are not UTF-8, a lone UTF-16 surrogate, a number beyond a
// 64-bit float) is refused with 422 naming the variable on every HTTP path
// that writes variables, and nothing is written.
func TestWrite_UnreadableText(t *testing.T) {
	s := newFlowServer(t)
	for _, value := range []struct{ name, json, detail string }{
		{"Latin1", "\"M\xfcller\"", "UTF-8"},
		{"LoneSurrogate", `"\ud800"`, "surrogate"},
		{"LoneLowSurrogate", `"a\udc00b"`, "surrogate"},
		{"Nested", `{"a":["\ud83d"]}`, "surrogate"},
		{"FloatOverflow", `1e400`, "64-bit float"},
		{"NegativeOverflow", `[-2e308]`, "64-bit float"},
	} {
		t.Run(value.name, func(t *testing.T) {
			id := s.createCall(map[string]any{"from": "a", "to": "b", "flow": "hotline"})
			before := s.do("GET", "/v1/sessions/"+id, nil).Body
			for _, w := range []struct {
				method, path, body, pointer string
			}{
				{"POST", "/v1/sessions/" + id, `{"ivr.name":` + value.json + `}`, "/ivr.name"},
				{"PATCH", "/v1/sessions/" + id, `{"ivr.name":` + value.json + `}`, "/ivr.name"},
				{"POST", "/v1/calls", `{"from":"a","to":"b","variables":{"ivr.name":` + value.json + `}}`, "/variables/ivr.name"},
				{"PUT", "/api/v2/sessions/" + id, `{"ivr.name":` + value.json + `}`, "/ivr.name"},
				{"PUT", "/api/v2/calls/" + id + "/session/set", `{"variables":{"app.name":` + value.json + `}}`, "/variables/app.name"},
			} {
				res := s.do(w.method, w.path, w.body)
				p := wantProblem(t, res, http.StatusUnprocessableEntity, "")
				if !slices.Contains(pointers(p), w.pointer) || !strings.Contains(string(res.Body), value.detail) {
					t.Errorf("%s %s: pointers %q, body %s; want %s and %q", w.method, w.path, pointers(p), res.Body, w.pointer, value.detail)
				}
			}
			if after := s.do("GET", "/v1/sessions/"+id, nil).Body; string(after) != string(before) {
				t.Fatalf("the session changed:\n%s\n%s", before, after)
			}
		})
	}
	t.Run("FlowInput", func(t *testing.T) {
		id := s.createCall(map[string]any{"from": "a", "to": "b", "flow": "hotline"})
		s.do("POST", "/v1/calls/"+id+"/flow/next", nil)
		s.do("POST", "/v1/calls/"+id+"/flow/next", `{"status":"done","step":1}`)
		for _, in := range []string{"\"47\xff1\"", `"47\udbff"`} {
			res := s.do("POST", "/v1/calls/"+id+"/flow/next", `{"input":`+in+`,"step":2}`)
			p := wantProblem(t, res, http.StatusUnprocessableEntity, "")
			if !slices.Contains(pointers(p), "/input") || !strings.Contains(p["detail"].(string), "app.ask.pin") {
				t.Errorf("input %s: %s; want /input and the variable app.ask.pin named", in, res.Body)
			}
		}
		// The flow stands where it stood: a good input still goes on.
		if res := s.do("POST", "/v1/calls/"+id+"/flow/next", `{"input":"4711","step":2}`); res.Status != http.StatusOK {
			t.Fatalf("good input after the refused ones: %d %s", res.Status, res.Body)
		}
	})
	t.Run("Accepted", func(t *testing.T) {
		id := s.createCall(nil)
		// What is valid stays accepted: a surrogate pair, U+FFFD itself,
		// the largest float, tiny numbers, long integers.
		body := `{"ivr.a":"\ud83d\ude00 \ufffd M` + "\u00fc" + `ller","ivr.b":1.7976931348623157e308,"ivr.c":1e-400,"ivr.d":123456789012345678901234567890}`
		if res := s.do("POST", "/v1/sessions/"+id, body); res.Status != http.StatusOK {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
	})
}
