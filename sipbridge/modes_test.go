package sipbridge_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callctx/callctx/flow"
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

// TestBridge_RedirectStateless: in redirect mode an INVITE over UDP is answered statelessly
// (RFC 3261 §8.2.7). The caller's ACKs are taken without an answer or a logged error, and
// every copy of the INVITE (a caller sends one when its 302 was lost; the network may delay
// or duplicate one), before the ACK or after it, gets the same 302: the same To tag and the
// same call, whose context it carries, and no second call is made.
func TestBridge_RedirectStateless(t *testing.T) {
	e := startBridge(t, sipbridge.Config{Mode: sipbridge.ModeRedirect, Target: "sip:queue@192.0.2.30:5060"})
	u := newUDPCaller(t, e.bridge.Addr())
	invite := u.request("INVITE", "z9hG4bK-invite", 1, "", "")
	u.send(invite)
	first := u.final(302, "the INVITE")
	u.send(invite)
	sameRedirect(t, first, u.final(302, "the INVITE's copy before the ACK"))
	tag, _ := first.To().Params.Get("tag")
	for range 3 {
		u.send(u.request("ACK", "z9hG4bK-invite", 1, tag, ""))
		time.Sleep(50 * time.Millisecond)
	}
	u.unanswered("the ACKs")
	u.send(invite)
	sameRedirect(t, first, u.final(302, "the INVITE's copy after the ACK"))
	e.oneCall(t)
	e.noProblemLogged(t)

	// A new INVITE (another branch: another transaction) is another call.
	u.send(u.request("INVITE", "z9hG4bK-second", 2, "", ""))
	second := u.final(302, "a second INVITE")
	if second.Contact().Address.String() == first.Contact().Address.String() {
		t.Errorf("a second INVITE was redirected with the first call's Contact %s", first.Contact().Address.String())
	}
	if got := e.callCount(t); got != 2 {
		t.Errorf("%d calls, want 2", got)
	}
}

// TestBridge_RedirectRefusedWhenLate: while the calls answered last took longer than the
// bridge allows, a new call is refused 503 with a Retry-After and makes no call, the
// refusals are logged once, a copy of a refused INVITE gets the 503 again, and once answers
// are in time again calls are redirected as before.
func TestBridge_RedirectRefusedWhenLate(t *testing.T) {
	e := startBridge(t, sipbridge.Config{Mode: sipbridge.ModeRedirect, Target: "sip:queue@192.0.2.30:5060"})
	u := newUDPCaller(t, e.bridge.Addr())
	u.send(u.request("INVITE", "z9hG4bK-first", 1, "", ""))
	u.final(302, "the first INVITE")
	e.oneCall(t)

	e.bridge.SetLateAfterForTest(0, time.Hour) // the first call's answer took longer than that
	for i, branch := range []string{"z9hG4bK-late", "z9hG4bK-late2"} {
		invite := u.request("INVITE", branch, 2+i, "", "")
		u.send(invite)
		res := u.final(503, "an INVITE while answers are late")
		if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "1" {
			t.Errorf("Retry-After %v, want 1", ra)
		}
		tag, _ := res.To().Params.Get("tag")
		u.send(invite)
		if again := u.final(503, "the copy of a refused INVITE"); again.To().Params.String() != res.To().Params.String() {
			t.Errorf("the copy's answer has To %s, want %s", again.To().Params.String(), res.To().Params.String())
		}
		u.send(u.request("ACK", branch, 2+i, tag, ""))
	}
	u.unanswered("the ACKs of the 503s")
	e.oneCall(t)
	if logs := e.logs.String(); strings.Count(logs, "answering new SIP calls in time") != 1 {
		t.Errorf("the refusals were not logged once:\n%s", logs)
	}

	e.bridge.SetLateAfterForTest(sipbridge.DefaultLateAfter, time.Hour)
	u.send(u.request("INVITE", "z9hG4bK-after", 4, "", ""))
	u.final(302, "an INVITE once answers are in time")
	if got := e.callCount(t); got != 2 {
		t.Errorf("%d calls, want 2", got)
	}
}

