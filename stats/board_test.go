package stats_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
	"github.com/callctx/callctx/stats"
)

const flowsYAML = `
triggers:
  vip: {when: {var: ivr.vip, op: eq, value: true}}
flows:
  line:
    start: hello
    nodes:
      hello: {type: play, prompt: hi, next: route}
      route: {type: switch, cases: [{trigger: vip, next: agent}], default: sorry}
      agent: {type: transfer, target: "sip:agent@pbx.example.com", on_failure: sorry}
      sorry: {type: say, text: Sorry, next: bye}
      bye: {type: hangup}
`

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is a board over a real store, service and flow engine.
type world struct {
	svc    *session.Service
	engine *flow.Engine
	board  *stats.Board
	clock  *clock
}

func newWorld(t *testing.T) *world {
	t.Helper()
	st := bolttest.MustOpen(t, bolt.Options{})
	svc := session.NewService(st, session.Options{})
	d, err := flow.ParseFS(fstest.MapFS{"flows.yaml": {Data: []byte(flowsYAML)}})
	if err != nil {
		t.Fatal(err)
	}
	snap, _, err := flow.Compile(d, flow.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{svc: svc, clock: &clock{t: time.Date(2026, 11, 20, 9, 0, 30, 0, time.UTC)}}
	w.board = stats.New(stats.Config{Service: svc, Now: w.clock.now})
	w.engine = flow.NewEngine(flow.Config{Service: svc, Store: st, Snapshot: snap, Observer: w.board})
	if err := w.engine.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.engine.Close)
	if err := w.board.Open(context.Background(), w.engine); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.board.Close)
	return w
}

func (w *world) call(t *testing.T, from, flowName string) *session.Call {
	t.Helper()
	c, _, err := w.svc.CreateCall(context.Background(), session.NewCall{From: from, To: "+4940555000", Flow: flowName}, session.WriteOptions{Origin: session.OriginClient})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.engine.StartCall(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *world) next(t *testing.T, id string, o *flow.Outcome) {
	t.Helper()
	if _, err := w.engine.Next(context.Background(), id, o); err != nil {
		t.Fatal(err)
	}
}

// listed returns the board's list as ID → call.
func listed(b *stats.Board) map[string]stats.Call {
	calls, _, _, _ := b.Changes(0)
	out := map[string]stats.Call{}
	for _, c := range calls {
		out[c.ID] = c
	}
	return out
}

// stateOf returns the state a call is listed in, "" when it is not listed
// (or not yet known).
func stateOf(b *stats.Board, id string) session.State {
	c, ok := listed(b)[id]
	if !ok || c.Call == nil {
		return ""
	}
	return c.State
}

func TestBoard_CallsAndFunnel(t *testing.T) {
	w := newWorld(t)
	a := w.call(t, "+4930111111", "line")
	b := w.call(t, "+4930222222", "line")
	c := w.call(t, "+4930333333", "")
	w.next(t, a.ID, &flow.Outcome{}) // hello
	w.next(t, b.ID, &flow.Outcome{}) // hello
	w.next(t, b.ID, &flow.Outcome{Status: flow.StatusDone})
	testenv.WaitFor(t, "the three calls listed", func() bool { return len(listed(w.board)) == 3 })

	got := listed(w.board)
	if g := got[a.ID]; g.From != "+4930111111" || g.Flow != "line" || g.Node != "hello" || g.State != "active" {
		t.Errorf("call a listed as %+v", g)
	}
	if g := got[b.ID]; g.Node != "sorry" {
		t.Errorf("call b stands at %q, want sorry (not a VIP: the default)", g.Node)
	}
	if g := got[c.ID]; g.Flow != "" || g.Node != "" {
		t.Errorf("call c (no flow) listed as %+v", g)
	}

	r := w.board.Report(time.Hour)
	if r.ActiveCalls != 3 {
		t.Errorf("activeCalls %d, want 3", r.ActiveCalls)
	}
	if len(r.Flows) != 1 || r.Flows[0].Flow != "line" || r.Flows[0].Calls != 2 {
		t.Fatalf("flows %+v", r.Flows)
	}
	var funnel []string
	for _, n := range r.Flows[0].Nodes {
		funnel = append(funnel, n.Node+"="+string(rune('0'+n.Calls)))
	}
	if want := []string{"hello=1", "route=0", "agent=0", "sorry=1", "bye=0"}; !slices.Equal(funnel, want) {
		t.Errorf("funnel %q, want %q", funnel, want)
	}
	if last := r.Calls.Started[len(r.Calls.Started)-1]; last != 3 {
		t.Errorf("calls started this minute: %d, want 3", last)
	}

	t.Run("Ended", func(t *testing.T) {
		_, _, seq, _ := w.board.Changes(0)
		if _, err := w.svc.EndCall(context.Background(), a.ID, "caller-hangup", "test"); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, "call a listed as ended", func() bool { return listed(w.board)[a.ID].State == "ended" })
		changed, removed, _, reset := w.board.Changes(seq)
		if reset || len(removed) != 0 || len(changed) != 1 || changed[0].ID != a.ID || changed[0].EndReason != "caller-hangup" || changed[0].Node != "" {
			t.Errorf("changes since %d: %+v removed %v reset %v", seq, changed, removed, reset)
		}
		r := w.board.Report(time.Hour)
		if r.ActiveCalls != 2 || r.Calls.Ended[len(r.Calls.Ended)-1] != 1 || r.Flows[0].Calls != 1 {
			t.Errorf("after the end: active %d, ended %v, flow calls %d", r.ActiveCalls, r.Calls.Ended, r.Flows[0].Calls)
		}
	})
}

