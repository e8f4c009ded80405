package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/metrics"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
	dto "github.com/prometheus/client_model/go"
)

// samples gathers m and returns every sample of the family name as
// "label=value,…" → value (counters and gauges) or → sample count
// (histograms).
func samples(t *testing.T, m *metrics.Metrics, name string) map[string]float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			out[strings.Join(labels, ",")] = value(f.GetType(), s)
		}
	}
	return out
}

func value(typ dto.MetricType, s *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return s.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return s.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(s.GetHistogram().GetSampleCount())
	}
	return s.GetUntyped().GetValue()
}

func wantSamples(t *testing.T, got, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d samples %v, want %d %v", len(got), got, len(want), want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("sample {%s} = %v (present %v), want %v", k, g, ok, w)
		}
	}
}

func TestMetrics_ObserveRequest(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.ObserveRequest("POST", "/v1/calls", 201, 2*time.Millisecond, false)
	m.ObserveRequest("POST", "/v1/calls", 201, time.Millisecond, false)
	m.ObserveRequest("GET", "/v1/sessions/{callId}/events", 200, time.Minute, true)
	m.ObserveRequest("GET", "", 404, time.Millisecond, false)
	m.ObserveRequest("BREW", "", 405, time.Millisecond, false)

	wantSamples(t, samples(t, m, "callctx_http_requests_total"), map[string]float64{
		"code=201,method=POST,route=/v1/calls":                   2,
		"code=200,method=GET,route=/v1/sessions/{callId}/events": 1,
		"code=404,method=GET,route=unmatched":                    1,
		"code=405,method=other,route=unmatched":                  1,
	})
	// The stream is counted but stays out of the latency histogram.
	wantSamples(t, samples(t, m, "callctx_http_request_duration_seconds"), map[string]float64{
		"code=201,method=POST,route=/v1/calls":  2,
		"code=404,method=GET,route=unmatched":   1,
		"code=405,method=other,route=unmatched": 1,
	})
}

func TestMetrics_Store(t *testing.T) {
	ctx := context.Background()
	m := metrics.New(metrics.Options{})
	st := bolttest.MustOpen(t, bolt.Options{OnCommit: m.StoreCommitted, OnWrite: m.StoreWrote})
	svc := session.NewService(m.Store(st), session.Options{})
	client := session.WriteOptions{Actor: "test", Origin: session.OriginClient}
	write := func(id string, vars string, ifMatch uint64) {
		t.Helper()
		var v map[string]json.RawMessage
		if err := json.Unmarshal([]byte(vars), &v); err != nil {
			t.Fatal(err)
		}
		opts := client
		opts.IfMatch = ifMatch
		svc.Merge(ctx, id, v, opts) // the outcome is what is measured
	}

	c, _, err := svc.CreateCall(ctx, session.NewCall{ID: "c1", From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	svc.CreateCall(ctx, session.NewCall{ID: "c1", From: "a", To: "b"}, client) // conflict
	write(c.ID, `{"ivr.x": 1}`, 0)                                             // ok: version 2
	write(c.ID, `{"ivr.x": 1}`, 0)                                             // unchanged
	write(c.ID, `{"ivr.x": 2}`, 1)                                             // stale If-Match
	write("nope", `{"ivr.x": 1}`, 0)                                           // not found
	write(c.ID, `{"call.x": 1}`, 0)                                            // refused before the store: not counted
	svc.EndCall(ctx, c.ID, "", "test")
	svc.EndCall(ctx, c.ID, "", "test") // ending twice changes nothing
	write(c.ID, `{"ivr.x": 3}`, 0)     // ended: conflict

	wantSamples(t, samples(t, m, "callctx_session_writes_total"), map[string]float64{
		"op=create,result=ok":                 1,
		"op=create,result=conflict":           1,
		"op=write,result=ok":                  1,
		"op=write,result=unchanged":           1,
		"op=write,result=precondition_failed": 1,
		"op=write,result=not_found":           1,
		"op=write,result=conflict":            1,
		"op=end,result=ok":                    1,
		"op=end,result=unchanged":             1,
	})
	// The writes that changed something each committed a transaction of
	// their own (refused ones may or may not take one: the store's
	// business); every commit has its batch size and its latency.
	commits := samples(t, m, "callctx_store_batch_size")[""]
	if commits < 3 {
		t.Errorf("committed transactions=%v, want at least 3 (create, write, end)", commits)
	}
	if got := samples(t, m, "callctx_store_commit_duration_seconds")[""]; got != commits {
		t.Errorf("commit latencies=%v, want one per commit (%v)", got, commits)
	}
	// Every write that reached the writer has its time in the store; each
	// commit held at least one of them.
	if got := samples(t, m, "callctx_store_write_duration_seconds")[""]; got < commits {
		t.Errorf("store write latencies=%v, want at least one per commit (%v)", got, commits)
	}
}

func TestMetrics_ActiveCalls(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		m := metrics.New(metrics.Options{})
		m.CountActiveCalls(func(context.Context) (int, error) { return 7, nil })
		wantSamples(t, samples(t, m, "callctx_calls_active"), map[string]float64{"": 7})
	})
	// A failing count does not take the other metrics down with it.
	t.Run("ErrCount", func(t *testing.T) {
		m := metrics.New(metrics.Options{Version: "v9"})
		m.CountActiveCalls(func(context.Context) (int, error) { return 0, errors.New("disk on fire") })
		body, status := scrape(t, m)
		if status != 200 {
			t.Fatalf("status %d, want 200", status)
		}
		if !strings.Contains(body, `callctx_build_info{version="v9"} 1`) {
			t.Fatalf("scrape lacks build info:\n%s", body)
		}
		if strings.Contains(body, "\ncallctx_calls_active ") {
			t.Fatalf("scrape has a value for the failed gauge:\n%s", body)
		}
	})
}

