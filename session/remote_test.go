package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// fakeSource hands the sink to the test, as a store shared by several
// nodes would use it.
type fakeSource struct{ sink chan session.EventSink }

func (f *fakeSource) Follow(ctx context.Context, sink session.EventSink) error {
	f.sink <- sink
	<-ctx.Done()
	return ctx.Err()
}

func TestService_Follow(t *testing.T) {
	svc := session.NewService(nil, session.Options{}) // the feed needs no store
	src := &fakeSource{sink: make(chan session.EventSink, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go svc.Follow(ctx, src)
	sink := <-src.sink

	if sink.Wants("c1", session.EventSessionUpdated) {
		t.Fatal("Wants with no subscriber")
	}
	local := svc.SubscribeLocal("")
	defer local.Close()
	if sink.Wants("c1", session.EventSessionUpdated) {
		t.Fatal("a local-only subscriber wants other nodes' updates")
	}
	if !sink.Wants("c1", session.EventCallEnded) {
		t.Fatal("a local-only subscriber does not want other nodes' call.ended")
	}
	sub := svc.Subscribe("c1")
	defer sub.Close()
	if !sink.Wants("c1", session.EventSessionUpdated) || sink.Wants("c2", session.EventSessionUpdated) {
		t.Fatal("Wants does not follow the subscriptions to c1")
	}

	sink.Deliver(session.Event{Type: session.EventSessionUpdated, CallID: "c1", Version: 2})
	sink.Deliver(session.Event{Type: session.EventCallEnded, CallID: "c1", Version: 3})
	for _, want := range []uint64{2, 3} {
		select {
		case e := <-sub.Events():
			if e.Version != want || !e.Remote {
				t.Fatalf("subscriber got v%d remote=%v, want v%d from another node", e.Version, e.Remote, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no v%d", want)
		}
	}
	select {
	case e := <-local.Events():
		if e.Type != session.EventCallEnded {
			t.Fatalf("local-only subscriber got %s from another node", e.Type)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("local-only subscriber did not get call.ended")
	}

	sink.Missed()
	for name, s := range map[string]*session.Subscription{"sub": sub, "local": local} {
		select {
		case _, ok := <-s.Events():
			if ok || !s.Lagged() {
				t.Fatalf("%s: open=%v lagged=%v after Missed, want closed as lagged", name, ok, s.Lagged())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not closed by Missed", name)
		}
	}
}
