package main

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/peertest"
	"github.com/callctx/callctx/internal/testenv"
)

// interop is one callctx (HTTP and SIP on loopback, a bbolt file) that real phones call:
// the interop tests' subtests share it, each with callers of its own name.
type interop struct {
	base string // HTTP
	sip  string // SIP host:port, UDP and TCP
	tls  string // SIP over TLS host:port
	// cert and key are callctx's TLS certificate and key, which Kamailio uses too.
	cert, key string
}

func startInterop(t *testing.T) *interop {
	t.Helper()
	cfg := testConfig(t.TempDir())
	cfg.SIP.Carry.Variables = []string{"sip.x-customer-id"}
	i := &interop{tls: "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))}
	i.cert, i.key = peertest.Cert(t)
	cfg.SIP.TLS.Listen, cfg.SIP.TLS.CertFile, cfg.SIP.TLS.KeyFile = i.tls, i.cert, i.key
	m := MustOpenMain(t, cfg)
	t.Cleanup(func() { m.Close() })
	i.base, i.sip = "http://"+m.HTTPAddr(), m.SIPAddr()
	return i
}

// uri is callctx's SIP URI for user, over transport ("" for UDP).
func (i *interop) uri(user, transport string) string {
	u := "sip:" + user + "@" + i.sip
	if transport != "" {
		u += ";transport=" + transport
	}
	return u
}

// baresipCall starts baresip with o, has it call callctx over transport ("" for UDP) and
// returns it once the call is established, with the call's ID.
func (i *interop) baresipCall(t *testing.T, o peertest.BaresipOptions, transport string) (*peertest.Baresip, string) {
	t.Helper()
	b := peertest.StartBaresip(t, o)
	b.Dial(t, i.uri("ivr", transport))
	b.WaitEvent(t, "CALL_ESTABLISHED")
	return b, i.activeCall(t, b.User)
}

// linphoneCall starts linphonec with o, has it call callctx and returns it once the call
// is connected, with the call's ID.
func (i *interop) linphoneCall(t *testing.T, o peertest.LinphoneOptions) (*peertest.Linphone, string) {
	t.Helper()
	l := peertest.StartLinphone(t, o)
	l.Send(t, "call "+i.uri("ivr", ""))
	l.WaitOutput(t, "connected.", 1)
	return l, i.activeCall(t, l.User)
}

// activeCall waits for the active call from caller (call.from) and returns its ID.
func (i *interop) activeCall(t *testing.T, caller string) string {
	t.Helper()
	id := ""
	testenv.WaitFor(t, "the call from "+caller, func() bool {
		var page struct {
			Items []struct{ ID, From string }
		}
		getJSON(t, i.base+"/v1/calls?state=active&limit=200", &page)
		for _, c := range page.Items {
			if c.From == caller {
				id = c.ID
				return true
			}
		}
		return false
	})
	return id
}

// vars returns the session variables of a call.
func (i *interop) vars(t *testing.T, id string) map[string]any {
	t.Helper()
	var s struct{ Variables map[string]any }
	if status := getJSON(t, i.base+"/v1/sessions/"+id, &s); status != http.StatusOK {
		t.Fatalf("GET session %s: %d", id, status)
	}
	return s.Variables
}

// transfer asks for a REFER transfer of call id over REST and fails unless it is accepted.
// A phone shows the call connected when the 200 arrives, before callctx has its ACK: until
// then callctx answers 409 (not answered yet), and the request is tried again.
func (i *interop) transfer(t *testing.T, id string, body map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	var status int
	var res []byte
	testenv.WaitFor(t, "the transfer to be accepted", func() bool {
		status, res = post(t, i.base+"/v1/calls/"+id+"/transfer", string(b))
		return status != http.StatusConflict || !strings.Contains(string(res), "not answered yet")
	})
	if status != http.StatusAccepted {
		t.Fatalf("transfer: %d %s", status, res)
	}
}

// outcome waits for the transfer of call id to have a final status and returns the
// transfer variables.
func (i *interop) outcome(t *testing.T, id string) map[string]any {
	t.Helper()
	var vars map[string]any
	testenv.WaitFor(t, "the transfer's outcome", func() bool {
		vars = i.vars(t, id)
		st, _ := vars["sip.transfer.status"].(string)
		return st != "" && st != "pending"
	})
	return vars
}

// ended waits for call id to end and returns its end reason.
func (i *interop) ended(t *testing.T, id string) string {
	t.Helper()
	var c struct{ State, EndReason string }
	testenv.WaitFor(t, "call "+id+" to end", func() bool {
		getJSON(t, i.base+"/v1/calls/"+id, &c)
		return c.State == "ended"
	})
	return c.EndReason
}

// versions returns the session versions that recorded the call's end and the transfer's
// final status (0 when none did).
func (i *interop) versions(t *testing.T, id string) (end, outcome int) {
	t.Helper()
	var page struct {
		Items []struct {
			Version int
			Actor   string
			Changes map[string]struct{ New any }
		}
	}
	if status := getJSON(t, i.base+"/v1/sessions/"+id+"/history?limit=1000", &page); status != http.StatusOK {
		t.Fatalf("GET history: %d", status)
	}
	h := page.Items
	for _, e := range h {
		if c, ok := e.Changes["call.state"]; ok && c.New == "ended" {
			end = e.Version
		}
		if c, ok := e.Changes["sip.transfer.status"]; ok && c.New != "pending" && e.Actor == "sip" {
			outcome = e.Version
		}
	}
	return end, outcome
}

// aiSummary is the context an agent's desktop shows: characters that must be
// percent-encoded in a Refer-To URI and come out as they were.
const aiSummary = "Refund 50% of #48213 & fee=yes; über"

// TestInterop runs callctx against phones and an SBC nobody here wrote: Debian's
// linphonec 5.1 and baresip 1.0 as callers, agents and transfer targets, Kamailio 5.6 in
// front as the SBC. What each shows is summed up in docs/interop.md.
func TestInterop(t *testing.T) {
	cc := startInterop(t)
	for _, s := range []struct {
		name string
		run  func(*testing.T, *interop)
	}{
		{"LinphoneViaKamailio_ReferToAgent", interopLinphoneViaKamailioReferToAgent},
		{"BaresipViaKamailioOverTLS_ReferToAgent", interopBaresipViaKamailioOverTLSReferToAgent},
		{"BaresipCaller_ReferToLinphoneAgent", interopBaresipCallerReferToLinphoneAgent},
		{"BaresipCaller_BusyTarget", interopBaresipCallerBusyTarget},
		{"BaresipCallerOverTCP_UnknownTarget", interopBaresipCallerOverTCPUnknownTarget},
		{"LinphoneCallerHangsUpWhileTargetRings", interopLinphoneCallerHangsUpWhileTargetRings},
		{"CallEndedOverRESTWhileTargetRings", interopCallEndedOverRESTWhileTargetRings},
		{"LinphonePCMUOnly", interopLinphonePCMUOnly},
		{"BaresipCaller_HoldAndResume", interopBaresipCallerHoldAndResume},
	} {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			s.run(t, cc)
		})
	}
}

