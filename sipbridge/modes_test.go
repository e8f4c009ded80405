package sipbridge_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

var carryAll = session.TransferContext{Variables: []string{"sip.x-*", "sip.uui.*"}, As: "both"}

func TestBridge_RedirectMode(t *testing.T) {
	e := startBridge(t, sipbridge.Config{Mode: sipbridge.ModeRedirect, Target: "sip:queue@192.0.2.30:5060", Carry: carryAll})
	uac := sipptest.Start(t, "uac_redirect_context.xml", e.bridge.Addr(), 0)
	uac.Wait(t)

	contact := uac.Logged(t, "contact")
	_, query, _ := strings.Cut(strings.TrimSuffix(contact, ">"), "?")
	hs, err := sipcodec.DecodeURIHeaders(query)
	if err != nil {
		t.Fatalf("Contact %q: %v", contact, err)
	}
	got := map[string]string{}
	for _, h := range hs {
		got[h.Name] = h.Value
	}
	id := got["X-Callctx-Call-Id"]
	call := e.endedCall(t, id)
	if got, want := call.EndReason, sipbridge.EndRedirected; got != want {
		t.Errorf("EndReason=%q, want %q", got, want)
	}
	u, err := sipcodec.ParseUUI(got["User-to-User"])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(u.Pairs), "[{sipkey1 sipval1} {sipkey2 sipval2} {sip.x-customer-id 12345} {sip.x-transfer-reason BillingInquiry}]"; got != want {
		t.Errorf("UUI=%s, want %s", got, want)
	}
	if got["X-Sip-Uui-Sipkey1"] != "sipval1" {
		t.Errorf("X-Sip-Uui-Sipkey1=%q", got["X-Sip-Uui-Sipkey1"])
	}
	if v := e.vars(t, id); v["sip.x-customer-id"] != "12345" {
		t.Errorf("session of the redirected call: sip.x-customer-id=%v", v["sip.x-customer-id"])
	}
}

// bridgeEnv starts a sipp UAS as the target and a bridge in bridge mode pointing at it.
func bridgeEnv(t *testing.T, uasScenario string) (*testEnv, *sipptest.Run) {
	port := testenv.FreeUDPPort(t)
	uas := sipptest.Start(t, uasScenario, "", port)
	e := startBridge(t, sipbridge.Config{Mode: sipbridge.ModeBridge, Target: fmt.Sprintf("sip:agent@127.0.0.1:%d", port), Carry: carryAll})
	return e, uas
}

// legs returns the parent call and its one leg once both have ended.
func (e *testEnv) bridgedCalls(t *testing.T) (parent, leg *session.Call) {
	t.Helper()
	page, err := e.svc.ListCalls(context.Background(), session.ListOptions{State: session.FilterAll})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range page.Items {
		if c.ParentID == "" {
			parent = c
		} else {
			leg = c
		}
	}
	if parent == nil || leg == nil || len(page.Items) != 2 {
		t.Fatalf("calls=%v, want a parent and one leg", page.Items)
	}
	if leg.ParentID != parent.ID {
		t.Fatalf("leg.ParentID=%q, want %q", leg.ParentID, parent.ID)
	}
	return e.endedCall(t, parent.ID), e.endedCall(t, leg.ID)
}

