package api_test

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/callctx/callctx/api"
)

// TestBadInput sends what a careless or hostile client might; each request
// gets the right 4xx problem, nothing is written, and the server keeps
// serving.
func TestBadInput(t *testing.T) {
	_, s := newTestServer(t, []api.Token{{Name: "crm", SHA256: sha256.Sum256([]byte("t0k")), Scopes: []api.Scope{api.ScopeAdmin}}})
	s.token = "t0k"
	id := s.createCall(nil)
	sessPath := "/v1/sessions/" + id
	before := s.do("GET", sessPath, nil)

	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprintf(`"ivr.v%d":1`, i)
	}
	for _, tc := range []struct {
		name        string
		method      string
		path        string
		body        string
		headers     []string
		status      int
		wantPointer string // a pointer the problem must name, if any
	}{
		{name: "malformed JSON", method: "POST", path: sessPath, body: `{"ivr.a":`, status: 400},
		{name: "not JSON at all", method: "POST", path: sessPath, body: `ivr.a=1`, status: 400},
		{name: "trailing garbage", method: "POST", path: sessPath, body: `{"ivr.a":1} {}`, status: 400},
		{name: "empty body", method: "POST", path: sessPath, body: ` `, status: 400},
		{name: "array body", method: "POST", path: sessPath, body: `[{"ivr.a":1}]`, status: 422, wantPointer: ""},
		{name: "string body", method: "POST", path: sessPath, body: `"ivr.a"`, status: 422},
		{name: "null body", method: "POST", path: sessPath, body: `null`, status: 422},
		{name: "number body", method: "POST", path: sessPath, body: ` 42 `, status: 422, wantPointer: ""},
		{name: "wrong type in call", method: "POST", path: "/v1/calls", body: `{"from":5,"to":"b"}`, status: 422, wantPointer: "/from"},
		{name: "unknown field in call", method: "POST", path: "/v1/calls", body: `{"from":"a","to":"b","colour":"red"}`, status: 422, wantPointer: "/colour"},
		{name: "missing field in call", method: "POST", path: "/v1/calls", body: `{"from":"a"}`, status: 422, wantPointer: "/to"},
		{name: "unknown field in end", method: "POST", path: "/v1/calls/" + id + "/end", body: `{"why":"x"}`, status: 422, wantPointer: "/why"},
		{name: "huge body", method: "POST", path: sessPath, body: `{"ivr.a":"` + strings.Repeat("x", 100<<10) + `"}`, status: 413},
		{name: "name with space", method: "POST", path: sessPath, body: `{"ivr.my email":"a"}`, status: 422, wantPointer: "/ivr.my email"},
		{name: "name with control character", method: "POST", path: sessPath, body: `{"ivr.a\u0007":"a"}`, status: 422, wantPointer: "/ivr.a\a"},
		{name: "name with NUL", method: "POST", path: sessPath, body: `{"ivr.a\u0000b":"a"}`, status: 422, wantPointer: "/ivr.a\x00b"},
		{name: "name with newline", method: "POST", path: sessPath, body: `{"ivr.a\nX-Injected: 1":"a"}`, status: 422},
		{name: "non-ASCII name", method: "POST", path: sessPath, body: `{"ivr.café":"a"}`, status: 422, wantPointer: "/ivr.café"},
		{name: "name too long", method: "POST", path: sessPath, body: `{"ivr.` + strings.Repeat("n", 200) + `":1}`, status: 422},
		{name: "read-only namespace", method: "POST", path: sessPath, body: `{"call.from":"+1"}`, status: 422, wantPointer: "/call.from"},
		{name: "unknown namespace", method: "POST", path: sessPath, body: `{"crm.x":1}`, status: 422, wantPointer: "/crm.x"},
		{name: "value too large", method: "POST", path: sessPath, body: `{"ivr.big":"` + strings.Repeat("x", 9000) + `"}`, status: 422, wantPointer: "/ivr.big"},
		{name: "too many variables", method: "POST", path: sessPath, body: "{" + strings.Join(many, ",") + "}", status: 422, wantPointer: "/ivr.v0"},
		{name: "deep nesting in a value", method: "POST", path: sessPath, body: `{"ivr.deep":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, status: 422, wantPointer: "/ivr.deep"},
		{name: "nesting beyond the decoder", method: "POST", path: sessPath, body: `{"ivr.deep":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, status: 400},
		{name: "text/plain", method: "POST", path: sessPath, body: `{"ivr.a":1}`, headers: []string{"Content-Type", "text/plain"}, status: 415},
		{name: "form encoded", method: "POST", path: sessPath, body: `{"ivr.a":1}`, headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415},
		{name: "no content type", method: "POST", path: sessPath, body: `{"ivr.a":1}`, headers: []string{"Content-Type", ""}, status: 415},
		{name: "merge-patch on create call", method: "POST", path: "/v1/calls", body: `{"from":"a","to":"b"}`, headers: []string{"Content-Type", "application/merge-patch+json"}, status: 415},
		{name: "malformed If-Match", method: "POST", path: sessPath, body: `{"ivr.a":1}`, headers: []string{"If-Match", "W/\"1\""}, status: 400},
		{name: "stale If-Match", method: "POST", path: sessPath, body: `{"ivr.a":1}`, headers: []string{"If-Match", `"999"`}, status: 412},
		{name: "missing auth", method: "POST", path: sessPath, body: `{"ivr.a":1}`, headers: []string{"Authorization", ""}, status: 401},
		{name: "wrong auth scheme", method: "POST", path: sessPath, body: `{"ivr.a":1}`, headers: []string{"Authorization", "Basic dDBrOg=="}, status: 401},
		{name: "unknown route", method: "POST", path: "/v1/session/" + id, body: `{"ivr.a":1}`, status: 404},
		{name: "call ID with bad characters", method: "POST", path: "/v1/sessions/a%20b", body: `{"ivr.a":1}`, status: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.do(tc.method, tc.path, tc.body, tc.headers...)
			p := wantProblem(t, res, tc.status, "")
			if tc.wantPointer != "" && !slices.Contains(pointers(p), tc.wantPointer) {
				t.Fatalf("pointers %q lack %q", pointers(p), tc.wantPointer)
			}
			if res := s.do("GET", "/healthz", nil); res.Status != http.StatusOK {
				t.Fatalf("server stopped serving: %d", res.Status)
			}
		})
	}
	after := s.do("GET", sessPath, nil)
	if string(after.Body) != string(before.Body) {
		t.Fatalf("bad input changed the session:\nbefore %s\nafter  %s", before.Body, after.Body)
	}
	if res := s.do("POST", sessPath, `{"ivr.ok":true}`); res.Status != 200 {
		t.Fatalf("a good write after the bad ones: %d %s", res.Status, res.Body)
	}
}
