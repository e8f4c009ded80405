package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx"
	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/internal/kittest"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/metrics"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
)

// fakeMetrics records what the API reports.
type fakeMetrics struct {
	mu       sync.Mutex
	requests []string // "METHOD route status stream"
}

func (f *fakeMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	w.Write([]byte("fake_metric 1\n"))
}

func (f *fakeMetrics) ObserveRequest(method, route string, status int, took time.Duration, stream bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind := ""
	if stream {
		kind = " stream"
	}
	f.requests = append(f.requests, method+" "+route+" "+http.StatusText(status)+kind)
}

func (f *fakeMetrics) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func token(name, secret string, scopes ...api.Scope) api.Token {
	return api.Token{Name: name, SHA256: sha256.Sum256([]byte(secret)), Scopes: scopes}
}

// newKitServer starts the API with metrics, an access log and tokens.
func newKitServer(t *testing.T, m api.Metrics) (*testServer, *testenv.Buffer) {
	t.Helper()
	log, logs := testenv.CaptureLog(t, slog.LevelInfo)
	_, s := serve(t, api.Config{
		Service: session.NewService(openStore(t), session.Options{}),
		Tokens: []api.Token{
			token("admin", "admin-secret", api.ScopeAdmin),
			token("reader", "reader-secret", api.ScopeSessionsRead),
			token("prometheus", "prom-secret", api.ScopeMetricsRead),
		},
		Logger:    log,
		AccessLog: true,
		Metrics:   m,
		KeepAlive: time.Hour,
	})
	s.token = "admin-secret"
	return s, logs
}

func TestAPI_Metrics(t *testing.T) {
	fm := &fakeMetrics{}
	s, _ := newKitServer(t, fm)
	id := s.createCall(nil)
	s.do("POST", "/v1/sessions/"+id, `{"ivr.email":"a@b.c"}`)
	s.do("GET", "/v1/nothing-here", nil)
	s.do("POST", "/v1/calls/"+id+"/end", nil)
	// The stream of an ended call sends its events and ends.
	if res := s.do("GET", "/v1/sessions/"+id+"/events", nil); res.Status != http.StatusOK {
		t.Fatalf("events: %d %s", res.Status, res.Body)
	}

	got := strings.Join(fm.seen(), "\n")
	want := strings.Join([]string{
		"POST /v1/calls Created",
		"POST /v1/sessions/{callId} OK",
		"GET  Not Found", // no route matched
		"POST /v1/calls/{id}/end OK",
		"GET /v1/sessions/{callId}/events OK stream",
	}, "\n")
	if got != want {
		t.Fatalf("observed:\n%s\nwant:\n%s", got, want)
	}

	t.Run("Scrape", func(t *testing.T) {
		for _, tc := range []struct {
			name, token string
			status      int
		}{
			{"MetricsScope", "prom-secret", http.StatusOK},
			{"Admin", "admin-secret", http.StatusOK},
			{"ErrForbidden", "reader-secret", http.StatusForbidden},
			{"ErrUnauthorized", "", http.StatusUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := s.do("GET", "/metrics", nil, "Authorization", bearerOrNone(tc.token))
				if tc.status != http.StatusOK {
					wantProblem(t, res, tc.status, "")
					return
				}
				if res.Status != http.StatusOK || !strings.Contains(string(res.Body), "fake_metric 1") {
					t.Fatalf("scrape: %d %s", res.Status, res.Body)
				}
			})
		}
	})
	// A Prometheus token reads metrics and nothing else.
	t.Run("ErrMetricsTokenReadsNoSession", func(t *testing.T) {
		res := s.do("GET", "/v1/sessions/"+id, nil, "Authorization", "Bearer prom-secret")
		wantProblem(t, res, http.StatusForbidden, "sessions:read")
	})
}

func bearerOrNone(tok string) string {
	if tok == "" {
		return ""
	}
	return "Bearer " + tok
}