func TestBridge_BridgeMode(t *testing.T) {
	tests := []struct {
		name, uac, uas       string
		parentEnd, legEnd    string
		legAnsweredAndListed bool
	}{
		{"CallerHangsUp", "uac_bridge_caller.xml", "uas_bridge_target.xml", sipbridge.EndHangup, sipbridge.EndHangup, true},
		{"SessionRefresh", "uac_bridge_caller_refresh.xml", "uas_bridge_target.xml", sipbridge.EndHangup, sipbridge.EndHangup, true},
		{"TargetRefreshes", "uac_bridge_caller_stays.xml", "uas_bridge_target_refreshes.xml", sipbridge.EndHangup, sipbridge.EndHangup, true},
		{"HoldAndResume", "uac_bridge_caller_hold.xml", "uas_bridge_target_hold.xml", sipbridge.EndHangup, sipbridge.EndHangup, true},
		{"HoldRefused", "uac_bridge_caller_hold_refused.xml", "uas_bridge_target_hold_refused.xml", sipbridge.EndHangup, sipbridge.EndHangup, true},
		{"CalleeHangsUp", "uac_bridge_caller_gets_bye.xml", "uas_bridge_target_hangs_up.xml", sipbridge.EndCalleeHangup, sipbridge.EndHangup, true},
		{"TargetBusy", "uac_bridge_caller_busy.xml", "uas_bridge_target_busy.xml", sipbridge.EndRejected, sipbridge.EndRejected, true},
		{"CallerCancels", "uac_bridge_caller_cancels.xml", "uas_bridge_target_rings.xml", sipbridge.EndCancel, sipbridge.EndCancel, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, uas := bridgeEnv(t, tt.uas)
			uac := sipptest.Start(t, tt.uac, e.bridge.Addr(), 0)
			uac.Wait(t)
			uas.Wait(t)
			parent, leg := e.bridgedCalls(t)
			if got, want := parent.EndReason, tt.parentEnd; got != want {
				t.Errorf("parent EndReason=%q, want %q", got, want)
			}
			if got, want := leg.EndReason, tt.legEnd; got != want {
				t.Errorf("leg EndReason=%q, want %q", got, want)
			}
			if got, want := uas.Logged(t, "callctx-call-id"), parent.ID; got != want {
				t.Errorf("X-Callctx-Call-Id=%q, want the parent %q", got, want)
			}
			if got, want := fmt.Sprint(e.vars(t, parent.ID)["sip.legs"]), fmt.Sprint([]any{leg.ID}); got != want {
				t.Errorf("sip.legs=%s, want %s", got, want)
			}
			if got, want := leg.Direction, session.DirectionOutbound; got != want {
				t.Errorf("leg Direction=%q, want %q", got, want)
			}
		})
	}
}

