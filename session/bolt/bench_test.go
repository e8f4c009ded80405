package bolt_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/callctx/callctx/session"
	"github.com/google/uuid"
)

// BenchmarkService_Merge measures a durable three-variable write through
// the Service: validation, the bbolt transaction and its fsync.
func BenchmarkService_Merge(b *testing.B) {
	svc := session.NewService(MustOpenStore(b), session.Options{})
	ctx := context.Background()
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "+4930123456", To: "+4940555000"}, session.WriteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	opts := session.WriteOptions{Actor: "crm"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vars := map[string]json.RawMessage{
			"ivr.email":    json.RawMessage(`"jane@example.com"`),
			"ivr.premium":  json.RawMessage(`true`),
			"ivr.track_id": json.RawMessage(`"TRK-` + strconv.Itoa(i) + `"`),
		}
		if _, _, err := svc.Merge(ctx, c.ID, vars, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkService_MergeParallel is Merge from many goroutines at once, to
// different calls: DB.Batch shares commits among them.
func BenchmarkService_MergeParallel(b *testing.B) { mergeParallel(b, nil) }

// BenchmarkService_MergeParallelFiring is MergeParallel with an automation
// that every write fires: its outbox entry is queued in the write's
// transaction.
func BenchmarkService_MergeParallelFiring(b *testing.B) { mergeParallel(b, fireOne{}) }

func mergeParallel(b *testing.B, auto session.Automations) {
	svc := session.NewService(MustOpenStore(b), session.Options{})
	if auto != nil {
		svc.SetAutomations(auto)
	}
	ctx := context.Background()
	b.SetParallelism(32) // with GOMAXPROCS=2: 64 writers
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, session.WriteOptions{})
		if err != nil {
			b.Error(err)
			return
		}
		i := 0
		for pb.Next() {
			i++
			vars := map[string]json.RawMessage{"ivr.n": json.RawMessage(strconv.Itoa(i)), "ivr.premium": json.RawMessage(`true`), "ivr.x": json.RawMessage(`"y"`)}
			if _, _, err := svc.Merge(ctx, c.ID, vars, session.WriteOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// fireOne fires one automation of a typical size on every event.
type fireOne struct{}

func (fireOne) Fire(ev *session.Event) []*session.OutboxEntry {
	data := `{"automation":"crm-update","source":"event:session.updated","method":"POST","url":"https://crm.example.com/callctx/update","body":{"call":"` + ev.CallID + `","version":` + strconv.FormatUint(ev.Version, 10) + `},"status":"pending","attempts":[]}`
	return []*session.OutboxEntry{{ID: uuid.Must(uuid.NewV7()).String(), CallID: ev.CallID, Created: ev.At, Due: ev.At, Automation: "crm-update", Data: json.RawMessage(data)}} // no Event: not held to MaxEventFirings, so every write queues one
}

func (fireOne) Queued(_, _ []*session.OutboxEntry) {}

// BenchmarkService_Session measures reading a session of a dozen variables.
func BenchmarkService_Session(b *testing.B) {
	svc := session.NewService(MustOpenStore(b), session.Options{})
	ctx := context.Background()
	c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "+4930123456", To: "+4940555000"}, session.WriteOptions{})
	svc.Merge(ctx, c.ID, map[string]json.RawMessage{"ivr.email": json.RawMessage(`"jane@example.com"`), "ivr.premium": json.RawMessage(`true`), "ivr.track_id": json.RawMessage(`"TRK-48213"`)}, session.WriteOptions{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := svc.Session(ctx, c.ID); err != nil {
			b.Fatal(err)
		}
	}
}