// interopLinphoneViaKamailioReferToAgent: an SBC adds the contact centre's context to the
// call; a Linphone caller (its own offer: Opus first) is answered and parked, then transferred
// by REFER to an agent (baresip), whose INVITE carries the context as real, decoded headers;
// the REFER follows the route set through the SBC.
func interopLinphoneViaKamailioReferToAgent(t *testing.T, cc *interop) {
	uui := hex.EncodeToString([]byte("customerId=48213;reason=refund"))
	sbc := peertest.StartKamailio(t, peertest.KamailioOptions{Callctx: cc.sip, Transport: "tcp",
		Headers: []string{"X-Customer-ID: 48213", "User-to-User: " + strings.ToUpper(uui) + ";encoding=hex"}})
	agent := peertest.StartBaresip(t, peertest.BaresipOptions{User: "agent", AutoAnswer: true})
	caller := peertest.StartLinphone(t, peertest.LinphoneOptions{User: "alice"})
	caller.Send(t, "call "+sbc.URI("ivr"))
	caller.WaitOutput(t, "connected.", 1)
	id := cc.activeCall(t, "alice")
	vars := cc.vars(t, id)
	for k, want := range map[string]string{"sip.x-customer-id": "48213", "sip.uui.customerId": "48213", "sip.uui.reason": "refund"} {
		if vars[k] != want {
			t.Errorf("%s=%v, want %q", k, vars[k], want)
		}
	}
	cc.transfer(t, id, map[string]any{"transferTarget": agent.URI(), "transferNotificationsHangupMS": 0,
		"transferSipHeaders": []map[string]string{{"name": "X-AI-Summary", "value": aiSummary}}})
	agent.WaitEvent(t, "CALL_ESTABLISHED")
	if v := cc.outcome(t, id); v["sip.transfer.status"] != "answered" || v["sip.transfer.sipCode"] != float64(200) {
		t.Errorf("transfer %v/%v, want answered/200", v["sip.transfer.status"], v["sip.transfer.sipCode"])
	}
	if got := cc.ended(t, id); got != "transferred" {
		t.Errorf("endReason=%q, want transferred", got)
	}
	invite := sipMessage(agent.Output(), "INVITE sip:agent@")
	for _, want := range []string{"\nX-AI-Summary: " + aiSummary + "\r", "\nX-Customer-Id: 48213\r", "\nX-Callctx-Call-Id: " + id + "\r"} {
		if !strings.Contains(invite, want) {
			t.Errorf("the agent's INVITE lacks %q:\n%s", strings.TrimSpace(want), invite)
		}
	}
	if out := sbc.Output(); !strings.Contains(out, "in-dialog REFER") || !strings.Contains(out, "in-dialog BYE") {
		t.Errorf("callctx's REFER and BYE did not follow the route set through the SBC:\n%s", out)
	}
}

