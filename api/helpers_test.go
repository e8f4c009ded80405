package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/callctx/callctx"
	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
)

// testServer is a real HTTP server on 127.0.0.1 over a real bbolt file.
type testServer struct {
	URL     string
	Service *session.Service
	token   string
	t       *testing.T
}

// newTestServer starts the API. With tokens nil it runs open.
func newTestServer(t *testing.T, tokens []api.Token) (*api.Handler, *testServer) {
	t.Helper()
	svc := session.NewService(openStore(t), session.Options{})
	return serve(t, api.Config{Service: svc, Tokens: tokens, MaxBodyBytes: 64 << 10})
}

// openStore opens a bbolt store in a temporary directory. On cleanup it
// closes the store and runs bbolt's consistency check on the file.
func openStore(t *testing.T) *bolt.Store {
	t.Helper()
	return bolttest.MustOpen(t, bolt.Options{})
}

// serve starts the API of cfg on 127.0.0.1, with callctx's openapi.yaml
// when cfg has no spec. Its cleanup runs before that of the store.
func serve(t *testing.T, cfg api.Config) (*api.Handler, *testServer) {
	t.Helper()
	if cfg.Spec == nil {
		cfg.Spec = callctx.OpenAPI
	}
	h, err := api.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = h.Listener(srv.Listener)
	srv.Config.ConnContext = h.ConnContext
	srv.Start()
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return h, &testServer{URL: srv.URL, Service: cfg.Service, t: t}
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (r *response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// do sends a request. body may be a string (sent as is) or any value
// (sent as JSON); headers are name, value pairs.
func (s *testServer) do(method, path string, body any, headers ...string) *response {
	s.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/json"
	default:
		js, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(js), "application/json"
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// createCall creates a call and returns its ID.
func (s *testServer) createCall(body any) string {
	s.t.Helper()
	if body == nil {
		body = map[string]any{"from": "+4930123456", "to": "+4940555000"}
	}
	res := s.do("POST", "/v1/calls", body)
	if res.Status != http.StatusCreated {
		s.t.Fatalf("create call: %d %s", res.Status, res.Body)
	}
	return res.JSON(s.t)["id"].(string)
}

// wantProblem checks that res is an RFC 9457 problem with the status and,
// when given, a detail containing detailPart.
func wantProblem(t *testing.T, res *response, status int, detailPart string) map[string]any {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d: %s", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	p := res.JSON(t)
	for _, k := range []string{"type", "title", "status", "detail", "instance"} {
		if _, ok := p[k]; !ok {
			t.Fatalf("problem lacks %q: %s", k, res.Body)
		}
	}
	if got := int(p["status"].(float64)); got != status {
		t.Fatalf("problem status %d, want %d", got, status)
	}
	if !strings.HasPrefix(p["type"].(string), "urn:callctx:problem:") {
		t.Fatalf("problem type %q", p["type"])
	}
	if detailPart != "" && !strings.Contains(p["detail"].(string), detailPart) {
		t.Fatalf("detail %q does not mention %q", p["detail"], detailPart)
	}
	return p
}

// pointers returns the pointers of a problem's errors.
func pointers(p map[string]any) []string {
	var out []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		out = append(out, e.(map[string]any)["pointer"].(string))
	}
	return out
}

func t0() context.Context { return context.Background() }