func TestAPI_MetricsDisabled(t *testing.T) {
	s, _ := newKitServer(t, nil)
	wantProblem(t, s.do("GET", "/metrics", nil), http.StatusNotFound, "not enabled")
}

func TestAPI_AccessLog(t *testing.T) {
	s, logs := newKitServer(t, nil)
	id := s.createCall(nil)
	s.do("PATCH", "/v1/sessions/"+id, `{"ivr.premium":true}`, "Authorization", "Bearer reader-secret")
	s.do("GET", "/healthz", nil)

	var got []string
	for _, l := range logs.JSONLines() {
		if l["msg"] != "http request" {
			continue
		}
		got = append(got, strings.Join([]string{
			str(l["method"]), str(l["route"]), str(l["status"]), str(l["call_id"]), str(l["actor"]),
		}, " "))
	}
	want := []string{
		"POST /v1/calls 201 " + id + " admin", // the call it created
		"PATCH /v1/sessions/{callId} 403 " + id + " ",
		"GET /healthz 200  ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("access log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// A refused seed variable points into the body's variables object.
func TestAPI_CreateCall_SeedPointers(t *testing.T) {
	s, _ := newKitServer(t, nil)
	res := s.do("POST", "/v1/calls", `{"from":"a","to":"b","variables":{"call.from":"x","ivr.a/b":1,"ivr.ok":true}}`)
	p := wantProblem(t, res, http.StatusUnprocessableEntity, "2 variables were refused")
	if got, want := strings.Join(pointers(p), " "), "/variables/call.from /variables/ivr.a~1b"; got != want {
		t.Fatalf("pointers %q, want %q", got, want)
	}
}

// The same for babelforce's session/set, whose variables sit under
// "variables" too (a key it ignores is no error; a value too large is).
func TestAPI_BabelforceSet_Pointers(t *testing.T) {
	s, _ := newKitServer(t, nil)
	id := s.createCall(nil)
	res := s.do("PUT", "/api/v2/calls/"+id+"/session/set", `{"variables":{"call.to":"x","app.big":"`+strings.Repeat("x", 9000)+`"}}`)
	p := wantProblem(t, res, http.StatusUnprocessableEntity, "1 variable was refused")
	if got, want := strings.Join(pointers(p), " "), "/variables/app.big"; got != want {
		t.Fatalf("pointers %q, want %q", got, want)
	}
	if p["success"] != false {
		t.Fatalf("success=%v, want false", p["success"])
	}
}

func TestAPI_Console(t *testing.T) {
	s, _ := newKitServer(t, nil)
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/console", "text/html; charset=utf-8", `src="console/console.js" type="module"`},
		{"/console/console.js", "text/javascript; charset=utf-8", "from './calls.js'"},
		{"/console/api.js", "text/javascript; charset=utf-8", "new EventSource("},
		{"/console/calls.js", "text/javascript; charset=utf-8", "/v1/events/calls"},
		{"/console/wallboard.js", "text/javascript; charset=utf-8", "/v1/stats/events"},
		{"/console/console.css", "text/css; charset=utf-8", "font"},
		{"/console/uPlot.iife.min.js", "text/javascript; charset=utf-8", "uPlot"},
		{"/console/uPlot.LICENSE.txt", "text/plain; charset=utf-8", "MIT"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			// No token: the files hold no data; the page reads with the user's token.
			res := s.do("GET", tc.path, nil, "Authorization", "")
			if res.Status != http.StatusOK {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			if got := res.Header.Get("Content-Type"); got != tc.contentType {
				t.Fatalf("Content-Type %q, want %q", got, tc.contentType)
			}
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
				t.Fatalf("Content-Security-Policy %q", csp)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Fatalf("X-Content-Type-Options %q", got)
			}
			if !strings.Contains(string(res.Body), tc.contains) {
				t.Fatalf("body lacks %q", tc.contains)
			}
			etag := res.Header.Get("ETag")
			if again := s.do("GET", tc.path, nil, "If-None-Match", etag); again.Status != http.StatusNotModified {
				t.Fatalf("If-None-Match %s: status %d, want 304", etag, again.Status)
			}
		})
	}
	for _, path := range []string{"/console/nope.js", "/console/index.html", "/console/..%2fapi.go"} {
		t.Run("ErrNotFound"+path, func(t *testing.T) {
			wantProblem(t, s.do("GET", path, nil), http.StatusNotFound, "")
		})
	}
}