// TestBridge_RedirectStatelessThenRouted: once a routing table is published, a new call goes
// to its flow, while a copy of an INVITE answered statelessly before it still gets its 302
// again and makes no second call.
func TestBridge_RedirectStatelessThenRouted(t *testing.T) {
	e := startBridgeFlows(t, sipbridge.Config{Mode: sipbridge.ModeRedirect, Target: "sip:queue@192.0.2.30:5060"}, "testdata/flows")
	u := newUDPCaller(t, e.bridge.Addr())
	invite := u.request("INVITE", "z9hG4bK-invite", 1, "", "")
	u.send(invite)
	first := u.final(302, "the INVITE")

	dir := t.TempDir()
	flows, err := os.ReadFile("testdata/flows/sip.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routing := "routing:\n  country: DE\n  routes:\n    - {number: \"+49 30 111\", flow: sip-refer}\n  default: sip-redirect\n"
	for name, text := range map[string]string{"sip.yaml": string(flows), "routing.yaml": routing} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	snap, problems, err := flow.Load(dir, flow.CompileOptions{})
	if err != nil {
		t.Fatalf("load flows: %v %v", err, problems)
	}
	e.flows.Reload(snap)
	u.send(invite)
	sameRedirect(t, first, u.final(302, "the INVITE's copy after the routing table came"))
	e.oneCall(t)

	// The table's default flow turns a caller without a customer ID away.
	u.send(u.request("INVITE", "z9hG4bK-second", 2, "", ""))
	res := u.response(10 * time.Second)
	for res != nil && res.IsProvisional() {
		res = u.response(10 * time.Second)
	}
	if res == nil || res.StatusCode < 300 {
		t.Fatalf("answer to the INVITE after the routing table: %v, want a refusal", res)
	}
	tag, _ := res.To().Params.Get("tag")
	u.send(u.request("ACK", "z9hG4bK-second", 2, tag, ""))
	if call := e.lastCall(t); call.Flow != "sip-redirect" || call.EndReason != "unknown-caller" {
		t.Errorf("the call after the routing table: flow=%q endReason=%q, want sip-redirect, unknown-caller", call.Flow, call.EndReason)
	}
	if got := e.callCount(t); got != 2 {
		t.Errorf("%d calls, want 2", got)
	}
}

// sameRedirect fails the test unless got is want again: the same To tag and Contact.
func sameRedirect(t *testing.T, want, got *sip.Response) {
	t.Helper()
	wantTag, _ := want.To().Params.Get("tag")
	gotTag, _ := got.To().Params.Get("tag")
	if wantTag == "" || gotTag != wantTag {
		t.Errorf("To tag %q, want %q (the same as the first 302's)", gotTag, wantTag)
	}
	if g, w := got.Contact().Address.String(), want.Contact().Address.String(); g != w {
		t.Errorf("Contact %s, want %s", g, w)
	}
}

// TestBridge_AnswerAcknowledged: an answered call's INVITE transaction ends with its 200; a
// copy of the INVITE makes no second call: before the ACK the caller gets the 200 again,
// after it nothing. The call goes on until the caller's BYE. The BYE's transaction ends with
// its 200, and the same BYE sent again gets 200 again.
func TestBridge_AnswerAcknowledged(t *testing.T) {
	e := startBridge(t, sipbridge.Config{})
	u := newUDPCaller(t, e.bridge.Addr())
	sdp := "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	invite := u.request("INVITE", "z9hG4bK-invite", 1, "", sdp)
	u.send(invite)
	tag := u.answered(200, "the INVITE")
	u.send(invite) // as a caller does that has not had the 200 yet
	u.answered(200, "the INVITE's copy before the ACK")
	u.send(u.request("ACK", "z9hG4bK-ack", 1, tag, ""))
	time.Sleep(100 * time.Millisecond)
	u.send(invite)
	u.unanswered("the INVITE's copy after the ACK")
	e.oneCall(t)
	call := e.activeCall(t)
	bye := u.request("BYE", "z9hG4bK-bye", 2, tag, "")
	u.send(bye)
	u.answered(200, "the BYE")
	time.Sleep(100 * time.Millisecond)
	u.send(bye) // as a caller does that missed the 200
	u.answered(200, "the BYE sent again")
	if got, want := e.endedCall(t, call.ID).EndReason, sipbridge.EndHangup; got != want {
		t.Errorf("EndReason=%q, want %q", got, want)
	}
	e.noProblemLogged(t)
}

// udpCaller speaks SIP by hand over UDP, one call, for what sipp cannot send: copies of a
// request after its transaction has ended.
type udpCaller struct {
	t        *testing.T
	pc       net.PacketConn
	to       net.Addr
	me, them string
}

func newUDPCaller(t *testing.T, addr string) *udpCaller {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return &udpCaller{t: t, pc: pc, to: to, me: pc.LocalAddr().String(), them: addr}
}

// request is a request of the call: toTag "" outside the dialog, sdp "" for no body.
func (u *udpCaller) request(method, branch string, cseq int, toTag, sdp string) string {
	to := "<sip:1000@" + u.them + ">"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	ct := ""
	if sdp != "" {
		ct = "Content-Type: application/sdp\r\n"
	}
	return method + " sip:1000@" + u.them + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + u.me + ";branch=" + branch + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:caller@" + u.me + ">;tag=caller\r\nTo: " + to + "\r\n" +
		"Call-ID: udp-caller@test\r\nCSeq: " + strconv.Itoa(cseq) + " " + method + "\r\n" +
		"Contact: <sip:caller@" + u.me + ">\r\n" + ct +
		"Content-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
}

func (u *udpCaller) send(msg string) {
	u.t.Helper()
	if _, err := u.pc.WriteTo([]byte(msg), u.to); err != nil {
		u.t.Fatal(err)
	}
}

// response returns the next response callctx sends within wait, nil when none comes.
// A request from callctx fails the test.
func (u *udpCaller) response(wait time.Duration) *sip.Response {
	u.t.Helper()
	buf := make([]byte, 65536)
	_ = u.pc.SetReadDeadline(time.Now().Add(wait))
	n, _, err := u.pc.ReadFrom(buf)
	if err != nil {
		return nil
	}
	msg, err := sip.ParseMessage(buf[:n])
	if err != nil {
		u.t.Fatalf("%v:\n%s", err, buf[:n])
	}
	res, ok := msg.(*sip.Response)
	if !ok {
		u.t.Fatalf("callctx sent a request:\n%s", buf[:n])
	}
	return res
}

// answered returns the To tag of callctx's final answer to what (see final).
func (u *udpCaller) answered(want int, what string) string {
	u.t.Helper()
	tag, _ := u.final(want, what).To().Params.Get("tag")
	return tag
}

// final returns callctx's final answer to what (passing over provisional ones), which must
// come within 10 s with status code want.
func (u *udpCaller) final(want int, what string) *sip.Response {
	u.t.Helper()
	res := u.response(10 * time.Second)
	for res != nil && res.IsProvisional() {
		res = u.response(10 * time.Second)
	}
	if res == nil || res.StatusCode != want {
		u.t.Fatalf("answer to %s: %v, want %d", what, res, want)
	}
	return res
}

// unanswered fails the test when callctx answers what within a second.
func (u *udpCaller) unanswered(what string) {
	u.t.Helper()
	if res := u.response(time.Second); res != nil {
		u.t.Errorf("callctx answered %s:\n%v", what, res)
	}
}

// oneCall fails the test unless the store holds exactly one call.
func (e *testEnv) oneCall(t *testing.T) {
	t.Helper()
	if got := e.callCount(t); got != 1 {
		t.Errorf("%d calls, want 1", got)
	}
}

// noProblemLogged fails the test when the bridge logged a warning or an error.
func (e *testEnv) noProblemLogged(t *testing.T) {
	t.Helper()
	if logs := e.logs.String(); strings.Contains(logs, `"level":"ERROR"`) || strings.Contains(logs, `"level":"WARN"`) {
		t.Errorf("a problem was logged:\n%s", logs)
	}
}