// interopBaresipViaKamailioOverTLSReferToAgent: the SBC reaches callctx over TLS and
// record-routes: callctx's REFER and BYE go back over the SBC's TLS connection (callctx could
// not open one of its own to the SBC: it does not trust the SBC's self-signed certificate).
func interopBaresipViaKamailioOverTLSReferToAgent(t *testing.T, cc *interop) {
	sbc := peertest.StartKamailio(t, peertest.KamailioOptions{Callctx: cc.tls, Transport: "tls", CertFile: cc.cert, KeyFile: cc.key,
		Headers: []string{"X-Customer-ID: 48214"}})
	agent := peertest.StartBaresip(t, peertest.BaresipOptions{User: "agent", AutoAnswer: true})
	caller := peertest.StartBaresip(t, peertest.BaresipOptions{User: "ivan"})
	caller.Dial(t, sbc.URI("ivr"))
	caller.WaitEvent(t, "CALL_ESTABLISHED")
	id := cc.activeCall(t, "ivan")
	if v := cc.vars(t, id); v["sip.x-customer-id"] != "48214" {
		t.Errorf("sip.x-customer-id=%v, want 48214", v["sip.x-customer-id"])
	}
	cc.transfer(t, id, map[string]any{"transferTarget": agent.URI(), "transferNotificationsHangupMS": 0})
	agent.WaitEvent(t, "CALL_ESTABLISHED")
	if v := cc.outcome(t, id); v["sip.transfer.status"] != "answered" {
		t.Errorf("transfer %v (%v), want answered", v["sip.transfer.status"], v["sip.transfer.reason"])
	}
	if got := cc.ended(t, id); got != "transferred" {
		t.Errorf("endReason=%q, want transferred", got)
	}
	for _, method := range []string{"REFER", "BYE"} {
		if !regexp.MustCompile(`in-dialog ` + method + ` .* from 127\.0\.0\.1:\d+/tls\n`).MatchString(sbc.Output()) {
			t.Errorf("callctx's %s did not come over TLS through the SBC:\n%s", method, sbc.Output())
		}
	}
}