// BenchmarkHandler_GetSession_Metrics is BenchmarkHandler_GetSession with
// the metrics of package metrics observing every request: the difference
// between the two is what instrumenting the HTTP edge costs.
func BenchmarkHandler_GetSession_Metrics(b *testing.B) {
	st := bolttest.MustOpen(b, bolt.Options{})
	m := metrics.New(metrics.Options{})
	svc := session.NewService(m.Store(st), session.Options{})
	h, err := api.NewHandler(api.Config{Service: svc, Spec: callctx.OpenAPI, Metrics: m})
	if err != nil {
		b.Fatal(err)
	}
	c, _, err := svc.CreateCall(t0(), session.NewCall{From: "+4930123456", To: "+4940555000", Flow: "order-status",
		Variables: map[string]json.RawMessage{"ivr.email": json.RawMessage(`"jane@example.com"`), "ivr.premium": json.RawMessage(`true`), "ivr.track_id": json.RawMessage(`"TRK-1"`)}}, session.WriteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v1/sessions/"+c.ID, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// TestConsole_ChartLibraryMatchesLock checks that the console's copy of
// uPlot is the one package-lock.json pins, as npm ci installed it: the
// copy is what `go run` serves without npm, and no one edits it by hand
// (make console-assets refreshes it).
func TestConsole_ChartLibraryMatchesLock(t *testing.T) {
	pkg := kittest.Package(t, "uplot")
	for copy, orig := range map[string]string{
		"uPlot.iife.min.js": filepath.Join(pkg, "dist", "uPlot.iife.min.js"),
		"uPlot.min.css":     filepath.Join(pkg, "dist", "uPlot.min.css"),
		"uPlot.LICENSE.txt": filepath.Join(pkg, "LICENSE"),
	} {
		want, err := os.ReadFile(orig)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("console", copy))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("api/console/%s differs from %s: run make console-assets", copy, orig)
		}
	}
}

// TestAPI_Profile: the Go runtime's profiles answer a token with the
// metrics scope (go tool pprof reads them), and nobody else.
func TestAPI_Profile(t *testing.T) {
	s, _ := newKitServer(t, nil)
	for _, tc := range []struct {
		name, path, token string
		status            int
	}{
		{"Heap", "/debug/pprof/heap", "prom-secret", http.StatusOK},
		{"CPU", "/debug/pprof/profile?seconds=1", "prom-secret", http.StatusOK},
		{"Admin", "/debug/pprof/goroutine", "admin-secret", http.StatusOK},
		{"ErrForbidden", "/debug/pprof/heap", "reader-secret", http.StatusForbidden},
		{"ErrUnauthorized", "/debug/pprof/heap", "", http.StatusUnauthorized},
		{"ErrUnknown", "/debug/pprof/nothing", "prom-secret", http.StatusNotFound},
		{"ErrSeconds", "/debug/pprof/profile?seconds=300", "prom-secret", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.do("GET", tc.path, nil, "Authorization", bearerOrNone(tc.token))
			if tc.status != http.StatusOK {
				wantProblem(t, res, tc.status, "")
				return
			}
			// A pprof profile is gzipped protocol buffers.
			if res.Status != http.StatusOK || len(res.Body) < 2 || res.Body[0] != 0x1f || res.Body[1] != 0x8b {
				t.Fatalf("profile: %d, %d bytes", res.Status, len(res.Body))
			}
		})
	}
}