func TestBoard_Series(t *testing.T) {
	w := newWorld(t)
	w.board.Transfer("refer", "answered")
	w.board.Transfer("refer", "busy")
	w.clock.add(time.Minute)
	w.board.Transfer("invite", "no-answer")
	w.board.Transfer("refer", "accepted")
	w.board.AutomationSent("crm")
	w.board.AutomationFailed("crm", false)
	w.board.AutomationFailed("crm", true)
	w.board.AutomationsPending(4)

	r := w.board.Report(3 * time.Minute)
	if len(r.Minutes) != 3 || r.WindowSeconds != 180 {
		t.Fatalf("%d minutes, window %ds", len(r.Minutes), r.WindowSeconds)
	}
	now := time.Date(2026, 11, 20, 9, 1, 0, 0, time.UTC).Unix()
	if want := []int64{now - 120, now - 60, now}; !slices.Equal(r.Minutes, want) {
		t.Errorf("minutes %v, want %v", r.Minutes, want)
	}
	for name, tt := range map[string]struct{ got, want stats.Series }{
		"answered":   {r.Transfers.Answered, stats.Series{0, 1, 1}},
		"failed":     {r.Transfers.Failed, stats.Series{0, 1, 1}},
		"busy":       {r.Transfers.FailedBy["busy"], stats.Series{0, 1, 0}},
		"no-answer":  {r.Transfers.FailedBy["no-answer"], stats.Series{0, 0, 1}},
		"delivered":  {r.Automations.Delivered, stats.Series{0, 0, 1}},
		"retried":    {r.Automations.Failed, stats.Series{0, 0, 1}},
		"gave up":    {r.Automations.GaveUp, stats.Series{0, 0, 1}},
		"no started": {r.Calls.Started, stats.Series{0, 0, 0}},
	} {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s: %v, want %v", name, tt.got, tt.want)
		}
	}
	if r.Transfers.Totals["answered"] != 1 || r.Transfers.Totals["accepted"] != 1 || len(r.Transfers.FailedBy) != 2 {
		t.Errorf("totals %v, failed by %v", r.Transfers.Totals, r.Transfers.FailedBy)
	}
	if r.Automations.Pending != 4 {
		t.Errorf("pending %d", r.Automations.Pending)
	}

	// A day later the ring has moved on: the old minutes count nothing.
	w.clock.add(24 * time.Hour)
	r = w.board.Report(stats.MaxWindow)
	if len(r.Minutes) != 1440 || slices.Max(r.Transfers.Answered) != 0 {
		t.Errorf("a day later: %d minutes, answered max %d", len(r.Minutes), slices.Max(r.Transfers.Answered))
	}
}

func TestBoard_LoadsWhatWasActive(t *testing.T) {
	w := newWorld(t)
	a := w.call(t, "+4930111111", "line")
	w.next(t, a.ID, &flow.Outcome{})
	// A new board over the same store, as after a restart.
	b := stats.New(stats.Config{Service: w.svc})
	if err := b.Open(context.Background(), w.engine); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if got := listed(b)[a.ID]; got.Node != "hello" || got.From != "+4930111111" {
		t.Errorf("after a start the call is listed as %+v", got)
	}
}

func TestBoard_ChangedWakes(t *testing.T) {
	w := newWorld(t)
	ch := w.board.Changed()
	w.board.Transfer("refer", "answered")
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed did not close on a change")
	}
}

