package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/redis"
	"github.com/callctx/callctx/session/redis/redistest"
)

// TestStore_OutboxClaims: the node that queues an entry delivers it;
// another node neither gets it nor may record an attempt, until the first
// node's lease runs out (it died) or ends (it stopped); then the next node
// that asks takes the entry over, and the first may no longer record.
func TestStore_OutboxClaims(t *testing.T) {
	prefix := sharedPrefix("claims")
	const lease = 500 * time.Millisecond
	opts := func(node string) redis.Options {
		return redis.Options{Prefix: prefix, NodeID: node, OutboxLease: lease}
	}
	a := MustOpenStore(t, opts("a"))
	b := MustOpenStore(t, opts("b"))
	ctx := context.Background()
	svc := session.NewService(a, session.Options{})
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	entries := []*session.OutboxEntry{
		{ID: "e1", CallID: c.ID, Created: now, Due: now, Data: json.RawMessage(`{"n":1}`)},
		{ID: "e2", CallID: c.ID, Created: now, Due: now.Add(time.Minute), Data: json.RawMessage(`{"n":2}`)},
	}
	if err := a.SaveFlowRun(ctx, c.ID, []byte(`{}`), entries); err != nil {
		t.Fatal(err)
	}
	pendingIDs := func(st *redis.Store) string {
		t.Helper()
		p, err := st.PendingOutbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range p {
			ids = append(ids, e.ID)
		}
		return fmt.Sprint(ids)
	}
	if got := pendingIDs(a); got != "[e1 e2]" {
		t.Fatalf("node a may deliver %s, want [e1 e2]", got)
	}
	if got := pendingIDs(b); got != "[]" {
		t.Fatalf("node b may deliver %s while a lives, want none", got)
	}
	e1 := *entries[0]
	e1.Due, e1.Data = time.Time{}, json.RawMessage(`{"n":1,"delivered":"by b"}`)
	if err := b.UpdateOutbox(ctx, &e1); session.ErrorCode(err) != session.CodeConflict {
		t.Fatalf("b records an attempt on a's entry: %v, want conflict", err)
	}
	e1.Data = json.RawMessage(`{"n":1,"delivered":"by a"}`)
	if err := a.UpdateOutbox(ctx, &e1); err != nil {
		t.Fatal(err)
	}

	// Node a dies: its lease runs out by itself (a clean close would end it
	// at once; put it back as a crash leaves it).
	a.Close()
	setLease(t, prefix, "a", lease)
	if got := pendingIDs(b); got != "[]" {
		t.Fatalf("b took %s over before a's lease ran out", got)
	}
	time.Sleep(lease + 200*time.Millisecond)
	if got := pendingIDs(b); got != "[e2]" {
		t.Fatalf("after a's lease: b may deliver %s, want [e2]", got)
	}
	// Node a comes back under the same name: the entry is b's now.
	a2 := MustOpenStore(t, opts("a"))
	e2 := *entries[1]
	e2.Due = time.Time{}
	if err := a2.UpdateOutbox(ctx, &e2); session.ErrorCode(err) != session.CodeConflict {
		t.Fatalf("a records an attempt on an entry b took over: %v, want conflict", err)
	}
	if got := pendingIDs(a2); got != "[]" {
		t.Fatalf("a may deliver %s, which b holds", got)
	}
	// Node b stops cleanly: a takes over at once.
	b.Close()
	if got := pendingIDs(a2); got != "[e2]" {
		t.Fatalf("after b stopped: a may deliver %s, want [e2]", got)
	}
	all, err := a2.CallOutbox(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(all[0].Data) != `{"n":1,"delivered":"by a"}` {
		t.Fatalf("e1 recorded as %s", all[0].Data)
	}
}

// setLease sets a node's lease to end d from now, by Redis' clock.
func setLease(t *testing.T, prefix, node string, d time.Duration) {
	t.Helper()
	now, err := redistest.Command(server(t).Addr(), "EVAL", "local t = redis.call('TIME') return tostring(t[1] * 1000 + math.floor(t[2] / 1000))", "0")
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := strconv.ParseInt(now, 10, 64)
	if _, err := redistest.Command(server(t).Addr(), "ZADD", prefix+"{o}:nodes", strconv.FormatInt(ms+d.Milliseconds(), 10), node); err != nil {
		t.Fatal(err)
	}
}