func TestBridge_InviteModeTransfer(t *testing.T) {
	t.Run("Answered", func(t *testing.T) {
		port := testenv.FreeUDPPort(t)
		uas := sipptest.Start(t, "uas_bridge_target.xml", "", port)
		e := startBridge(t, sipbridge.Config{Carry: carryAll})
		uac := sipptest.Start(t, "uac_park_reinvite_bye.xml", e.bridge.Addr(), 0)
		call := e.activeCall(t)
		tr := transferWhenAnswered(t, e, call.ID, session.TransferRequest{Mode: session.TransferInvite, Target: fmt.Sprintf("sip:agent@127.0.0.1:%d", port)})
		uac.Wait(t)
		uas.Wait(t)
		parent, leg := e.bridgedCalls(t)
		if parent.ID != call.ID {
			t.Fatalf("parent=%s, want %s", parent.ID, call.ID)
		}
		vars := e.vars(t, call.ID)
		if vars["sip.transfer.id"] != tr.ID || vars["sip.transfer.status"] != "answered" {
			t.Errorf("transfer=%v %v, want %s answered", vars["sip.transfer.id"], vars["sip.transfer.status"], tr.ID)
		}
		list, _ := vars["sip.transfers"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["legCallId"] != leg.ID || list[0].(map[string]any)["mode"] != "invite" {
			t.Errorf("sip.transfers=%v, want the leg %s", vars["sip.transfers"], leg.ID)
		}
		if got, want := parent.EndReason, sipbridge.EndHangup; got != want {
			t.Errorf("parent EndReason=%q, want %q", got, want)
		}
		if got, want := leg.EndReason, sipbridge.EndHangup; got != want {
			t.Errorf("leg EndReason=%q, want %q", got, want)
		}
	})
	t.Run("Busy", func(t *testing.T) {
		port := testenv.FreeUDPPort(t)
		uas := sipptest.Start(t, "uas_bridge_target_busy.xml", "", port)
		e := startBridge(t, sipbridge.Config{Carry: carryAll})
		uac := sipptest.Start(t, "uac_park_wait_bye.xml", e.bridge.Addr(), 0)
		call := e.activeCall(t)
		transferWhenAnswered(t, e, call.ID, session.TransferRequest{Mode: session.TransferInvite, Target: fmt.Sprintf("sip:agent@127.0.0.1:%d", port)})
		uas.Wait(t)
		testenv.WaitFor(t, "the transfer to fail", func() bool { return e.vars(t, call.ID)["sip.transfer.status"] == "failed" })
		if got, want := e.vars(t, call.ID)["sip.transfer.reasonCode"], "busy"; got != want {
			t.Errorf("reasonCode=%v, want %v", got, want)
		}
		if c, _ := e.svc.Call(context.Background(), call.ID); c.State != session.StateActive {
			t.Fatalf("call state=%q after a failed transfer, want active", c.State)
		}
		if _, err := e.svc.EndCall(context.Background(), call.ID, "done", "crm"); err != nil {
			t.Fatal(err)
		}
		uac.Wait(t)
	})
}

func TestBridge_RedirectModeLargeContextOverUDP(t *testing.T) {
	e := startBridge(t, sipbridge.Config{Mode: sipbridge.ModeRedirect, Target: "sip:queue@192.0.2.30:5060", Carry: carryAll})
	uac := sipptest.Start(t, "uac_redirect_large.xml", e.bridge.Addr(), 0)
	uac.Wait(t)
	contact := uac.Logged(t, "contact")
	_, query, _ := strings.Cut(strings.TrimSuffix(contact, ">"), "?")
	id := strings.TrimPrefix(query, "X-Callctx-Call-Id=")
	if got := e.vars(t, id)["sip.x-notes"]; got != strings.Repeat("n", 1500) {
		t.Errorf("the session lacks the large context: sip.x-notes=%.20v…", got)
	}
	if !strings.Contains(e.logs.String(), "sent the call ID only") {
		t.Errorf("the fallback was not logged")
	}
}

// TestBridge_RedirectACKRetransmitted: the redirect's transaction ends at the caller's ACK,
// and an ACK the caller sends again after that is dropped: no answer, no error logged, and
// the INVITE made one call. (A caller retransmits its ACK only if it gets the 302 again.)
func TestBridge_RedirectACKRetransmitted(t *testing.T) {
	e := startBridge(t, sipbridge.Config{Mode: sipbridge.ModeRedirect, Target: "sip:queue@192.0.2.30:5060"})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to, err := net.ResolveUDPAddr("udp", e.bridge.Addr())
	if err != nil {
		t.Fatal(err)
	}
	send := func(msg string) {
		t.Helper()
		if _, err := pc.WriteTo([]byte(msg), to); err != nil {
			t.Fatal(err)
		}
	}
	me := pc.LocalAddr().String()
	head := func(method, toTag string) string {
		return method + " sip:1000@" + e.bridge.Addr() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + me + ";branch=z9hG4bK-ack-retransmitted\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:caller@" + me + ">;tag=caller\r\n" +
			"To: <sip:1000@" + e.bridge.Addr() + ">" + toTag + "\r\n" +
			"Call-ID: ack-retransmitted@test\r\nCSeq: 1 " + method + "\r\n"
	}
	send(head("INVITE", "") + "Contact: <sip:caller@" + me + ">\r\nContent-Length: 0\r\n\r\n")

	buf := make([]byte, 4096)
	_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no answer to the INVITE: %v", err)
	}
	msg, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	res, ok := msg.(*sip.Response)
	if !ok || res.StatusCode != 302 {
		t.Fatalf("answer to the INVITE:\n%s", buf[:n])
	}
	tag, _ := res.To().Params.Get("tag")
	ack := head("ACK", ";tag="+tag) + "Content-Length: 0\r\n\r\n"
	for range 3 {
		send(ack)
		time.Sleep(50 * time.Millisecond)
	}
	_ = pc.SetReadDeadline(time.Now().Add(time.Second))
	if n, _, err := pc.ReadFrom(buf); err == nil {
		t.Errorf("callctx answered an ACK:\n%s", buf[:n])
	}
	if got := e.callCount(t); got != 1 {
		t.Errorf("%d calls, want 1", got)
	}
	if logs := e.logs.String(); strings.Contains(logs, `"level":"ERROR"`) || strings.Contains(logs, `"level":"WARN"`) {
		t.Errorf("the ACKs were logged as a problem:\n%s", logs)
	}
}
