package sipbridge_test

import (
	"context"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// TestBridge_ReferFromCaller: the caller (an AI agent callctx answered) hands the call back
// with a REFER. callctx records it in one write (call.referred), calls the target with the
// Refer-To's headers, connects the caller to it and reports 100 Trying and 200 OK in NOTIFYs.
func TestBridge_ReferFromCaller(t *testing.T) {
	e := startBridge(t, sipbridge.Config{Map: map[string]sipcodec.Rule{
		"X-AI-Confidence": {Type: sipcodec.TypeNumber},
		"sip.uui.score":   {Var: "ivr.ai_score", Type: sipcodec.TypeNumber},
	}})
	sub := e.svc.Subscribe("")
	defer sub.Close()
	targetPort := testenv.FreeUDPPort(t)
	target := sipptest.Start(t, "uas_refer_target.xml", "", targetPort)
	ai := sipptest.Start(t, "uac_caller_refers.xml", e.bridge.Addr(), 0, "-key", "target_port", strconv.Itoa(targetPort))
	call := e.call(t)
	ai.Wait(t)
	target.Wait(t)
	if got := target.Logged(t, "callctx-call-id"); got != call.ID {
		t.Errorf("the target got X-Callctx-Call-Id %q, want %q", got, call.ID)
	}
	ended := e.endedCall(t, call.ID)
	if ended.EndReason != sipbridge.EndHangup {
		t.Errorf("end reason %q", ended.EndReason)
	}

	got := e.vars(t, call.ID)
	for k, want := range map[string]any{
		session.VarReferTarget:      "sip:queue@127.0.0.1:" + strconv.Itoa(targetPort),
		session.VarReferReferredBy:  "sip:bot@ai.example.com",
		session.VarReferLeg:         "caller",
		"sip.refer.x-ai-summary":    "Customer wants a refund",
		"sip.refer.x-ai-confidence": 0.93, // typed by the INVITE's rule, under the REFER's name
		"ivr.ai_score":              float64(9),
		"sip.refer.uui.topic":       "billing",
		"sip.transfer.status":       "answered",
	} {
		if got[k] != want {
			t.Errorf("%s=%#v, want %#v", k, got[k], want)
		}
	}
	if _, ok := got["sip.refer.via"]; ok {
		t.Error("the Via of the Refer-To became a variable")
	}

	// One write recorded the REFER, published as call.referred.
	hist, err := e.svc.History(context.Background(), call.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	writes := 0
	for _, h := range hist {
		if _, ok := h.Changes[session.VarReferTarget]; ok {
			writes++
			if _, ok := h.Changes["sip.refer.x-ai-summary"]; !ok || h.Actor != sipbridge.Actor {
				t.Errorf("the REFER's write %+v lacks its context or actor", h)
			}
		}
	}
	if writes != 1 {
		t.Errorf("%d writes recorded the REFER, want 1", writes)
	}
	testenv.WaitFor(t, "a call.referred event", func() bool {
		for {
			select {
			case ev := <-sub.Events():
				if ev.CallID == call.ID && ev.Type == session.EventCallReferred {
					return true
				}
			default:
				return false
			}
		}
	})
}

// TestBridge_ReferFromFarEnd: ACS direct routing, steps 6 and 7. The caller is bridged to an
// AI agent; the agent hands the call back with a REFER. callctx calls the target with the
// agent's summary, moves the caller to it, tells the agent 200 OK, and the call goes on with
// the target after the agent hangs up.
func TestBridge_ReferFromFarEnd(t *testing.T) {
	aiPort, targetPort := testenv.FreeUDPPort(t), testenv.FreeUDPPort(t)
	e := startBridge(t, sipbridge.Config{Mode: sipbridge.ModeBridge, Target: "sip:ai@127.0.0.1:" + strconv.Itoa(aiPort)})
	ai := sipptest.Start(t, "uas_ai_refers.xml", "", aiPort, "-key", "target_port", strconv.Itoa(targetPort))
	target := sipptest.Start(t, "uas_refer_target.xml", "", targetPort)
	caller := sipptest.Start(t, "uac_bridge_caller_handed_back.xml", e.bridge.Addr(), 0)
	call := e.call(t)
	ai.Wait(t)
	caller.Wait(t)
	target.Wait(t)
	ended := e.endedCall(t, call.ID)
	if ended.EndReason != sipbridge.EndHangup {
		t.Errorf("end reason %q, want the caller's hangup", ended.EndReason)
	}
	got := e.vars(t, call.ID)
	if got[session.VarReferLeg] != "callee" || got["sip.refer.x-ai-summary"] != "Customer wants a refund" || got["sip.transfer.status"] != "answered" {
		t.Errorf("session %v", got)
	}
	legs, _ := got[session.VarLegs].([]any)
	if len(legs) != 2 {
		t.Fatalf("legs %v, want the agent's and the target's", legs)
	}
	for _, id := range legs {
		if c := e.endedCall(t, id.(string)); c.ParentID != call.ID {
			t.Errorf("leg %s has parent %q", id, c.ParentID)
		}
	}
}

// A REFER from an address outside sip.allow is refused with 403, and changes nothing.
func TestBridge_ReferForbidden(t *testing.T) {
	aiPort := testenv.FreeUDPPort(t)
	e := startBridge(t, sipbridge.Config{Mode: sipbridge.ModeBridge, Target: "sip:ai@127.0.0.2:" + strconv.Itoa(aiPort),
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	ai := sipptest.Start(t, "uas_ai_refers_forbidden.xml", "", aiPort, "-i", "127.0.0.2")
	caller := sipptest.Start(t, "uac_bridge_caller_gets_bye.xml", e.bridge.Addr(), 0)
	call := e.call(t)
	ai.Wait(t)
	caller.Wait(t)
	e.endedCall(t, call.ID)
	if v, ok := e.vars(t, call.ID)[session.VarReferTarget]; ok {
		t.Errorf("a refused REFER was recorded: %v", v)
	}
}

// TestBridge_ReferFlowDecides: with refer action flow, the REFER is recorded (call.referred)
// and the call's flow routes on it: its switch waits for sip.refer.target, finds a refund in
// the agent's summary, and transfers to the Refer-To target with a header of its own; the
// agent hears the outcome of that transfer.
func TestBridge_ReferFlowDecides(t *testing.T) {
	aiPort, targetPort := testenv.FreeUDPPort(t), testenv.FreeUDPPort(t)
	dir := t.TempDir()
	flows := `
triggers:
  referred: {when: {var: sip.refer.target, op: set}}
  wants-refund: {when: {var: sip.refer.x-ai-summary, op: contains, value: refund}}
flows:
  handback:
    start: to-ai
    nodes:
      to-ai: {type: transfer, target: "sip:ai@127.0.0.1:` + strconv.Itoa(aiPort) + `", mode: invite, next: wait-referral}
      wait-referral:
        type: switch
        wait: {until: referred, timeout: 20s}
        cases: [{trigger: wants-refund, next: to-refunds}]
        default: bye
      to-refunds: {type: transfer, target: "{sip.refer.target}", mode: invite, headers: {X-Route: refunds}}
      bye: {type: hangup}
`
	if err := os.WriteFile(filepath.Join(dir, "handback.yaml"), []byte(flows), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startBridgeFlows(t, sipbridge.Config{
		Flow:  "handback",
		Refer: sipbridge.ReferConfig{Action: sipbridge.ReferFlow},
		Carry: session.TransferContext{Variables: []string{"sip.refer.x-ai-summary"}, Names: map[string]string{"sip.refer.x-ai-summary": "X-AI-Summary"}},
	}, dir)
	ai := sipptest.Start(t, "uas_ai_refers.xml", "", aiPort, "-key", "target_port", strconv.Itoa(targetPort))
	target := sipptest.Start(t, "uas_flow_refer_target.xml", "", targetPort)
	caller := sipptest.Start(t, "uac_bridge_caller_handed_back.xml", e.bridge.Addr(), 0)
	call := e.call(t)
	ai.Wait(t)
	caller.Wait(t)
	target.Wait(t)
	e.endedCall(t, call.ID)
	got := e.vars(t, call.ID)
	if got[session.VarReferTarget] != "sip:queue@127.0.0.1:"+strconv.Itoa(targetPort) || got["sip.transfer.status"] != "answered" {
		t.Errorf("session %v", got)
	}
}

// A transfer that names no target goes to the transfer_target of the call's flow, which wins
// over the configured one (as a bot's own number wins over Live Hub's in Live Hub). The
// configured one is tested end to end in cmd/callctx (TestMain_TransferLiveHubEvent).
func TestBridge_TransferDefaultTargetOfFlow(t *testing.T) {
	dir := t.TempDir()
	flows := `
flows:
  greet:
    transfer_target: "sip:default-queue@192.0.2.30"
    start: bye
    nodes:
      bye: {type: hangup}
  plain:
    start: bye
    nodes:
      bye: {type: hangup}
`
	if err := os.WriteFile(filepath.Join(dir, "greet.yaml"), []byte(flows), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startBridgeFlows(t, sipbridge.Config{TransferTarget: "sip:other@192.0.2.99"}, dir)
	for flowName, want := range map[string]string{"greet": "sip:default-queue@192.0.2.30", "plain": "sip:other@192.0.2.99", "": "sip:other@192.0.2.99"} {
		if got := e.bridge.FlowTransferTarget(flowName); got != want {
			t.Errorf("flow %q: %q, want %q", flowName, got, want)
		}
	}
}

// Context by reference on a REFER: one X-Callctx-Context header in the Refer-To URI, holding
// the link the bridge was given for the call, instead of the variables.
func TestBridge_TransferContextByReference(t *testing.T) {
	e := startBridge(t, sipbridge.Config{TransferTarget: "sip:default-queue@192.0.2.30",
		ContextLink: func(callID string) (string, error) { return "https://callctx.test/v1/context/tok-" + callID, nil }})
	uac := sipptest.Start(t, "uac_refer_default.xml", e.bridge.Addr(), 0)
	call := e.activeCall(t)
	transferWhenAnswered(t, e, call.ID, session.TransferRequest{
		Headers: []session.TransferHeader{{Name: "X-My-Header", Value: "my_value"}}, HangupAfter: ms(50),
		Context: &session.TransferContext{As: sipbridge.CarryReference, Variables: []string{"sip.*"}},
	})
	uac.Wait(t)
	referTo, err := url.PathUnescape(uac.Logged(t, "refer-to"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(referTo, "&X-Callctx-Context=https://callctx.test/v1/context/tok-"+call.ID+"&") || strings.Contains(referTo, "X-Customer-Id") {
		t.Fatalf("Refer-To %s", referTo)
	}
	e.endedCall(t, call.ID)
}