// interopBaresipCallerReferToLinphoneAgent: a baresip caller transferred to a Linphone agent.
// baresip 1.0 keeps the Refer-To URI's headers in the new call's Request-URI and To instead of
// making them headers, so the agent finds callctx's context there, still percent-encoded (and
// baresip would read a %XX escape in the URI as a printf conversion, so only context without
// escapes gets through it intact): quirks of that baresip, which callctx does not work around;
// Linphone as the transferee (above) sends real headers.
func interopBaresipCallerReferToLinphoneAgent(t *testing.T, cc *interop) {
	agent := peertest.StartLinphone(t, peertest.LinphoneOptions{User: "agent", AutoAnswer: true})
	_, id := cc.baresipCall(t, peertest.BaresipOptions{User: "heidi", Codecs: "opus/48000/2,PCMU/8000"}, "")
	cc.transfer(t, id, map[string]any{"transferTarget": agent.URI(), "transferNotificationsHangupMS": 0})
	agent.WaitOutput(t, "connected.", 1)
	if v := cc.outcome(t, id); v["sip.transfer.status"] != "answered" {
		t.Errorf("transfer %v (%v), want answered", v["sip.transfer.status"], v["sip.transfer.reason"])
	}
	if got := cc.ended(t, id); got != "transferred" {
		t.Errorf("endReason=%q, want transferred", got)
	}
	if log := agent.Log(); !strings.Contains(log, "INVITE sip:agent@127.0.0.1:"+strconv.Itoa(agent.Port)+"?X-Callctx-Call-Id="+id) {
		t.Errorf("the agent's INVITE does not show baresip's quirk (context in the Request-URI); log:\n%s", log)
	}
}

// interopBaresipCallerBusyTarget: a busy target: the transferee reports 486 (NOTIFY), the
// transfer fails as busy and the call stays with callctx, which a second transfer could take
// on.
func interopBaresipCallerBusyTarget(t *testing.T, cc *interop) {
	target := peertest.StartBaresip(t, peertest.BaresipOptions{User: "agent"})
	caller, id := cc.baresipCall(t, peertest.BaresipOptions{User: "bob"}, "")
	cc.transfer(t, id, map[string]any{"transferTarget": target.URI()})
	target.WaitEvent(t, "CALL_INCOMING")
	target.Hangup(t) // the agent refuses the call it is offered
	v := cc.outcome(t, id)
	if v["sip.transfer.status"] != "failed" || v["sip.transfer.reasonCode"] != "busy" || v["sip.transfer.sipCode"] != float64(486) {
		t.Errorf("transfer %v/%v/%v, want failed/busy/486", v["sip.transfer.status"], v["sip.transfer.reasonCode"], v["sip.transfer.sipCode"])
	}
	if v["call.state"] != "active" {
		t.Errorf("call.state=%v after a failed transfer, want active", v["call.state"])
	}
	caller.Hangup(t)
	if got := cc.ended(t, id); got != "hangup" {
		t.Errorf("endReason=%q, want hangup", got)
	}
}

// interopBaresipCallerOverTCPUnknownTarget: the caller reaches callctx over TCP; the target
// does not exist (nothing listens on its port). The REFER, the NOTIFYs and the BYE all use the
// caller's connection.
func interopBaresipCallerOverTCPUnknownTarget(t *testing.T, cc *interop) {
	caller, id := cc.baresipCall(t, peertest.BaresipOptions{User: "carol"}, "tcp")
	cc.transfer(t, id, map[string]any{"transferTarget": "sip:nobody@127.0.0.1:" + strconv.Itoa(peertest.FreePort(t)) + ";transport=tcp"})
	v := cc.outcome(t, id)
	if v["sip.transfer.status"] != "failed" || v["call.state"] != "active" {
		t.Errorf("transfer %v (%v, %v), call %v; want failed and the call active", v["sip.transfer.status"], v["sip.transfer.reasonCode"], v["sip.transfer.sipCode"], v["call.state"])
	}
	caller.Hangup(t)
	cc.ended(t, id)
}

// interopLinphoneCallerHangsUpWhileTargetRings: while the target rings, the caller hangs up:
// the transfer's outcome is recorded before the call's end.
func interopLinphoneCallerHangsUpWhileTargetRings(t *testing.T, cc *interop) {
	target := peertest.StartBaresip(t, peertest.BaresipOptions{User: "agent"})
	caller, id := cc.linphoneCall(t, peertest.LinphoneOptions{User: "dave"})
	cc.transfer(t, id, map[string]any{"transferTarget": target.URI()})
	target.WaitEvent(t, "CALL_INCOMING")
	caller.Send(t, "terminate 1") // the call with callctx; the new call rings on
	v := cc.outcome(t, id)
	reason := cc.ended(t, id)
	if v["sip.transfer.status"] != "failed" || v["sip.transfer.reasonCode"] != "call-ended" || reason != "hangup" {
		t.Errorf("transfer %v/%v, end %q; want failed/call-ended, hangup", v["sip.transfer.status"], v["sip.transfer.reasonCode"], reason)
	}
	if end, outcome := cc.versions(t, id); outcome == 0 || outcome > end {
		t.Errorf("the outcome is at version %d, the end at %d: want the outcome first", outcome, end)
	}
}

