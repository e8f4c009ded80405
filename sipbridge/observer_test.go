package sipbridge_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
)

// wire records what an Observer hears.
type wire struct {
	mu    sync.Mutex
	count map[string]int
}

func (w *wire) add(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count == nil {
		w.count = map[string]int{}
	}
	w.count[s]++
}

func (w *wire) SIPRequest(inbound bool, method string, status int) {
	dir := "out"
	if inbound {
		dir = "in"
	}
	w.add(fmt.Sprintf("%s %s %d", dir, method, status))
}

func (w *wire) Transfer(method, outcome string) { w.add("transfer " + method + " " + outcome) }

func (w *wire) TargetState(target string, up bool) { w.add(fmt.Sprintf("target %s %v", target, up)) }

func (w *wire) get(s string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count[s]
}

// TestBridge_Observer: the requests on the wire and the transfers' outcomes reach the
// Observer, over a real sipp caller whose first transfer fails busy and second succeeds.
func TestBridge_Observer(t *testing.T) {
	obs := &wire{}
	e := startBridge(t, sipbridge.Config{Observer: obs})
	uac := sipptest.Start(t, "uac_refer_busy_retry.xml", e.bridge.Addr(), 0)
	call := e.activeCall(t)
	transferWhenAnswered(t, e, call.ID, session.TransferRequest{Target: "sip:busy@192.0.2.20", HangupAfter: ms(0)})
	testenv.WaitFor(t, "the first transfer to fail", func() bool { return e.vars(t, call.ID)["sip.transfer.status"] == "failed" })
	transferWhenAnswered(t, e, call.ID, session.TransferRequest{Target: "sip:agent@192.0.2.21", HangupAfter: ms(0)})
	uac.Wait(t)
	e.endedCall(t, call.ID)

	for _, tc := range []struct {
		what string
		min  int
	}{
		{"in INVITE 200", 1}, // answered and parked
		{"in ACK 0", 1},      // an ACK has no response
		{"out REFER 202", 2}, // both transfers accepted by the caller's side
		{"in NOTIFY 200", 2}, // the outcomes, reported by NOTIFY
		{"out BYE 200", 1},   // callctx hangs up once the second transfer is answered
		{"transfer refer busy", 1},
		{"transfer refer answered", 1},
	} {
		if got := obs.get(tc.what); got < tc.min {
			t.Errorf("%q heard %d times, want at least %d; heard %v", tc.what, got, tc.min, obs.count)
		}
	}
	if got := obs.get("transfer refer answered"); got != 1 {
		t.Errorf("answered transfers=%d, want 1", got)
	}
}
