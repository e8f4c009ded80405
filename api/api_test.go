package api_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/callctx/callctx"
	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/session"
)

func TestCalls(t *testing.T) {
	_, s := newTestServer(t, nil)

	t.Run("Create", func(t *testing.T) {
		res := s.do("POST", "/v1/calls", map[string]any{"from": "+4930123456", "to": "+4940555000", "flow": "order-status", "variables": map[string]any{"ivr.language": "de"}})
		if res.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		c := res.JSON(t)
		id := c["id"].(string)
		if got, want := res.Header.Get("Location"), "/v1/calls/"+id; got != want {
			t.Fatalf("Location=%q, want %q", got, want)
		}
		for k, want := range map[string]any{"state": "active", "from": "+4930123456", "to": "+4940555000", "direction": "inbound", "flow": "order-status", "endedAt": nil, "endReason": nil, "parentId": nil} {
			if c[k] != want {
				t.Errorf("%s=%v, want %v", k, c[k], want)
			}
		}
		sess := s.do("GET", "/v1/sessions/"+id, nil).JSON(t)
		if v := sess["variables"].(map[string]any)["ivr.language"]; v != "de" {
			t.Fatalf("seed variable ivr.language=%v", v)
		}
	})

	t.Run("CreateWithID", func(t *testing.T) {
		if got := s.createCall(map[string]any{"id": "ivr-42", "from": "a", "to": "b", "direction": "outbound"}); got != "ivr-42" {
			t.Fatalf("id %q", got)
		}
		wantProblem(t, s.do("POST", "/v1/calls", map[string]any{"id": "ivr-42", "from": "a", "to": "b"}), 409, "ivr-42")
	})

	t.Run("CreateInvalid", func(t *testing.T) {
		p := wantProblem(t, s.do("POST", "/v1/calls", map[string]any{"id": "bad id", "to": 5, "direction": "sideways", "extra": 1}), 422, "")
		got := pointers(p)
		for _, want := range []string{"/id", "/from", "/to", "/direction", "/extra"} {
			if !slices.Contains(got, want) {
				t.Errorf("pointer %s missing from %v", want, got)
			}
		}
		p = wantProblem(t, s.do("POST", "/v1/calls", map[string]any{"from": "a", "to": "b", "variables": map[string]any{"call.id": "x", "ivr.ok": 1}}), 422, "refused")
		if got := pointers(p); !slices.Equal(got, []string{"/variables/call.id"}) {
			t.Fatalf("pointers %v, want [/variables/call.id]", got)
		}
	})

	t.Run("Get", func(t *testing.T) {
		id := s.createCall(nil)
		res := s.do("GET", "/v1/calls/"+id, nil)
		if res.Status != 200 || res.JSON(t)["id"] != id {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		wantProblem(t, s.do("GET", "/v1/calls/nope", nil), 404, "nope")
	})

	t.Run("End", func(t *testing.T) {
		id := s.createCall(nil)
		res := s.do("POST", "/v1/calls/"+id+"/end", map[string]any{"reason": "caller-hangup"})
		if res.Status != 200 {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		c := res.JSON(t)
		if c["state"] != "ended" || c["endReason"] != "caller-hangup" || c["endedAt"] == nil {
			t.Fatalf("ended call %s", res.Body)
		}
		again := s.do("POST", "/v1/calls/"+id+"/end", nil) // no body: optional
		if again.Status != 200 || again.JSON(t)["endedAt"] != c["endedAt"] {
			t.Fatalf("second end: %d %s", again.Status, again.Body)
		}
		wantProblem(t, s.do("POST", "/v1/calls/nope/end", nil), 404, "")
		wantProblem(t, s.do("POST", "/v1/sessions/"+id, map[string]any{"ivr.x": 1}), 409, "ended")
	})

	t.Run("List", func(t *testing.T) {
		_, s := newTestServer(t, nil)
		var ids []string
		for i := 0; i < 5; i++ {
			ids = append(ids, s.createCall(nil))
		}
		s.do("POST", "/v1/calls/"+ids[1]+"/end", nil)
		list := func(q string) ([]string, any) {
			res := s.do("GET", "/v1/calls"+q, nil)
			if res.Status != 200 {
				t.Fatalf("list %s: %d %s", q, res.Status, res.Body)
			}
			m := res.JSON(t)
			var got []string
			for _, it := range m["items"].([]any) {
				got = append(got, it.(map[string]any)["id"].(string))
			}
			return got, m["next"]
		}
		got, next := list("")
		if want := []string{ids[4], ids[3], ids[2], ids[0]}; !slices.Equal(got, want) || next != nil {
			t.Fatalf("active: %v next %v, want %v", got, next, want)
		}
		got, _ = list("?state=ended")
		if !slices.Equal(got, []string{ids[1]}) {
			t.Fatalf("ended: %v", got)
		}
		got, next = list("?state=all&limit=3")
		if !slices.Equal(got, []string{ids[4], ids[3], ids[2]}) || next == nil {
			t.Fatalf("all, first page: %v next %v", got, next)
		}
		got, next = list("?state=all&limit=3&cursor=" + next.(string))
		if !slices.Equal(got, []string{ids[1], ids[0]}) || next != nil {
			t.Fatalf("all, second page: %v next %v", got, next)
		}
		wantProblem(t, s.do("GET", "/v1/calls?state=zombie", nil), 400, "state")
		wantProblem(t, s.do("GET", "/v1/calls?limit=0", nil), 400, "limit")
		wantProblem(t, s.do("GET", "/v1/calls?limit=x", nil), 400, "limit")
		wantProblem(t, s.do("GET", "/v1/calls?cursor=%21%21", nil), 400, "cursor")
	})
}

func TestSessions(t *testing.T) {
	_, s := newTestServer(t, nil)
	id := s.createCall(nil)

	t.Run("Get", func(t *testing.T) {
		res := s.do("GET", "/v1/sessions/"+id, nil)
		if res.Status != 200 || res.Header.Get("ETag") != `"1"` {
			t.Fatalf("%d ETag %q", res.Status, res.Header.Get("ETag"))
		}
		m := res.JSON(t)
		for _, k := range []string{"callId", "state", "version", "variables", "createdAt", "updatedAt"} {
			if _, ok := m[k]; !ok {
				t.Errorf("session lacks %s", k)
			}
		}
		if m["variables"].(map[string]any)["call.from"] != "+4930123456" {
			t.Fatalf("call.from missing: %s", res.Body)
		}
		if res := s.do("GET", "/v1/sessions/"+id, nil, "If-None-Match", `"1"`); res.Status != 304 || len(res.Body) != 0 {
			t.Fatalf("If-None-Match current: %d", res.Status)
		}
		if res := s.do("GET", "/v1/sessions/"+id, nil, "If-None-Match", `W/"1", "7"`); res.Status != 304 {
			t.Fatalf("If-None-Match list with weak tag: %d", res.Status)
		}
		if res := s.do("GET", "/v1/sessions/"+id, nil, "If-None-Match", `"0"`); res.Status != 200 {
			t.Fatalf("If-None-Match stale: %d", res.Status)
		}
		wantProblem(t, s.do("GET", "/v1/sessions/nope", nil), 404, "nope")
	})

	t.Run("Write", func(t *testing.T) {
		for _, method := range []string{"POST", "PATCH"} {
			for _, ct := range []string{"application/json", "application/merge-patch+json", "application/json; charset=utf-8"} {
				res := s.do(method, "/v1/sessions/"+id, `{"ivr.email":"a@b.c","ivr.premium":true,"ivr.track_id":"T-`+method+`"}`, "Content-Type", ct)
				if res.Status != 200 {
					t.Fatalf("%s %s: %d %s", method, ct, res.Status, res.Body)
				}
				m := res.JSON(t)
				if got, want := res.Header.Get("ETag"), fmt.Sprintf(`"%v"`, m["version"]); got != want {
					t.Fatalf("ETag %s, want %s", got, want)
				}
				if m["variables"].(map[string]any)["ivr.track_id"] != "T-"+method {
					t.Fatalf("write not merged: %s", res.Body)
				}
			}
		}
		res := s.do("POST", "/v1/sessions/"+id, `{"ivr.track_id":null}`)
		if _, ok := res.JSON(t)["variables"].(map[string]any)["ivr.track_id"]; ok {
			t.Fatal("null did not delete")
		}
	})

	t.Run("IfMatch", func(t *testing.T) {
		cur := s.do("GET", "/v1/sessions/"+id, nil)
		tag := cur.Header.Get("ETag")
		if res := s.do("POST", "/v1/sessions/"+id, `{"ivr.n":1}`, "If-Match", tag); res.Status != 200 {
			t.Fatalf("fresh If-Match: %d %s", res.Status, res.Body)
		}
		wantProblem(t, s.do("POST", "/v1/sessions/"+id, `{"ivr.n":2}`, "If-Match", tag), 412, "version")
		wantProblem(t, s.do("POST", "/v1/sessions/"+id, `{"ivr.n":2}`, "If-Match", "3"), 400, "If-Match")
		if v := s.do("GET", "/v1/sessions/"+id+"/variables/ivr.n", nil).JSON(t)["value"]; v != float64(1) {
			t.Fatalf("ivr.n=%v after a refused write", v)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		p := wantProblem(t, s.do("POST", "/v1/sessions/"+id, `{"call.from":"x","sip.x-a":"y","crm.x":1,"ivr.a b":1,"ivr.x~/y":1,"ivr.ok":1}`), 422, "nothing was written")
		got := pointers(p)
		want := []string{"/call.from", "/crm.x", "/ivr.a b", "/ivr.x~0~1y", "/sip.x-a"}
		if !slices.Equal(got, want) {
			t.Fatalf("pointers %v, want %v", got, want)
		}
		wantProblem(t, s.do("POST", "/v1/sessions/nope", `{"ivr.x":1}`), 404, "")
	})

	t.Run("Variable", func(t *testing.T) {
		res := s.do("GET", "/v1/sessions/"+id+"/variables/ivr.email", nil)
		if res.Status != 200 || string(res.Body) != `{"name":"ivr.email","value":"a@b.c"}` {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		wantProblem(t, s.do("GET", "/v1/sessions/"+id+"/variables/ivr.nothing", nil), 404, "ivr.nothing")
		wantProblem(t, s.do("GET", "/v1/sessions/nope/variables/ivr.email", nil), 404, "")
	})

	t.Run("History", func(t *testing.T) {
		res := s.do("GET", "/v1/sessions/"+id+"/history", nil)
		var page struct {
			Items []struct {
				Version uint64
				Actor   string
				Event   string
				Changes map[string]struct{ Old, New any }
			}
			Next *string
		}
		if err := json.Unmarshal(res.Body, &page); err != nil || res.Status != 200 || page.Next != nil {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		h := page.Items
		if len(h) < 3 || h[0].Version != 1 || h[1].Version != 2 || h[0].Actor != "anonymous" || h[0].Event != "call.started" {
			t.Fatalf("history %+v", h)
		}
		if ch := h[1].Changes["ivr.premium"]; ch.Old != nil || ch.New != true {
			t.Fatalf("v2 ivr.premium change %+v", ch)
		}
		after := s.do("GET", "/v1/sessions/"+id+"/history?after=2", nil)
		var rest struct{ Items []map[string]any }
		json.Unmarshal(after.Body, &rest)
		if len(rest.Items) != len(h)-2 || rest.Items[0]["version"] != float64(3) {
			t.Fatalf("after=2: %s", after.Body)
		}
		wantProblem(t, s.do("GET", "/v1/sessions/"+id+"/history?after=-1", nil), 400, "after")
		wantProblem(t, s.do("GET", "/v1/sessions/nope/history", nil), 404, "")
	})
}

// TestHistory_Pages: the history pages like the call list, limit and next
// cursor, every version exactly once.
func TestHistory_Pages(t *testing.T) {
	_, s := newTestServer(t, nil)
	id := s.createCall(nil)
	for i := 0; i < 24; i++ {
		s.do("POST", "/v1/sessions/"+id, fmt.Sprintf(`{"ivr.n":%d}`, i))
	}
	type page struct {
		Items []struct{ Version int }
		Next  *string
	}
	get := func(query string) page {
		t.Helper()
		res := s.do("GET", "/v1/sessions/"+id+"/history"+query, nil)
		var p page
		if err := json.Unmarshal(res.Body, &p); err != nil || res.Status != 200 {
			t.Fatalf("%s: %d %s", query, res.Status, res.Body)
		}
		return p
	}
	var got []int
	pages := 0
	for q := "?limit=10"; ; pages++ {
		p := get(q)
		for _, e := range p.Items {
			got = append(got, e.Version)
		}
		if p.Next == nil {
			break
		}
		q = "?limit=10&cursor=" + *p.Next
	}
	if len(got) != 25 || got[0] != 1 || got[24] != 25 || pages != 2 {
		t.Fatalf("versions %v over %d pages", got, pages+1)
	}
	if p := get(""); len(p.Items) != 25 || p.Next != nil {
		t.Fatalf("default page: %d items, next %v", len(p.Items), p.Next)
	}
	if p := get("?after=20&limit=2"); len(p.Items) != 2 || p.Items[0].Version != 21 || p.Next == nil || *p.Next != "22" {
		t.Fatalf("after=20&limit=2: %+v", p)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?cursor=x", "?after=1&cursor=2"} {
		wantProblem(t, s.do("GET", "/v1/sessions/"+id+"/history"+q, nil), 400, "")
	}
}

// TestQuery_Duplicates: a query parameter given twice is refused with 400 on
// every route, rather than one of the two winning silently.
func TestQuery_Duplicates(t *testing.T) {
	_, s := newTestServer(t, nil)
	id := s.createCall(nil)
	for _, path := range []string{
		"/v1/calls?limit=10&limit=abc", "/v1/calls?state=active&state=ended",
		"/v1/sessions/" + id + "/history?limit=1&limit=2", "/v1/sessions/" + id + "?x=1&x=1",
		"/api/v2/calls/reporting?max=1&max=2", "/healthz?a=1&a=2",
	} {
		p := wantProblem(t, s.do("GET", path, nil), http.StatusBadRequest, "more than once")
		if !strings.Contains(p["detail"].(string), "?") && !strings.Contains(path, p["detail"].(string)) {
			t.Logf("%s: %s", path, p["detail"])
		}
	}
	wantProblem(t, s.do("GET", "/v1/calls?limit=%zz", nil), http.StatusBadRequest, "query")
	if res := s.do("GET", "/v1/calls?limit=10&state=all", nil); res.Status != http.StatusOK {
		t.Fatalf("distinct parameters: %d %s", res.Status, res.Body)
	}
}

func TestBabelforce(t *testing.T) {
	_, s := newTestServer(t, nil)
	id := s.createCall(nil)
	res := s.do("PUT", "/api/v2/sessions/"+id, `{"ivr.email":"a@b.c","ivr.premium":true}`)
	if res.Status != 200 {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	res = s.do("PUT", "/api/v2/calls/"+id+"/session/set", `{"variables":{"app.track_id":"TRK-1"}}`)
	if res.Status != 200 {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	res = s.do("GET", "/api/v2/sessions/"+id, nil)
	m := res.JSON(t)
	item := m["item"].(map[string]any)
	if m["success"] != true || item["id"] != id || item["valid"] != true || item["created"] == nil || item["last_access"] == nil {
		t.Fatalf("babelforce session %s", res.Body)
	}
	data := item["data"].(map[string]any)
	if data["ivr.email"] != "a@b.c" || data["ivr.premium"] != true || data["app.track_id"] != "TRK-1" {
		t.Fatalf("data %v", data)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/api/v2/sessions/nope", "", 404},
		{"PUT", "/api/v2/sessions/" + id, `{"ivr.x":"` + strings.Repeat("x", 9000) + `"}`, 422},
		{"PUT", "/api/v2/sessions/" + id, `{"ivr.x":`, 400},
		{"PUT", "/api/v2/calls/" + id + "/session/set", `{"vars":{}}`, 422},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		p := wantProblem(t, s.do(tc.method, tc.path, body), tc.status, "")
		if p["success"] != false || p["message"] == "" {
			t.Errorf("%s %s: no babelforce envelope: %v", tc.method, tc.path, p)
		}
	}
	s.do("POST", "/v1/calls/"+id+"/end", nil)
	if item := s.do("GET", "/api/v2/sessions/"+id, nil).JSON(t)["item"].(map[string]any); item["valid"] != false {
		t.Fatal("an ended call's session is still valid")
	}
}

func TestOperations(t *testing.T) {
	_, s := newTestServer(t, []api.Token{{Name: "x", SHA256: sha256.Sum256([]byte("x")), Scopes: []api.Scope{api.ScopeAdmin}}})
	for _, path := range []string{"/healthz", "/readyz"} {
		if res := s.do("GET", path, nil); res.Status != 200 || res.JSON(t)["status"] != "ok" {
			t.Fatalf("%s: %d %s", path, res.Status, res.Body)
		}
	}
	res := s.do("GET", "/openapi.yaml", nil)
	if res.Status != 200 || string(res.Body) != string(callctx.OpenAPI) {
		t.Fatalf("openapi.yaml: %d, %d bytes", res.Status, len(res.Body))
	}
	wantProblem(t, s.do("GET", "/v2/nothing", nil), 404, "no route")
	wantProblem(t, s.do("DELETE", "/v1/calls", nil), 405, "DELETE")
}

func TestAuth(t *testing.T) {
	tok := func(name string, scopes ...api.Scope) api.Token {
		return api.Token{Name: name, SHA256: sha256.Sum256([]byte("secret-" + name)), Scopes: scopes}
	}
	_, s := newTestServer(t, []api.Token{
		tok("crm", api.ScopeSessionsRead, api.ScopeSessionsWrite),
		tok("reader", api.ScopeSessionsRead),
		tok("pbx", api.ScopeCallsWrite),
		tok("ops", api.ScopeAdmin),
	})
	s.token = "secret-pbx"
	id := s.createCall(nil)

	for _, tc := range []struct {
		token, method, path, body string
		status                    int
	}{
		{"", "GET", "/v1/sessions/" + id, "", 401},
		{"wrong", "GET", "/v1/sessions/" + id, "", 401},
		{"secret-pbx", "GET", "/v1/sessions/" + id, "", 403},
		{"secret-reader", "GET", "/v1/sessions/" + id, "", 200},
		{"secret-reader", "POST", "/v1/sessions/" + id, `{"ivr.a":1}`, 403},
		{"secret-crm", "POST", "/v1/sessions/" + id, `{"ivr.a":1}`, 200},
		{"secret-crm", "POST", "/v1/calls", `{"from":"a","to":"b"}`, 403},
		{"secret-crm", "PUT", "/api/v2/sessions/" + id, `{"ivr.b":1}`, 200},
		{"secret-reader", "PUT", "/api/v2/sessions/" + id, `{"ivr.b":1}`, 403},
		{"secret-ops", "POST", "/v1/calls/" + id + "/end", "", 200},
		{"", "GET", "/healthz", "", 200},
		{"", "GET", "/openapi.yaml", "", 200},
	} {
		s.token = tc.token
		var body any
		if tc.body != "" {
			body = tc.body
		}
		res := s.do(tc.method, tc.path, body)
		if res.Status != tc.status {
			t.Errorf("%s %s %s: status %d, want %d: %s", tc.token, tc.method, tc.path, res.Status, tc.status, res.Body)
			continue
		}
		switch tc.status {
		case 401:
			wantProblem(t, res, 401, "")
			if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer: %q", res.Header.Get("WWW-Authenticate"))
			}
		case 403:
			wantProblem(t, res, 403, "lacks the scope")
		}
	}
	// The token's name is the actor in history.
	s.token = "secret-crm"
	h := s.do("GET", "/v1/sessions/"+id+"/history", nil)
	var page struct{ Items []session.HistoryEntry }
	json.Unmarshal(h.Body, &page)
	actors := map[string]bool{}
	for _, e := range page.Items {
		actors[e.Actor] = true
	}
	for _, want := range []string{"pbx", "crm", "ops"} {
		if !actors[want] {
			t.Errorf("actor %s not in history: %s", want, h.Body)
		}
	}
}
