package redis_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/redis"
)

// benchService returns a Service on a fresh prefix with one call per
// of 64 workers.
func benchService(b *testing.B) (*session.Service, []string) {
	b.Helper()
	st := MustOpenStore(b, redis.Options{})
	svc := session.NewService(st, session.Options{})
	ids := make([]string, 64)
	for i := range ids {
		c, _, err := svc.CreateCall(context.Background(), session.NewCall{From: "+4930123456", To: "+4940555000"}, client)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = c.ID
	}
	return svc, ids
}

func BenchmarkService_Merge(b *testing.B) {
	svc, ids := benchService(b)
	ctx := context.Background()
	var worker atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := ids[int(worker.Add(1)-1)%len(ids)]
		for i := 0; pb.Next(); i++ {
			vars := map[string]json.RawMessage{
				"ivr.email":    json.RawMessage(`"caller` + strconv.Itoa(i) + `@example.com"`),
				"ivr.premium":  json.RawMessage(strconv.FormatBool(i%2 == 0)),
				"ivr.track_id": json.RawMessage(`"T-` + strconv.Itoa(i) + `"`),
			}
			if _, _, err := svc.Merge(ctx, id, vars, client); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkService_Session(b *testing.B) {
	svc, ids := benchService(b)
	ctx := context.Background()
	var worker atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := ids[int(worker.Add(1)-1)%len(ids)]
		for pb.Next() {
			if _, err := svc.Session(ctx, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
