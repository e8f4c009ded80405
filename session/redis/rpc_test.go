package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/redis"
)

// TestStore_AskAnswer: a node asks another for what only it can do, and
// gets its answer or its error, exactly as the other node's handler gave
// it; asking a node that is gone, or does not answer, fails clearly.
func TestStore_AskAnswer(t *testing.T) {
	prefix := sharedPrefix("rpc")
	// Stopping ends a lease at once, so the test needs no short one; a long one keeps a
	// busy machine's late heartbeat from letting it run out.
	a := MustOpenStore(t, redis.Options{Prefix: prefix, NodeID: "a", OutboxLease: 10 * time.Second})
	b := MustOpenStore(t, redis.Options{Prefix: prefix, NodeID: "b", OutboxLease: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		a.Answer(ctx, func(ctx context.Context, kind string, payload []byte) ([]byte, error) {
			switch kind {
			case "echo":
				return append([]byte(`{"echo":`), append(payload, '}')...), nil
			case "refuse":
				return nil, &session.Error{Code: session.CodeInvalid, Message: "the target is not valid", Fields: []session.FieldError{{Name: "target", Message: "use a SIP URI"}}}
			}
			return nil, context.DeadlineExceeded // not a session error: internal
		})
	}()
	defer func() { cancel(); <-served }()

	svc := session.NewService(a, session.Options{})
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	node, alive, err := b.CallNode(ctx, c.ID)
	if err != nil || node != "a" || !alive {
		t.Fatalf("CallNode = %q, %v, %v; want a, alive", node, alive, err)
	}
	if _, _, err := b.CallNode(ctx, "nope"); session.ErrorCode(err) != session.CodeNotFound {
		t.Fatalf("CallNode of an unknown call: %v", err)
	}

	got, err := b.Ask(ctx, "a", "echo", []byte(`[1,"x"]`), 5*time.Second)
	if err != nil || string(got) != `{"echo":[1,"x"]}` {
		t.Fatalf("echo: %s, %v", got, err)
	}
	_, err = b.Ask(ctx, "a", "refuse", []byte(`{}`), 5*time.Second)
	if session.ErrorCode(err) != session.CodeInvalid || session.ErrorMessage(err) != "the target is not valid" || len(session.ErrorFields(err)) != 1 || session.ErrorFields(err)[0].Name != "target" {
		t.Fatalf("refuse: %v %v", err, session.ErrorFields(err))
	}
	_, err = b.Ask(ctx, "a", "other", []byte(`{}`), 5*time.Second)
	if session.ErrorCode(err) != session.CodeInternal || session.ErrorMessage(err) != "internal error" {
		t.Fatalf("an internal error crossed as %v", err)
	}

	// A node that never was, or stopped: gone at once.
	start := time.Now()
	_, err = b.Ask(ctx, "ghost", "echo", []byte(`1`), 5*time.Second)
	if session.ErrorCode(err) != session.CodeUnavailable || !strings.Contains(session.ErrorMessage(err), "is gone") || time.Since(start) > 2*time.Second {
		t.Fatalf("asking a node that is gone: %v after %s", err, time.Since(start))
	}
	// A live node that does not answer (it serves no requests).
	_, err = a.Ask(ctx, "b", "echo", []byte(`1`), time.Second)
	if session.ErrorCode(err) != session.CodeUnavailable || !strings.Contains(session.ErrorMessage(err), "did not answer") {
		t.Fatalf("asking a node that does not answer: %v", err)
	}
	a.Close()
	if _, alive, err := b.CallNode(ctx, c.ID); err != nil || alive {
		t.Fatalf("after a stopped: alive=%v, %v", alive, err)
	}
}
