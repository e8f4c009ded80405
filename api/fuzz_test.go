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

// FuzzWriteSession drives the request-body path (decode → validate →
// merge) with arbitrary bodies. Whatever arrives, the answer is 200 or a
// 4xx problem, and the stored session stays within its limits and readable
// by a strict client (UTF-8, no lone surrogates, finite numbers), as do the
// answers and the history.
func FuzzWriteSession(f *testing.F) {
	for _, seed := range []string{
		`{"ivr.email":"a@b.c","ivr.premium":true,"ivr.track_id":"TRK-1"}`,
		`{"ivr.a":null}`, `{"app.x":{"y":[1,2,{"z":null}]}}`, `{}`, `[]`, `null`, `"x"`, `{"ivr.a":`,
		`{"call.from":"x"}`, `{"ivr.a b":1}`, `{"ivr.\u0000":1}`, `{"ivr.n":1e400}`, `{"ivr.n":-0.0}`,
		`{"ivr.s":"\ud800"}`, "{\"ivr.s\":\"M\xfcller\"}", `{"ivr.s":"\udc00\ud800"}`, `{"ivr.n":[-1e309]}`, `{"ivr.a":1,"ivr.a":2}`, `{"ivr.` + strings.Repeat("a", 130) + `":1}`,
		`{"ivr.d":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	} {
		f.Add([]byte(seed), "application/json")
	}
	f.Add([]byte(`{"ivr.x":1}`), "application/merge-patch+json")
	f.Add([]byte(`{"ivr.x":1}`), "text/plain")

	st := bolttest.MustOpen(f, bolt.Options{})
	svc := session.NewService(st, session.Options{})
	h, err := api.NewHandler(api.Config{Service: svc, Spec: callctx.OpenAPI})
	if err != nil {
		f.Fatal(err)
	}
	c, _, err := svc.CreateCall(t0(), session.NewCall{From: "a", To: "b"}, session.WriteOptions{})
	if err != nil {
		f.Fatal(err)
	}
	lim := svc.Limits()

	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		for _, method := range []string{"POST", "PATCH"} {
			req := httptest.NewRequest(method, "/v1/sessions/"+c.ID, bytes.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if err := jsontest.Strict(rec.Body.Bytes()); err != nil && rec.Body.Len() > 0 {
				t.Fatalf("%d answer a strict client cannot read (%v): %q", rec.Code, err, rec.Body)
			}
			switch {
			case rec.Code == http.StatusOK:
			case rec.Code >= 400 && rec.Code < 500:
				if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("%d with Content-Type %q", rec.Code, ct)
				}
				var p map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["detail"] == "" {
					t.Fatalf("%d with a body that is not a problem: %s", rec.Code, rec.Body)
				}
			default:
				t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
			}
		}
		s, err := svc.Session(t0(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		js, _, _ := svc.SessionJSON(t0(), c.ID)
		if err := jsontest.Strict(js); err != nil {
			t.Fatalf("stored a session a strict client cannot read (%v): %q", err, js)
		}
		hist, _ := svc.History(t0(), c.ID, 0, 0)
		for i := range hist {
			if js := hist[i].AppendJSON(nil); jsontest.Strict(js) != nil {
				t.Fatalf("history a strict client cannot read: %q", js)
			}
		}
		if len(s.Variables) > lim.MaxVariables || s.Size() > lim.MaxSessionBytes {
			t.Fatalf("session over its limits: %d variables, %d bytes", len(s.Variables), s.Size())
		}
		for name, v := range s.Variables {
			if err := session.CheckName(name, lim.MaxNameLength); err != nil {
				t.Fatalf("stored a bad name %q: %v", name, err)
			}
			if !json.Valid(v) || len(v) > lim.MaxValueBytes {
				t.Fatalf("stored a bad value for %s: %q", name, v)
			}
		}
	})
}
