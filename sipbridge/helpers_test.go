package sipbridge_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
	"github.com/callctx/callctx/sipbridge"
)

// testEnv is a bridge on 127.0.0.1:0 over a real bbolt store in a temp dir.
type testEnv struct {
	svc    *session.Service
	bridge *sipbridge.Bridge
	store  *bolt.Store
	logs   *testenv.Buffer
	flows  *flow.Engine // nil without a flows directory
}

func startBridge(tb testing.TB, cfg sipbridge.Config) *testEnv {
	tb.Helper()
	return startBridgeFlows(tb, cfg, "")
}

// startBridgeFlows is startBridge with the flows of a directory (testdata/flows) running in
// a flow engine the bridge drives; "" for none.
func startBridgeFlows(tb testing.TB, cfg sipbridge.Config, flowsDir string) *testEnv {
	tb.Helper()
	store := bolttest.MustOpen(tb, bolt.Options{})
	svc := session.NewService(store, session.Options{})
	if flowsDir != "" {
		snap, problems, err := flow.Load(flowsDir, flow.CompileOptions{})
		if err != nil {
			tb.Fatalf("load flows: %v %v", err, problems)
		}
		engine := flow.NewEngine(flow.Config{Service: svc, Store: store, Snapshot: snap})
		if err := engine.Open(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(engine.Close)
		cfg.Flows = engine
	}
	log, logs := testenv.CaptureLog(tb, slog.LevelDebug)
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	b, err := sipbridge.New(svc, cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	env := &testEnv{svc: svc, bridge: b, store: store, logs: logs, flows: cfg.Flows}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		if err := store.Check(); err != nil {
			tb.Errorf("bolt check: %v", err)
		}
		if err := store.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return env
}

// activeCall waits for the one active call and returns it: for a test that acts on the
// call while it lasts.
func (e *testEnv) activeCall(tb testing.TB) *session.Call {
	tb.Helper()
	return e.topCall(tb, session.FilterActive, "an active call")
}

// call waits for the one call, active or ended, and returns it: a scenario that hangs up by
// itself (a pause of 100 ms, or none) can end its call before a poll for an active one runs.
func (e *testEnv) call(tb testing.TB) *session.Call {
	tb.Helper()
	return e.topCall(tb, session.FilterAll, "a call")
}

// topCall waits for a call that is not a transfer's leg, in state, and returns it.
func (e *testEnv) topCall(tb testing.TB, state session.StateFilter, what string) *session.Call {
	tb.Helper()
	var call *session.Call
	testenv.WaitFor(tb, what, func() bool {
		page, err := e.svc.ListCalls(context.Background(), session.ListOptions{State: state})
		if err != nil {
			tb.Fatal(err)
		}
		for _, c := range page.Items {
			if c.ParentID == "" {
				call = c
				return true
			}
		}
		return false
	})
	return call
}

// lastCall returns the call created last (IDs are UUIDv7, in time order), once it has ended.
func (e *testEnv) lastCall(tb testing.TB) *session.Call {
	tb.Helper()
	page, err := e.svc.ListCalls(context.Background(), session.ListOptions{State: session.FilterAll})
	if err != nil || len(page.Items) == 0 {
		tb.Fatalf("calls %v %v, want some", page, err)
	}
	last := page.Items[0]
	for _, c := range page.Items {
		if c.ID > last.ID {
			last = c
		}
	}
	return e.endedCall(tb, last.ID)
}

// endedCall waits until call id has ended and returns it.
func (e *testEnv) endedCall(tb testing.TB, id string) *session.Call {
	tb.Helper()
	var call *session.Call
	testenv.WaitFor(tb, "call "+id+" to end", func() bool {
		c, err := e.svc.Call(context.Background(), id)
		if err != nil {
			tb.Fatal(err)
		}
		call = c
		return c.State == session.StateEnded
	})
	return call
}

// vars returns the variables of a session decoded.
func (e *testEnv) vars(tb testing.TB, id string) map[string]any {
	tb.Helper()
	s, err := e.svc.Session(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]any{}
	for k, v := range s.Variables {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			tb.Fatal(err)
		}
		out[k] = x
	}
	return out
}
