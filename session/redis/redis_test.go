package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/redis"
	"github.com/callctx/callctx/session/redis/redistest"
)

var client = session.WriteOptions{Actor: "crm", Origin: session.OriginClient}

func vars(s string) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		panic(err)
	}
	return m
}

// TestStore_OneCommandPerWrite counts what a write sends Redis: one
// script call, whatever the write does (merge, delete, refuse, no-op).
func TestStore_OneCommandPerWrite(t *testing.T) {
	srv := redistest.MustStart(t, redistest.Options{})
	st := MustOpenStore(t, redis.Options{URL: srv.URL()})
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	svc.Merge(ctx, c.ID, vars(`{"ivr.warm":1}`), client) // scripts loaded, connection open
	svc.EndCall(ctx, "nope", "", "crm")
	stop, err := srv.Monitor()
	if err != nil {
		t.Fatal(err)
	}
	writes := []map[string]json.RawMessage{
		vars(`{"ivr.a":1,"ivr.b":"x","app.c":[1,2]}`),
		vars(`{"ivr.a":null}`),
		vars(`{"ivr.b":"x"}`), // no change
		vars(`{"ivr.big":"` + strings.Repeat("x", 8000) + `"}`),
	}
	for _, w := range writes {
		if _, _, err := svc.Merge(ctx, c.ID, w, client); err != nil {
			t.Fatal(err)
		}
	}
	stale := client
	stale.IfMatch = 1
	if _, _, err := svc.Merge(ctx, c.ID, vars(`{"ivr.a":2}`), stale); session.ErrorCode(err) != session.CodePreconditionFailed {
		t.Fatalf("stale write: %v", err)
	}
	if _, err := svc.EndCall(ctx, c.ID, "", "crm"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client); err != nil {
		t.Fatal(err)
	}
	cmds := stop()
	if want := len(writes) + 3; len(cmds) != want {
		t.Fatalf("%d commands for %d writes, want one each:\n%s", len(cmds), want, strings.Join(cmds, "\n"))
	}
	for _, c := range cmds {
		if !strings.Contains(c, `"evalsha"`) {
			t.Fatalf("a write sent %s", c)
		}
	}
}

// TestStore_Follow: a write on one node reaches the subscribers of
// another, as the event of exactly that version; a node does not get its
// own writes twice.
func TestStore_Follow(t *testing.T) {
	prefix := sharedPrefix("follow")
	stA := MustOpenStore(t, redis.Options{Prefix: prefix, NodeID: "a"})
	stB := MustOpenStore(t, redis.Options{Prefix: prefix, NodeID: "b"})
	svcA := session.NewService(stA, session.Options{})
	svcB := session.NewService(stB, session.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { svcA.Follow(ctx, stA); done <- struct{}{} }()
	go func() { svcB.Follow(ctx, stB); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })

	waitFollowing(t, svcA, svcB)
	allB := svcB.Subscribe("")
	defer allB.Close()

	c, _, err := svcA.CreateCall(ctx, session.NewCall{From: "+4930", To: "+4940"}, client)
	if err != nil {
		t.Fatal(err)
	}
	e := next(t, allB, c.ID)
	if e.Type != session.EventCallStarted || e.Version != 1 || e.Call == nil || e.Call.From != "+4930" {
		t.Fatalf("first event on B: %+v", e)
	}
	subA, subB := svcA.Subscribe(c.ID), svcB.Subscribe(c.ID)
	defer subA.Close()
	defer subB.Close()
	// Three writes in a row: B may fold them into fewer events, but each
	// event it gets must be exactly the session at its version.
	for i := 1; i <= 3; i++ {
		if _, _, err := svcA.Merge(ctx, c.ID, vars(fmt.Sprintf(`{"ivr.n":%d,"ivr.k%d":true}`, i, i)), client); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := svcA.Merge(ctx, c.ID, vars(`{"ivr.k1":null}`), client); err != nil {
		t.Fatal(err)
	}
	history, _ := svcA.History(ctx, c.ID, 0, 0)
	atVersion := func(v uint64) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		for _, h := range history[:v] {
			for name, ch := range h.Changes {
				if ch.New == nil {
					delete(m, name)
				} else {
					m[name] = ch.New
				}
			}
		}
		return m
	}
	for last := uint64(1); last < 5; {
		e := next(t, subB, c.ID)
		if e.Version <= last {
			t.Fatalf("event v%d after v%d", e.Version, last)
		}
		if got, want := fmt.Sprint(e.Variables), fmt.Sprint(atVersion(e.Version)); got != want {
			t.Fatalf("v%d variables\n got %s\nwant %s", e.Version, got, want)
		}
		if fmt.Sprint(e.Changes) != fmt.Sprint(history[e.Version-1].Changes) || e.Actor != "crm" {
			t.Fatalf("v%d changes %v, want %v", e.Version, e.Changes, history[e.Version-1].Changes)
		}
		last = e.Version
	}
	// A write that publishes another event type reaches B as that type.
	sip := session.WriteOptions{Actor: "sip", Origin: session.OriginSIP, Event: session.EventTransferStatus}
	if _, _, err := svcA.Merge(ctx, c.ID, vars(`{"sip.transfer.status":"answered"}`), sip); err != nil {
		t.Fatal(err)
	}
	if e := next(t, subB, c.ID); e.Type != session.EventTransferStatus || e.Version != 6 {
		t.Fatalf("B got %s v%d, want transfer.status v6", e.Type, e.Version)
	}
	// A write on B is the marker: A sees it after any notice of its own.
	if _, err := svcB.EndCall(ctx, c.ID, "bye", "crm"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		e := next(t, subA, c.ID)
		got = append(got, fmt.Sprintf("%s/%d", e.Type, e.Version))
		if e.Type == session.EventCallEnded {
			if e.Call == nil || e.Call.EndReason != "bye" || string(e.Variables["call.state"]) != `"ended"` {
				t.Fatalf("call.ended from B: %+v", e)
			}
			break
		}
	}
	if want := "[session.updated/2 session.updated/3 session.updated/4 session.updated/5 transfer.status/6 call.ended/7]"; fmt.Sprint(got) != want {
		t.Fatalf("A's subscriber got %v, want each of A's writes once and B's end: %s", got, want)
	}
}