// interopCallEndedOverRESTWhileTargetRings: while the target rings, the call is ended over
// REST: callctx hangs up on the caller (baresip), which ends the REFER subscription with "500
// Connection reset by peer"; the outcome (call-ended) is recorded on the ended call, a write
// after the end.
func interopCallEndedOverRESTWhileTargetRings(t *testing.T, cc *interop) {
	target := peertest.StartBaresip(t, peertest.BaresipOptions{User: "agent"})
	_, id := cc.baresipCall(t, peertest.BaresipOptions{User: "erin"}, "")
	cc.transfer(t, id, map[string]any{"transferTarget": target.URI()})
	target.WaitEvent(t, "CALL_INCOMING")
	if status, body := post(t, cc.base+"/v1/calls/"+id+"/end", `{"reason":"agent-ended"}`); status != http.StatusOK {
		t.Fatalf("end: %d %s", status, body)
	}
	v := cc.outcome(t, id)
	if got := cc.ended(t, id); got != "agent-ended" {
		t.Errorf("endReason=%q, want agent-ended", got)
	}
	if v["sip.transfer.status"] != "failed" || v["sip.transfer.reasonCode"] != "call-ended" || v["sip.transfer.sipCode"] != float64(500) {
		t.Errorf("transfer %v/%v/%v (%v), want failed/call-ended/500: baresip's NOTIFY after callctx's BYE", v["sip.transfer.status"], v["sip.transfer.reasonCode"], v["sip.transfer.sipCode"], v["sip.transfer.reason"])
	}
	if end, outcome := cc.versions(t, id); outcome <= end {
		t.Errorf("the outcome is at version %d, the end at %d: want it written on the ended call", outcome, end)
	}
}

// interopLinphonePCMUOnly: Linphone offering PCMU only keeps the call (its media up,
// receive-only at callctx's end) until it hangs up.
func interopLinphonePCMUOnly(t *testing.T, cc *interop) {
	caller, id := cc.linphoneCall(t, peertest.LinphoneOptions{User: "frank", PCMUOnly: true})
	caller.WaitOutput(t, "Media streams established", 1)
	caller.Send(t, "terminate")
	if got := cc.ended(t, id); got != "hangup" {
		t.Errorf("endReason=%q, want hangup", got)
	}
	if strings.Contains(caller.Output(), "paused by") {
		t.Errorf("Linphone took callctx's answer for a hold:\n%s", caller.Output())
	}
}

// interopBaresipCallerHoldAndResume: baresip puts callctx on hold and resumes: two re-INVITEs,
// each answered; the call stays up until the caller hangs up.
func interopBaresipCallerHoldAndResume(t *testing.T, cc *interop) {
	caller, id := cc.baresipCall(t, peertest.BaresipOptions{User: "grace"}, "")
	caller.Command(t, "hold", "")
	testenv.WaitFor(t, "the hold's re-INVITE answered", func() bool { return strings.Count(caller.Output(), "SIP/2.0 200 OK") >= 2 })
	caller.Command(t, "resume", "")
	testenv.WaitFor(t, "the resume's re-INVITE answered", func() bool { return strings.Count(caller.Output(), "SIP/2.0 200 OK") >= 3 })
	hold := sipMessage(caller.Output(), "INVITE sip:callctx@")
	if !strings.Contains(hold, "a=sendonly") {
		t.Errorf("baresip's hold re-INVITE:\n%s", hold)
	}
	if v := cc.vars(t, id); v["call.state"] != "active" {
		t.Errorf("call.state=%v after hold and resume, want active", v["call.state"])
	}
	caller.Hangup(t)
	if got := cc.ended(t, id); got != "hangup" {
		t.Errorf("endReason=%q, want hangup", got)
	}
}

// sipMessage returns the first SIP message of baresip's trace that starts with start: up to
// the colour escape that ends each traced message.
func sipMessage(trace, start string) string {
	i := strings.Index(trace, start)
	if i < 0 {
		return ""
	}
	msg, _, _ := strings.Cut(trace[i:], "\x1b[")
	return msg
}
