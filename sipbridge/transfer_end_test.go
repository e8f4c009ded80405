package sipbridge_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
)

// eventTypes collects the types of a call's events until it has seen transfer.status and
// call.ended.
func eventTypes(tb testing.TB, sub *session.Subscription) []session.EventType {
	tb.Helper()
	var types []session.EventType
	seen := map[session.EventType]bool{}
	timeout := time.After(20 * time.Second)
	for !seen[session.EventTransferStatus] || !seen[session.EventCallEnded] {
		select {
		case e := <-sub.Events():
			types = append(types, e.Type)
			seen[e.Type] = true
		case <-timeout:
			tb.Fatalf("no transfer.status and call.ended events; events so far %v", types)
		}
	}
	return types
}

// TestBridge_TransferOutcomeWhenTheCallEndsFirst: however the call ends while its transfer
// rings, the transfer gets an outcome (never pending for good), published as transfer.status
// before call.ended.
func TestBridge_TransferOutcomeWhenTheCallEndsFirst(t *testing.T) {
	for _, tc := range []struct {
		name, scenario string
		end            func(e *testEnv, callID string) // nil: the caller ends the call
		status         session.TransferStatus
		reasonCode     string
		endReason      string
	}{
		// No NOTIFY after the caller's BYE: the call ended first.
		{"caller hangs up", "uac_refer_caller_hangs_up.xml", nil, session.TransferFailed, session.ReasonCallEnded, sipbridge.EndHangup},
		// The call is ended over REST; the transferee then ends the subscription without a
		// final answer: the end explains it, recorded on the ended session.
		{"ended over REST", "uac_refer_ended_by_callctx.xml", func(e *testEnv, id string) {
			if _, err := e.svc.EndCall(context.Background(), id, "agent-ended", "crm"); err != nil {
				t.Error(err)
			}
		}, session.TransferFailed, session.ReasonCallEnded, "agent-ended"},
		// The transferee ends the subscription with NOTIFY 100 Trying while the call is up:
		// no final answer; the call stays until the caller hangs up.
		{"no final answer", "uac_refer_no_final_answer.xml", nil, session.TransferFailed, session.ReasonNoFinalAnswer, sipbridge.EndHangup},
		// BYE and NOTIFY 200 arrive together: answered, and the call ends as transferred.
		{"answered as the caller hangs up", "uac_refer_answered_then_bye.xml", nil, session.TransferAnswered, "", sipbridge.EndTransferred},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &wire{}
			e := startBridge(t, sipbridge.Config{Observer: w})
			uac := sipptest.Start(t, tc.scenario, e.bridge.Addr(), 0)
			call := e.activeCall(t)
			sub := e.svc.Subscribe(call.ID)
			defer sub.Close()
			tr := transferWhenAnswered(t, e, call.ID, session.TransferRequest{Target: "sip:agent@192.0.2.30", HangupAfter: ms(0)})
			if tc.end != nil {
				testenv.WaitFor(t, "the target to ring (NOTIFY 180)", func() bool { return w.get("in NOTIFY 200") > 0 })
				tc.end(e, call.ID)
			}
			uac.Wait(t)
			types := eventTypes(t, sub) // ended over REST, the outcome comes after the end
			ended := e.endedCall(t, call.ID)
			if got := ended.EndReason; got != tc.endReason {
				t.Errorf("EndReason=%q, want %q", got, tc.endReason)
			}
			vars := e.vars(t, call.ID)
			if vars["sip.transfer.id"] != tr.ID || vars["sip.transfer.status"] != string(tc.status) {
				t.Fatalf("transfer %v is %v, want %s %s; events %v", vars["sip.transfer.id"], vars["sip.transfer.status"], tr.ID, tc.status, types)
			}
			if got, _ := vars["sip.transfer.reasonCode"].(string); got != tc.reasonCode {
				t.Errorf("reasonCode=%q, want %q", got, tc.reasonCode)
			}
			if _, ok := vars["sip.transfer.sipCode"]; ok && tc.status == session.TransferFailed {
				t.Errorf("sipCode=%v, want none: there was no final answer", vars["sip.transfer.sipCode"])
			}
			if tc.end == nil && slices.Index(types, session.EventTransferStatus) > slices.Index(types, session.EventCallEnded) {
				t.Errorf("events %v: want transfer.status before call.ended", types)
			}
			if log := e.logs.String(); strings.Contains(log, "sip record transfer failed") {
				t.Errorf("a transfer record was refused:\n%s", log)
			}
			observed := "transfer refer " + outcome(tc.status, tc.reasonCode)
			testenv.WaitFor(t, observed, func() bool { return w.get(observed) == 1 })
		})
	}
}

// outcome is how the Observer names a transfer's outcome.
func outcome(st session.TransferStatus, reasonCode string) string {
	if st == session.TransferFailed {
		return reasonCode
	}
	return string(st)
}