// waitFollowing returns once each node's subscribers get the other's
// writes: both subscriptions to Redis are live. (A node's first
// subscription closes the subscriptions it had as lagged; the probes
// subscribe again, as every reader must.)
func waitFollowing(t *testing.T, a, b *session.Service) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		subA, subB := a.Subscribe(""), b.Subscribe("")
		idA, idB := fmt.Sprintf("probe-a%d", i), fmt.Sprintf("probe-b%d", i)
		if _, _, err := a.CreateCall(ctx, session.NewCall{ID: idA, From: "a", To: "b"}, client); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.CreateCall(ctx, session.NewCall{ID: idB, From: "a", To: "b"}, client); err != nil {
			t.Fatal(err)
		}
		ok := seen(subA, idB) && seen(subB, idA)
		subA.Close()
		subB.Close()
		if ok {
			return
		}
	}
	t.Fatal("the nodes do not follow each other")
}

// seen reports whether an event of callID arrives on sub within a second.
func seen(sub *session.Subscription, callID string) bool {
	timeout := time.After(time.Second)
	for {
		select {
		case e, open := <-sub.Events():
			if !open {
				return false
			}
			if e.CallID == callID {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// next returns the next event of callID on sub.
func next(t *testing.T, sub *session.Subscription, callID string) session.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription closed (lagged %v)", sub.Lagged())
			}
			if e.CallID == callID {
				return e
			}
		case <-timeout:
			t.Fatalf("no event of %s within 10s", callID)
		}
	}
}

