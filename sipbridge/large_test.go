package sipbridge_test

import (
	"context"
	"encoding/json"
	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/internal/testenv"
	"strings"
	"testing"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
)

// largeNotes is context over what a UDP datagram may carry (about 1,300 bytes) and within
// what sipp can check with ereg (it cuts headers at about 2,000 characters).
var largeNotes = strings.Repeat("x", 1500)

func writeNotes(t *testing.T, e *testEnv, id string) {
	t.Helper()
	v, _ := json.Marshal(largeNotes)
	if _, _, err := e.svc.Merge(context.Background(), id, map[string]json.RawMessage{"ivr.notes": v}, session.WriteOptions{Actor: "crm", Origin: session.OriginClient}); err != nil {
		t.Fatal(err)
	}
}

func TestBridge_LargeContextTravelsOverTCP(t *testing.T) {
	e := startBridge(t, sipbridge.Config{})
	uac := sipptest.Start(t, "uac_refer_large.xml", e.bridge.Addr(), 0, "-t", "t1")
	call := e.activeCall(t)
	writeNotes(t, e, call.ID)
	transferWhenAnswered(t, e, call.ID, session.TransferRequest{
		Target: "sip:agent@192.0.2.20:5060", HangupAfter: ms(0),
		Context: &session.TransferContext{Variables: []string{"ivr.notes"}},
	})
	uac.Wait(t)
	if got := uac.Logged(t, "notes"); got != largeNotes {
		t.Errorf("X-Ivr-Notes in Refer-To has %d characters, want %d", len(got), len(largeNotes))
	}
	if got, want := e.endedCall(t, call.ID).EndReason, sipbridge.EndTransferred; got != want {
		t.Errorf("EndReason=%q, want %q", got, want)
	}
}

func TestBridge_LargeContextOverUDPRefused(t *testing.T) {
	e := startBridge(t, sipbridge.Config{})
	uac := sipptest.Start(t, "uac_park_wait_bye.xml", e.bridge.Addr(), 0)
	call := e.activeCall(t)
	writeNotes(t, e, call.ID)
	var err error
	testenv.WaitFor(t, "the call to be answered", func() bool {
		_, err = e.bridge.Transfer(context.Background(), call.ID, session.TransferRequest{
			Target: "sip:agent@192.0.2.20:5060", Context: &session.TransferContext{Variables: []string{"ivr.notes"}},
		})
		return session.ErrorCode(err) != session.CodeConflict
	})
	if got, want := session.ErrorCode(err), session.CodeInvalid; got != want {
		t.Fatalf("Transfer: %v, want code %q", err, want)
	}
	if msg := session.ErrorMessage(err); !strings.Contains(msg, "UDP") || !strings.Contains(msg, "TCP") {
		t.Errorf("message %q should say the UDP limit and the TCP way out", msg)
	}
	// The call is untouched: still parked and transferable.
	if c, _ := e.svc.Call(context.Background(), call.ID); c.State != session.StateActive {
		t.Fatalf("call state=%q, want active", c.State)
	}
	if _, err := e.svc.EndCall(context.Background(), call.ID, "done", "crm"); err != nil {
		t.Fatal(err)
	}
	uac.Wait(t)
}
