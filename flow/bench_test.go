package flow_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
)

// BenchmarkDelivery measures automation deliveries per second to a local
// receiver: b.N automations are queued (durably) first, then the engine
// starts and the clock runs until the receiver has all of them and every
// attempt is recorded. Each delivery is one HTTP request and one durable
// store write.
func BenchmarkDelivery(b *testing.B) {
	var got atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	snap := mustCompile(b, `
automations:
  notify:
    url: "${CRM_URL}/notify/{call.id}"
    body: {call: "{call.id}", from: "{call.from}"}
    secret_env: CRM_WEBHOOK_SECRET
flows:
  f:
    start: fire
    nodes:
      fire: {type: automation, automations: [notify], next: bye}
      bye: {type: hangup}
`, env(receiver.URL))
	st := bolttest.MustOpen(b, bolt.Options{})
	svc := session.NewService(st, session.Options{})
	e := flow.NewEngine(flow.Config{Service: svc, Store: st, Snapshot: snap})
	ctx := context.Background()
	ids := make([]string, b.N)
	for i := range b.N {
		c, _, err := svc.CreateCall(ctx, session.NewCall{From: "+4930123456", To: "+4940555000", Flow: "f"}, session.WriteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.StartCall(ctx, c); err != nil {
			b.Fatal(err)
		}
		ids[i] = c.ID
	}
	b.ResetTimer()
	start := time.Now()
	if err := e.Open(); err != nil {
		b.Fatal(err)
	}
	for got.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	// The last attempts are recorded once the store has them.
	for _, id := range ids[len(ids)-min(len(ids), 16):] {
		for {
			ds, err := e.Deliveries(ctx, id)
			if err == nil && len(ds) == 1 && ds[0].Status == flow.DeliveryDelivered {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	e.Close()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
}