// TestStore_FollowMissed: when Redis restarts, notices published meanwhile
// are lost, so subscribers are closed as lagged (to catch up from
// history), and events flow again without a restart of the node.
func TestStore_FollowMissed(t *testing.T) {
	prefix := sharedPrefix("m")
	srv := redistest.MustStart(t, redistest.Options{})
	stA := MustOpenStore(t, redis.Options{URL: srv.URL(), NodeID: "a", Prefix: prefix})
	stB := MustOpenStore(t, redis.Options{URL: srv.URL(), NodeID: "b", Prefix: prefix})
	svcA := session.NewService(stA, session.Options{})
	svcB := session.NewService(stB, session.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { svcA.Follow(ctx, stA); done <- struct{}{} }()
	go func() { svcB.Follow(ctx, stB); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	waitFollowing(t, svcA, svcB)

	c, _, err := svcA.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	sub := svcB.Subscribe(c.ID)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-sub.Events():
		if ok || !sub.Lagged() {
			t.Fatalf("subscription open=%v lagged=%v, want closed as lagged", ok, sub.Lagged())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the subscriber was not told that events may be missing")
	}
	// Events flow again. (The subscriber may be told more than once that
	// events may be missing: a fetch that was under way when Redis died
	// says so too.)
	deadline := time.Now().Add(15 * time.Second)
	for version := uint64(2); ; {
		if time.Now().After(deadline) {
			t.Fatal("events do not flow again after the restart")
		}
		sub := svcB.Subscribe(c.ID)
		_, _, err := svcA.Merge(ctx, c.ID, vars(`{"ivr.after":`+strconv.FormatUint(version, 10)+`}`), client)
		if err != nil {
			sub.Close()
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case e, ok := <-sub.Events():
			sub.Close()
			if ok {
				if e.Version != version || string(e.Variables["ivr.after"]) != strconv.FormatUint(version, 10) {
					t.Fatalf("event %+v after the restart, want version %d", e, version)
				}
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event after the restart")
		}
		version++
	}
}

// TestStore_Unavailable: with Redis gone or hung, every operation fails
// with CodeUnavailable within the configured timeouts instead of hanging,
// and the same store works again once Redis is back.
func TestStore_Unavailable(t *testing.T) {
	srv := redistest.MustStart(t, redistest.Options{})
	st := MustOpenStore(t, redis.Options{URL: srv.URL(), Timeout: 300 * time.Millisecond, DialTimeout: 300 * time.Millisecond})
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]func() error{
		"Ping":    func() error { return svc.Ping(ctx) },
		"Session": func() error { _, err := svc.Session(ctx, c.ID); return err },
		"Call":    func() error { _, err := svc.Call(ctx, c.ID); return err },
		"Merge":   func() error { _, _, err := svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), client); return err },
		"CreateCall": func() error {
			_, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
			return err
		},
		"EndCall":   func() error { _, err := svc.EndCall(ctx, "x", "", "crm"); return err },
		"History":   func() error { _, err := svc.History(ctx, c.ID, 0, 0); return err },
		"ListCalls": func() error { _, err := svc.ListCalls(ctx, session.ListOptions{}); return err },
		"Sweep":     func() error { _, err := svc.Sweep(ctx); return err },
	}
	check := func(t *testing.T) {
		for name, op := range ops {
			errc := make(chan error, 1)
			go func() { errc <- op() }()
			select {
			case err := <-errc:
				if got := session.ErrorCode(err); got != session.CodeUnavailable {
					t.Errorf("%s: %v, want code %s", name, err, session.CodeUnavailable)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s hangs", name)
			}
		}
	}
	t.Run("Hung", func(t *testing.T) {
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		defer srv.Resume()
		check(t)
	})
	t.Run("Gone", func(t *testing.T) {
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		check(t)
	})
	t.Run("Back", func(t *testing.T) {
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		var err error
		for i := 0; i < 100; i++ {
			if err = svc.Ping(ctx); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("no recovery: %v", err)
		}
		// Recovered: writes go through again (a busy machine may still time
		// one out with this test's short timeouts; the next one works).
		var s *session.Session
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if s, _, err = svc.Merge(ctx, c.ID, vars(`{"ivr.back":true}`), client); err == nil {
				break
			}
			if session.ErrorCode(err) != session.CodeUnavailable || time.Now().After(deadline) {
				t.Fatalf("no recovery: %v", err)
			}
		}
		if string(s.Variables["call.id"]) != `"`+c.ID+`"` {
			t.Fatal("the call did not survive the restart")
		}
	})
}

func TestStore_ActiveCalls(t *testing.T) {
	st := MustOpenStore(t, redis.Options{})
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		svc.CreateCall(ctx, session.NewCall{ID: "c" + strconv.Itoa(i), From: "a", To: "b"}, client)
	}
	svc.EndCall(ctx, "c1", "", "crm")
	if n, err := st.ActiveCalls(ctx); err != nil || n != 2 {
		t.Fatalf("ActiveCalls = %d, %v; want 2", n, err)
	}
}

