package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/callctx/callctx"
	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
	"github.com/callctx/callctx/stats"
)

// FuzzLiveQueries sends arbitrary query parameters to the wallboard's and
// the diagrams' routes: window, format, version, call, timeoutSeconds,
// lastEventId. Whatever arrives, the answer is 200 (304) with what was
// asked for, or a 4xx problem; nothing hangs and nothing crashes.
func FuzzLiveQueries(f *testing.F) {
	for _, seed := range [][2]string{
		{"window", "1h"}, {"window", "90s"}, {"window", "-1m"}, {"window", "9999999h"}, {"window", "1e9m"},
		{"format", "svg"}, {"format", "SVG"}, {"version", "nope"}, {"call", "x"}, {"call", "../../etc"},
		{"timeoutSeconds", "1"}, {"timeoutSeconds", "99999999999999999999"}, {"lastEventId", "18446744073709551615"},
	} {
		f.Add(seed[0], seed[1])
	}
	st := bolttest.MustOpen(f, bolt.Options{})
	svc := session.NewService(st, session.Options{})
	snap, _, err := flow.Load("../examples/order-status/flows", flow.CompileOptions{AllowMissingSecrets: true})
	if err != nil {
		f.Fatal(err)
	}
	engine := flow.NewEngine(flow.Config{Service: svc, Store: st, Snapshot: snap})
	if err := engine.Open(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(engine.Close)
	board := stats.New(stats.Config{Service: svc})
	if err := board.Open(context.Background(), engine); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(board.Close)
	h, err := api.NewHandler(api.Config{Service: svc, Flows: engine, Board: board, Spec: callctx.OpenAPI})
	if err != nil {
		f.Fatal(err)
	}
	paths := []string{"/v1/stats", "/v1/stats/events", "/v1/events/calls", "/v1/flows/order-status/graph", "/v1/routing/graph", "/v1/flows/order-status/versions"}

	f.Fuzz(func(t *testing.T, name, value string) {
		for _, path := range paths {
			q := url.Values{name: {value}}
			// A live stream does not end by itself: the client leaves.
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			req := httptest.NewRequestWithContext(ctx, "GET", path+"?"+q.Encode(), nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			cancel()
			switch {
			case rec.Code == http.StatusOK:
			case rec.Code >= 400 && rec.Code < 500:
				if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("%s?%s: %d with Content-Type %q", path, q.Encode(), rec.Code, ct)
				}
				var p map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["detail"] == "" {
					t.Fatalf("%s?%s: %d with a body that is not a problem: %s", path, q.Encode(), rec.Code, rec.Body)
				}
			default:
				t.Fatalf("%s?%s: status %d: %s", path, q.Encode(), rec.Code, rec.Body)
			}
		}
	})
}
