package redis_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/redis"
)

// fakeBridge is a SIP bridge that holds some calls.
type fakeBridge struct {
	mu    sync.Mutex
	got   []session.TransferRequest
	holds map[string]bool
}

func (b *fakeBridge) Transfer(ctx context.Context, callID string, req session.TransferRequest) (*session.Transfer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.holds[callID] {
		return nil, session.Errorf(session.CodeConflict, "the call %s is not held by this SIP bridge", callID)
	}
	if !strings.HasPrefix(req.Target, "sip:") {
		return nil, &session.Error{Code: session.CodeInvalid, Message: "the transfer is not valid", Fields: []session.FieldError{{Name: "target", Message: "use a SIP URI"}}}
	}
	b.got = append(b.got, req)
	return &session.Transfer{ID: "t-" + callID, CallID: callID, Mode: req.Mode, Target: req.Target, Status: session.TransferPending, StartedAt: time.Now().UTC()}, nil
}

// TestStore_Transferer: a transfer asked of any node runs on the node that
// holds the call, and its answer (or refusal) comes back; when that node
// is gone the request fails saying so.
func TestStore_Transferer(t *testing.T) {
	prefix := sharedPrefix("xfer")
	opts := func(node string) redis.Options {
		return redis.Options{Prefix: prefix, NodeID: node, OutboxLease: time.Second}
	}
	a, b := MustOpenStore(t, opts("a")), MustOpenStore(t, opts("b"))
	ctx, cancel := context.WithCancel(context.Background())
	bridge := &fakeBridge{holds: map[string]bool{}}
	var wg sync.WaitGroup
	for _, serve := range []func(){
		func() { a.ServeTransfers(ctx, bridge) },
		func() { b.ServeTransfers(ctx, nil) }, // node b runs no SIP bridge
	} {
		wg.Add(1)
		go func() { defer wg.Done(); serve() }()
	}
	defer func() { cancel(); wg.Wait() }()

	onA, _, err := session.NewService(a, session.Options{}).CreateCall(ctx, session.NewCall{ID: "sip-call", From: "a", To: "b", SIPCallID: "abc@192.0.2.1"}, client)
	if err != nil {
		t.Fatal(err)
	}
	bridge.holds[onA.ID] = true
	onB, _, _ := session.NewService(b, session.Options{}).CreateCall(ctx, session.NewCall{ID: "rest-call", From: "a", To: "b"}, client)
	hangup := 50 * time.Millisecond
	req := session.TransferRequest{Target: "sip:agent@192.0.2.20", Mode: session.TransferRefer, HandoverReason: "billing",
		Headers: []session.TransferHeader{{Name: "X-Track", Value: "T-1"}}, HangupAfter: &hangup,
		Context: &session.TransferContext{Variables: []string{"ivr.*"}, As: "both"}, Actor: "crm"}

	tr, err := b.Transferer(nil).Transfer(ctx, onA.ID, req)
	if err != nil || tr.ID != "t-sip-call" || tr.Status != session.TransferPending {
		t.Fatalf("forwarded transfer: %+v, %v", tr, err)
	}
	got := bridge.got[0]
	if got.Target != req.Target || got.HandoverReason != "billing" || len(got.Headers) != 1 || got.Headers[0].Value != "T-1" ||
		got.HangupAfter == nil || *got.HangupAfter != hangup || got.Context == nil || got.Context.As != "both" || got.Actor != "crm" {
		t.Fatalf("the holding node got %+v", got)
	}
	bad := req
	bad.Target = "mailto:x@y"
	_, err = b.Transferer(nil).Transfer(ctx, onA.ID, bad)
	if session.ErrorCode(err) != session.CodeInvalid || len(session.ErrorFields(err)) != 1 || session.ErrorFields(err)[0].Name != "target" {
		t.Fatalf("a refused transfer came back as %v %v", err, session.ErrorFields(err))
	}
	if _, err := a.Transferer(bridge).Transfer(ctx, onA.ID, req); err != nil {
		t.Fatalf("on the holding node itself: %v", err)
	}
	_, err = a.Transferer(bridge).Transfer(ctx, onB.ID, req)
	if session.ErrorCode(err) != session.CodeConflict || !strings.Contains(session.ErrorMessage(err), "runs none") {
		t.Fatalf("a call of a node without a SIP bridge: %v", err)
	}
	_, err = b.Transferer(nil).Transfer(ctx, "nope", req)
	if session.ErrorCode(err) != session.CodeNotFound {
		t.Fatalf("an unknown call: %v", err)
	}

	restOnA, _, _ := session.NewService(a, session.Options{}).CreateCall(ctx, session.NewCall{ID: "rest-on-a", From: "a", To: "b"}, client)
	cancel()
	a.Close()
	_, err = b.Transferer(nil).Transfer(context.Background(), onA.ID, req)
	if session.ErrorCode(err) != session.CodeConflict || !strings.Contains(session.ErrorMessage(err), "which is gone") {
		t.Fatalf("the holding node is gone: %v", err)
	}
	_, err = b.Transferer(nil).Transfer(context.Background(), restOnA.ID, req)
	if session.ErrorCode(err) != session.CodeConflict || !strings.Contains(session.ErrorMessage(err), "did not come in over SIP") {
		t.Fatalf("a call that never had a dialog, of a node that is gone: %v", err)
	}
}