func TestParseWindow(t *testing.T) {
	for in, want := range map[string]time.Duration{"1h": time.Hour, "15m": 15 * time.Minute, "24h": 24 * time.Hour, "1m": time.Minute} {
		if got, err := stats.ParseWindow(in); err != nil || got != want {
			t.Errorf("ParseWindow(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "30s", "90s", "25h", "-1h", "1d", "1h30s"} {
		if _, err := stats.ParseWindow(in); err == nil {
			t.Errorf("ParseWindow(%q) accepted", in)
		}
	}
}

// TestBoard_ReloadAfterLag: a board the feed dropped reads the calls again
// and learns how the ones it missed ended.
func TestBoard_ReloadAfterLag(t *testing.T) {
	w := newWorld(t)
	a := w.call(t, "+4930111111", "")
	b := stats.New(stats.Config{Service: w.svc}) // never Open: hears nothing
	if err := b.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := listed(b)[a.ID]; got.State != session.StateActive {
		t.Fatalf("listed as %+v", got)
	}
	if _, err := w.svc.EndCall(context.Background(), a.ID, "caller-hangup", "test"); err != nil {
		t.Fatal(err)
	}
	c := w.call(t, "+4930222222", "")
	if err := b.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := listed(b)
	if got[a.ID].State != session.StateEnded || got[a.ID].EndReason != "caller-hangup" || got[c.ID].State != session.StateActive {
		t.Errorf("after the reload: a %+v, c %+v", got[a.ID], got[c.ID])
	}
}

// TestBoard_TargetStateWakesOnChange: a probe that changes nothing wakes
// no wallboard; a target going down does.
func TestBoard_TargetStateWakesOnChange(t *testing.T) {
	w := newWorld(t)
	w.board.TargetState("sip:10.0.0.5:5060", true)
	ch := w.board.Changed()
	w.board.TargetState("sip:10.0.0.5:5060", true)
	select {
	case <-ch:
		t.Fatal("a probe that changed nothing woke the board")
	default:
	}
	w.board.TargetState("sip:10.0.0.5:5060", false)
	select {
	case <-ch:
	default:
		t.Fatal("the target going down did not wake the board")
	}
}

// TestBoard_EndedCallsBounded: the list holds at most MaxEnded ended
// calls, the ones that ended last; those that ended first leave it (and
// readers hear so), and active calls stay whatever their number. The sweep
// still drops ended calls once KeepEnded is up.
func TestBoard_EndedCallsBounded(t *testing.T) {
	w := newWorld(t)
	b := stats.New(stats.Config{Service: w.svc, Now: w.clock.now, MaxEnded: 3})
	if err := b.Open(context.Background(), w.engine); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	active := w.call(t, "+4930000000", "")
	var ended []string
	for i := range 5 {
		c := w.call(t, fmt.Sprintf("+49301111%02d", i), "")
		if _, err := w.svc.EndCall(context.Background(), c.ID, "caller-hangup", "test"); err != nil {
			t.Fatal(err)
		}
		ended = append(ended, c.ID)
	}
	last := ended[len(ended)-1]
	testenv.WaitFor(t, "the last call listed as ended", func() bool { return stateOf(b, last) == session.StateEnded })

	got := listed(b)
	if stateOf(b, active.ID) != session.StateActive {
		t.Errorf("the active call is listed as %+v", got[active.ID])
	}
	for i, id := range ended {
		_, on := got[id]
		if want := i >= 2; on != want {
			t.Errorf("ended call %d (of 5) listed: %v, want %v", i+1, on, want)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d calls listed, want 4 (1 active, 3 ended)", len(got))
	}
	_, removed, _, reset := b.Changes(1)
	if reset || !slices.Contains(removed, ended[0]) || !slices.Contains(removed, ended[1]) {
		t.Errorf("removed since 1: %v (reset %v), want the first two ended calls", removed, reset)
	}

	// Ten minutes after they ended (the store stamps ends with the real
	// time), the sweep drops the three; a call ending after it is listed
	// beside the active one.
	w.clock.add(time.Since(w.clock.now()) + stats.DefaultKeepEnded + time.Minute)
	b.Sweep()
	c := w.call(t, "+4930222222", "")
	if _, err := w.svc.EndCall(context.Background(), c.ID, "caller-hangup", "test"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the new call listed as ended", func() bool { return stateOf(b, c.ID) == session.StateEnded })
	if got := listed(b); len(got) != 2 || stateOf(b, active.ID) != session.StateActive {
		t.Errorf("after the sweep and one more call: %d listed (%v), want the active call and the new one", len(got), got)
	}
}