// TestStore_ExpireAfter: an ended call's keys get a TTL, an active call's
// none.
func TestStore_ExpireAfter(t *testing.T) {
	prefix := sharedPrefix("ttl")
	st := MustOpenStore(t, redis.Options{Prefix: prefix, ExpireAfter: time.Hour})
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	c, _, _ := svc.CreateCall(ctx, session.NewCall{ID: "c1", From: "a", To: "b"}, client)
	ttl := func(key string) int {
		v, err := redistest.Command(server(t).Addr(), "PTTL", key)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(v, ":"))
		return n
	}
	if got := ttl(prefix + "{c1}"); got != -1 {
		t.Fatalf("active call's TTL %d, want none (-1)", got)
	}
	if err := st.SaveFlowRun(ctx, c.ID, []byte(`{}`), []*session.OutboxEntry{{ID: "e1", CallID: c.ID, Data: json.RawMessage(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.EndCall(ctx, c.ID, "", "crm"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"{c1}", "{c1}:h", "{c1}:c", "{c1}:f", "{c1}:o"} {
		if got := ttl(prefix + key); got <= 0 || got > int(time.Hour/time.Millisecond) {
			t.Fatalf("%s: TTL %d ms, want up to an hour", key, got)
		}
	}
}

func TestOpen_Errors(t *testing.T) {
	for name, opts := range map[string]redis.Options{
		"Nothing":    {},
		"Two":        {URL: "redis://127.0.0.1:1", ClusterAddrs: []string{"127.0.0.1:2"}},
		"BadURL":     {URL: "http://x"},
		"Braces":     {URL: "redis://127.0.0.1:1", Prefix: "a{b}"},
		"NoMaster":   {SentinelAddrs: []string{"127.0.0.1:1"}},
		"NodeSpaces": {URL: "redis://127.0.0.1:1", NodeID: "a b"},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := redis.Open(opts)
			if err == nil {
				st.Close()
				t.Fatal("no error")
			}
		})
	}
}

// TestStore_ConcurrentOwnReplies: many operations in flight share
// pipelines; each gets its own reply.
func TestStore_ConcurrentOwnReplies(t *testing.T) {
	st := MustOpenStore(t, redis.Options{})
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	const calls, rounds = 100, 20
	errs := make(chan error, calls)
	for i := 0; i < calls; i++ {
		go func() {
			id := "c" + strconv.Itoa(i)
			if _, _, err := svc.CreateCall(ctx, session.NewCall{ID: id, From: "a", To: "b"}, client); err != nil {
				errs <- err
				return
			}
			for r := 1; r <= rounds; r++ {
				s, _, err := svc.Merge(ctx, id, vars(fmt.Sprintf(`{"ivr.owner":%q,"ivr.r":%d}`, id, r)), client)
				if err != nil {
					errs <- err
					return
				}
				if got := string(s.Variables["ivr.owner"]); got != `"`+id+`"` || s.Version != uint64(r+1) || s.CallID != id {
					errs <- fmt.Errorf("%s got the reply of %s v%d", id, got, s.Version)
					return
				}
				read, err := svc.Session(ctx, id)
				if err != nil || read.Version < uint64(r+1) || string(read.Variables["ivr.owner"]) != `"`+id+`"` {
					errs <- fmt.Errorf("%s read %+v, %v", id, read, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < calls; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestStore_CancelledReads: a request whose client went away (its context ended) gets an
// error from every read, never a panic or a half-read command.
func TestStore_CancelledReads(t *testing.T) {
	st := MustOpenStore(t, redis.Options{})
	svc := session.NewService(st, session.Options{})
	c, _, err := svc.CreateCall(context.Background(), session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, read := range map[string]func() error{
		"Call":        func() error { _, err := st.Call(ctx, c.ID); return err },
		"Session":     func() error { _, err := st.Session(ctx, c.ID); return err },
		"SessionJSON": func() error { _, _, err := st.SessionJSON(ctx, c.ID); return err },
		"FlowRun":     func() error { _, err := st.FlowRun(ctx, c.ID); return err },
		"Apply": func() error {
			_, _, err := svc.Merge(ctx, c.ID, map[string]json.RawMessage{"ivr.a": json.RawMessage(`1`)}, client)
			return err
		},
	} {
		if err := read(); session.ErrorCode(err) != session.CodeUnavailable {
			t.Errorf("%s with an ended context: %v, want unavailable", name, err)
		}
	}
}
