package sipbridge_test

import (
	"context"
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

// The flow decides what happens to the INVITE: known customers are redirected with their
// context (the 302 is checked by the same scenario as redirect mode), others turned away.
func TestBridge_FlowRedirectsOrRejects(t *testing.T) {
	cfg := sipbridge.Config{Flow: "sip-redirect", Carry: carryAll}
	t.Run("Redirect", func(t *testing.T) {
		e := startBridgeFlows(t, cfg, "testdata/flows")
		uac := sipptest.Start(t, "uac_redirect_context.xml", e.bridge.Addr(), 0)
		uac.Wait(t)
		contact := uac.Logged(t, "contact")
		_, query, _ := strings.Cut(strings.TrimSuffix(contact, ">"), "?")
		hs, err := sipcodec.DecodeURIHeaders(query)
		if err != nil || len(hs) == 0 {
			t.Fatalf("Contact %q: %v", contact, err)
		}
		call := e.endedCall(t, hs[0].Value)
		if call.Flow != "sip-redirect" || call.EndReason != sipbridge.EndRedirected {
			t.Errorf("call flow=%q endReason=%q, want sip-redirect/redirected", call.Flow, call.EndReason)
		}
		if got := e.vars(t, call.ID)["app.to-queue.status"]; got != "done" {
			t.Errorf("app.to-queue.status=%v, want done", got)
		}
	})
	t.Run("Rejected", func(t *testing.T) {
		e := startBridgeFlows(t, cfg, "testdata/flows")
		uac := sipptest.Start(t, "uac_rejected.xml", e.bridge.Addr(), 0)
		uac.Wait(t)
		page, err := e.svc.ListCalls(context.Background(), session.ListOptions{State: session.FilterAll})
		if err != nil || len(page.Items) != 1 {
			t.Fatalf("calls=%v %v, want one", page, err)
		}
		if got, want := e.endedCall(t, page.Items[0].ID).EndReason, "unknown-caller"; got != want {
			t.Errorf("EndReason=%q, want %q", got, want)
		}
	})
}

// The flow transfers an answered call: the play action is skipped (no media in the
// bridge), the first REFER's target is busy, so on_failure tries the second, which answers.
// The scenario is the one the REST busy-then-answered test uses. In redirect mode too: a
// call a flow takes is not answered statelessly.
func TestBridge_FlowTransfersParkedCall(t *testing.T) {
	for _, mode := range []sipbridge.Mode{sipbridge.ModeAnswer, sipbridge.ModeRedirect} {
		t.Run(string(mode), func(t *testing.T) {
			testFlowTransfersParkedCall(t, sipbridge.Config{Flow: "sip-refer", Mode: mode, Target: "sip:queue@192.0.2.30:5060"})
		})
	}
}

func testFlowTransfersParkedCall(t *testing.T, cfg sipbridge.Config) {
	e := startBridgeFlows(t, cfg, "testdata/flows")
	sub := e.svc.Subscribe("")
	defer sub.Close()
	uac := sipptest.Start(t, "uac_refer_busy_retry.xml", e.bridge.Addr(), 0)
	uac.Wait(t)
	page, err := e.svc.ListCalls(context.Background(), session.ListOptions{State: session.FilterAll})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("calls=%v %v, want one", page, err)
	}
	call := e.endedCall(t, page.Items[0].ID)
	if got, want := call.EndReason, sipbridge.EndTransferred; got != want {
		t.Errorf("EndReason=%q, want %q", got, want)
	}
	vars := e.vars(t, call.ID)
	for k, want := range map[string]any{"app.greet.status": nil, "app.first-agent.status": "failed", "app.second-agent.status": "done", "sip.transfer.status": "answered"} {
		if got := vars[k]; got != want {
			t.Errorf("%s=%v, want %v", k, got, want)
		}
	}
	list, _ := vars["sip.transfers"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["reasonCode"] != "busy" {
		t.Errorf("sip.transfers=%v", vars["sip.transfers"])
	}
	h, _ := e.svc.History(context.Background(), call.ID, 0, 0)
	flowActor := false
	for _, entry := range h {
		if entry.Actor == "flow:sip-refer" {
			flowActor = true
		}
	}
	if !flowActor {
		t.Errorf("no history entry by flow:sip-refer")
	}
	n := 0
	for ev := range drain(sub) {
		if ev.Type == session.EventTransferStatus {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d transfer.status events, want 2 (one per transfer)", n)
	}
}

// A flow whose first action is an invite-mode transfer bridges the caller to its target
// before answering (the scenarios are those of bridge mode).
func TestBridge_FlowBridgesInvite(t *testing.T) {
	port := testenv.FreeUDPPort(t)
	uas := sipptest.Start(t, "uas_bridge_target.xml", "", port)
	dir := t.TempDir()
	yaml := "flows:\n  sip-bridge:\n    start: to-agent\n    nodes:\n      to-agent:\n        type: transfer\n" +
		"        target: \"sip:agent@127.0.0.1:" + strconv.Itoa(port) + "\"\n        mode: invite\n"
	if err := os.WriteFile(filepath.Join(dir, "bridge.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startBridgeFlows(t, sipbridge.Config{Flow: "sip-bridge", Carry: carryAll}, dir)
	uac := sipptest.Start(t, "uac_bridge_caller.xml", e.bridge.Addr(), 0)
	uac.Wait(t)
	uas.Wait(t)
	parent, leg := e.bridgedCalls(t)
	if parent.EndReason != sipbridge.EndHangup || leg.EndReason != sipbridge.EndHangup {
		t.Errorf("end reasons %q/%q, want hangup/hangup", parent.EndReason, leg.EndReason)
	}
	if got := e.vars(t, parent.ID)["app.to-agent.status"]; got != "done" {
		t.Errorf("app.to-agent.status=%v, want done", got)
	}
}