func scrape(t *testing.T, m *metrics.Metrics) (string, int) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), rec.Code
}

func TestMetrics_FlowAndSIP(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.TriggerEvaluated("premium", true)
	m.TriggerEvaluated("premium", false)
	m.TriggerEvaluated("premium", true)
	m.AutomationSent("crm-lookup")
	m.AutomationFailed("crm-lookup", false)
	m.AutomationFailed("crm-lookup", true)
	m.AutomationsPending(4)
	m.AutomationsPending(3)
	m.SIPRequest(true, "invite", 200)
	m.SIPRequest(true, "INVITE", 200)
	m.SIPRequest(false, "REFER", 0)
	m.SIPRequest(true, "X-EVIL\r\n", 486) // any token a peer sends stays "other"
	m.SIPRequest(true, "BYE", 1234)
	m.Transfer("REFER", "completed")
	m.Transfer("refer", "Timed-Out")
	m.Transfer("teleport", "")

	wantSamples(t, samples(t, m, "callctx_trigger_evaluations_total"), map[string]float64{
		"result=fired,trigger=premium":     2,
		"result=not_fired,trigger=premium": 1,
	})
	wantSamples(t, samples(t, m, "callctx_automations_total"), map[string]float64{
		"automation=crm-lookup,result=sent":    1,
		"automation=crm-lookup,result=failed":  1,
		"automation=crm-lookup,result=gave_up": 1,
	})
	wantSamples(t, samples(t, m, "callctx_automations_pending"), map[string]float64{"": 3})
	wantSamples(t, samples(t, m, "callctx_sip_requests_total"), map[string]float64{
		"code=200,direction=in,method=INVITE":  2,
		"code=none,direction=out,method=REFER": 1,
		"code=486,direction=in,method=other":   1,
		"code=other,direction=in,method=BYE":   1,
	})
	wantSamples(t, samples(t, m, "callctx_transfers_total"), map[string]float64{
		"method=refer,outcome=completed": 1,
		"method=refer,outcome=timed_out": 1,
		"method=other,outcome=other":     1,
	})
}

// A nil *Metrics is a valid "no metrics": the flow runner and the SIP
// bridge can call it without checking.
func TestMetrics_Nil(t *testing.T) {
	var m *metrics.Metrics
	m.ObserveRequest("GET", "/", 200, time.Millisecond, false)
	m.StoreCommitted(1, time.Millisecond)
	m.TriggerEvaluated("t", true)
	m.AutomationSent("a")
	m.AutomationFailed("a", true)
	m.AutomationsPending(1)
	m.SIPRequest(true, "INVITE", 200)
	m.Transfer("refer", "completed")
	st := bolttest.MustOpen(t, bolt.Options{})
	if got := m.Store(st); got != session.Store(st) {
		t.Fatalf("nil Metrics wrapped the store")
	}
}

// BenchmarkMetrics_ObserveRequest is what the HTTP edge pays per request.
func BenchmarkMetrics_ObserveRequest(b *testing.B) {
	m := metrics.New(metrics.Options{})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.ObserveRequest("GET", "/v1/sessions/{callId}", 200, 300*time.Microsecond, false)
	}
}
