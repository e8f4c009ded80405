package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/callctx/callctx"
	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
	"github.com/gin-gonic/gin"
)

func benchHandler(b *testing.B) (*api.Handler, string) {
	b.Helper()
	st := bolttest.MustOpen(b, bolt.Options{})
	svc := session.NewService(st, session.Options{})
	h, err := api.NewHandler(api.Config{Service: svc, Spec: callctx.OpenAPI})
	if err != nil {
		b.Fatal(err)
	}
	c, _, err := svc.CreateCall(t0(), session.NewCall{From: "+4930123456", To: "+4940555000", Flow: "order-status",
		Variables: map[string]json.RawMessage{"ivr.email": json.RawMessage(`"jane@example.com"`), "ivr.premium": json.RawMessage(`true`), "ivr.track_id": json.RawMessage(`"TRK-1"`)}}, session.WriteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return h, c.ID
}

// BenchmarkHandler_GetSession is the CPU cost of GET /v1/sessions/{id}
// inside the handler, without the network.
func BenchmarkHandler_GetSession(b *testing.B) {
	h, id := benchHandler(b)
	req := httptest.NewRequest("GET", "/v1/sessions/"+id, nil)
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

// BenchmarkHandler_WriteSession is POST /v1/sessions/{id} with three
// variables inside the handler, including the durable commit.
func BenchmarkHandler_WriteSession(b *testing.B) {
	h, id := benchHandler(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := `{"ivr.email":"jane@example.com","ivr.premium":true,"ivr.track_id":"TRK-` + strconv.Itoa(i) + `"}`
		req := httptest.NewRequest("POST", "/v1/sessions/"+id, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code, rec.Body)
		}
	}
}

// BenchmarkHandler_WriteSessionParallel is many clients writing at once,
// each to its own call, inside the handler: the CPU of the write path with
// commits shared by DB.Batch.
func BenchmarkHandler_WriteSessionParallel(b *testing.B) {
	h, _ := benchHandler(b)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("POST", "/v1/calls", strings.NewReader(`{"from":"a","to":"b"}`))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var c struct{ ID string }
		json.Unmarshal(rec.Body.Bytes(), &c)
		for i := 0; pb.Next(); i++ {
			body := `{"ivr.email":"jane@example.com","ivr.premium":true,"ivr.track_id":"TRK-` + strconv.Itoa(i) + `"}`
			req := httptest.NewRequest("POST", "/v1/sessions/"+c.ID, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Error(rec.Code, rec.Body)
				return
			}
		}
	})
}

// BenchmarkBareGin is the baseline of the HTTP benchmark, measured the same
// way as BenchmarkHandler_GetSession: a gin handler returning a small JSON.
func BenchmarkBareGin(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/ping", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok", "version": 1}) })
	req := httptest.NewRequest("GET", "/ping", nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
	}
}
