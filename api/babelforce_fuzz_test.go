package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/callctx/callctx"
	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/internal/jsontest"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
)

// fuzzHandler is the API over a fresh store with one call and one token
// with OAuth2 credentials.
func fuzzHandler(f *testing.F) (*api.Handler, *session.Service, string) {
	st := bolttest.MustOpen(f, bolt.Options{})
	svc := session.NewService(st, session.Options{})
	h, err := api.NewHandler(api.Config{Service: svc, Spec: callctx.OpenAPI, Tokens: []api.Token{crmToken}})
	if err != nil {
		f.Fatal(err)
	}
	c, _, err := svc.CreateCall(t0(), session.NewCall{From: "+4930123456", To: "b"}, session.WriteOptions{})
	if err != nil {
		f.Fatal(err)
	}
	return h, svc, c.ID
}

// wantAnswer fails unless rec is a success or a 4xx problem.
func wantAnswer(t *testing.T, rec *httptest.ResponseRecorder, what string) {
	t.Helper()
	switch {
	case rec.Code == http.StatusOK:
	case rec.Code >= 400 && rec.Code < 500:
		var p map[string]any
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p["detail"] == "" {
			t.Fatalf("%s: %d %q %s", what, rec.Code, ct, rec.Body)
		}
	default:
		t.Fatalf("%s: status %d: %s", what, rec.Code, rec.Body)
	}
}

// FuzzBabelforceReportingQuery: any query string of the reporting list is
// answered with a page or a 400 problem, never a crash or a 500.
func FuzzBabelforceReportingQuery(f *testing.F) {
	for _, q := range []string{"", "state=in-progress", "filters.state=completed&page=2&max=1", "id=a,b&id=c",
		"time.start=1&time.end=-1", "time.start=99999999999999999999", "from=%2B49&q=%00", "format=csv", "anonymous=1",
		"max=1000&page=2147483647", "page=9223372036854775807", "state=%ZZ"} {
		f.Add(q)
	}
	h, _, _ := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, q string) {
		req := httptest.NewRequest("GET", "/api/v2/calls/reporting", nil)
		req.URL.RawQuery = q
		req.Header.Set("Authorization", "Bearer crm-static-secret")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == 200 && rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("invalid JSON for %q", q)
		}
		wantAnswer(t, rec, q)
	})
}

// FuzzOAuthToken: any form body of the token endpoint is answered with
// tokens only for the right credentials, else a problem with an RFC 6749
// error code.
func FuzzOAuthToken(f *testing.F) {
	for _, b := range []string{"grant_type=password&username=crm%40example.com&password=pw-0123456789",
		"grant_type=client_credentials&client_id=crm-client&client_secret=cs-0123456789",
		"grant_type=password&grant_type=password", "grant_type=refresh_token&refresh_token=a.b.c", "%", "a=%zz", "grant_type=\x00"} {
		f.Add([]byte(b), "application/x-www-form-urlencoded")
	}
	f.Add([]byte(`{"grant_type":"password","username":"x","password":"y"}`), "application/json")
	h, _, _ := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		req := httptest.NewRequest("POST", "/oauth/token", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		wantAnswer(t, rec, string(body))
		if rec.Code == 200 {
			if !strings.Contains(string(body), "0123456789") {
				t.Fatalf("tokens for %q", body)
			}
			return
		}
		var p map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
		if e, _ := p["error"].(string); e == "" {
			t.Fatalf("no RFC 6749 error for %q: %s", body, rec.Body)
		}
	})
}

// FuzzBabelforceSessionPut: whatever the keys, the write stores only valid
// variable names in writable namespaces, and reports the rest.
func FuzzBabelforceSessionPut(f *testing.F) {
	for _, b := range []string{"{\"name\":\"M\xfcller\"}", `{"ivr.s":"\ud800x"}`, `{"ivr.n":1e400}`, `{"customerTier":"gold"}`, `{"call.from":"x","sip.a":1,"a b":1,"x":1,"ivr.x":2}`, `{"":1}`, `{".":1}`, `{"ivr":1}`, `{"app.":1}`} {
		f.Add([]byte(b))
	}
	h, svc, id := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/api/v2/sessions/" + id, "/api/v2/calls/" + id + "/session/set"} {
			b := body
			if strings.HasSuffix(path, "/set") {
				b = append(append([]byte(`{"variables":`), body...), '}')
			}
			req := httptest.NewRequest("PUT", path, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer crm-static-secret")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			wantAnswer(t, rec, string(b))
		}
		s, err := svc.Session(t0(), id)
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range s.Variables {
			if err := session.CheckName(name, 128); err != nil {
				t.Fatalf("stored %q: %v", name, err)
			}
			if err := jsontest.Strict(v); err != nil {
				t.Fatalf("stored %s=%q, which a strict client cannot read: %v", name, v, err)
			}
		}
		if s.Variables["call.from"] == nil || string(s.Variables["call.from"]) != `"+4930123456"` {
			t.Fatalf("call.from changed: %s", s.Variables["call.from"])
		}
	})
}
