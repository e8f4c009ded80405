package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/internal/testenv"
)

func TestLoadConfig_SIP(t *testing.T) {
	file := writeFile(t, "callctx.yaml", `
sip:
  listen: 127.0.0.1:5070
  mode: redirect
  target: sip:queue@10.0.0.5
  sbc: 10.0.0.1:5060
  carry:
    variables: [sip.x-*, ivr.*]
    as: both
    uui_encoding: plain
  map:
    X-Customer-ID: ivr.customer_id
    X-Score: {var: ivr.score, type: number}
    sip.uui.premium: {type: boolean}
  transfer_timeout: 20s
  allow: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"]
`)
	off := writeFile(t, "off.yaml", "sip:\n  listen: \"\"\n")
	for _, tc := range []struct {
		name string
		args []string
		env  func(string) string
		want string
	}{
		{"default", nil, env(), "127.0.0.1:5060"},
		{"file", []string{"--config", file}, env(), "127.0.0.1:5070"},
		{"env over file", []string{"--config", file}, env("CALLCTX_SIP", "127.0.0.1:5080"), "127.0.0.1:5080"},
		{"flag over env", []string{"--sip", "127.0.0.1:5090"}, env("CALLCTX_SIP", "127.0.0.1:5080"), "127.0.0.1:5090"},
		{"off in file", []string{"--config", off}, env(), ""},
		{"off by flag", []string{"--sip", ""}, env(), ""},
		{"off by env", nil, env("CALLCTX_SIP", "off"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.SIP.Listen; got != tc.want {
				t.Fatalf("sip.listen=%q, want %q", got, tc.want)
			}
		})
	}
	cfg, err := LoadConfig([]string{"--config", file}, env())
	if err != nil {
		t.Fatal(err)
	}
	bc, err := cfg.SIPBridgeConfig()
	if err != nil {
		t.Fatal(err)
	}
	if bc.Mode != "redirect" || bc.Target != "sip:queue@10.0.0.5" || bc.SBC != "10.0.0.1:5060" || bc.Carry.As != "both" ||
		bc.Carry.UUIEncoding != "plain" || len(bc.Carry.Variables) != 2 || bc.Map["X-Customer-ID"].Var != "ivr.customer_id" || bc.TransferTimeout != 20*time.Second {
		t.Fatalf("bridge config %+v", bc)
	}
	if r := bc.Map["X-Score"]; r.Var != "ivr.score" || r.Type != "number" {
		t.Fatalf("typed map entry %+v", r)
	}
	if r := bc.Map["sip.uui.premium"]; r.Var != "" || r.Type != "boolean" {
		t.Fatalf("typed map entry without var %+v", r)
	}
	if got := fmt.Sprint(bc.Allow); got != "[10.0.0.0/8 192.0.2.7/32 2001:db8::/32]" {
		t.Fatalf("sip.allow = %s", got)
	}
}

func TestLoadConfig_SIPErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad listen", "sip:\n  listen: nowhere\n", "sip.listen"},
		{"bad mode", "sip:\n  mode: proxy\n", `sip mode "proxy"`},
		{"redirect without target", "sip:\n  mode: redirect\n", "needs a target"},
		{"bad target", "sip:\n  mode: bridge\n  target: mailto:x@y\n", "sip target"},
		{"tls without cert", "sip:\n  tls:\n    listen: 127.0.0.1:5061\n", "cert_file"},
		{"bad mapping", "sip:\n  map:\n    X-A: call.from\n", "read-only call namespace"},
		{"bad mapping type", "sip:\n  map:\n    X-A: {var: ivr.a, type: integer}\n", `type "integer"`},
		{"unknown mapping field", "sip:\n  map:\n    X-A: {variable: ivr.a}\n", `unknown field "variable"`},
		{"bad refer action", "sip:\n  refer:\n    action: ignore\n", `sip refer action "ignore"`},
		{"bad refer mode", "sip:\n  refer:\n    mode: redirect\n", `sip refer mode "redirect"`},
		{"bad carry", "sip:\n  carry:\n    as: smoke-signals\n", "sip carry"},
		{"wildcard without advertise", "sip:\n  listen: 0.0.0.0:5060\n", "sip.advertise"},
		{"bad allow", "sip:\n  allow: [10.0.0.0/8, the-sbc]\n", "sip.allow[1]"},
		{"open beyond loopback", "sip:\n  listen: 192.0.2.1:5060\n", "refusing to take SIP calls on 192.0.2.1:5060 from anyone"},
		{"open TLS beyond loopback", "sip:\n  tls:\n    listen: 192.0.2.1:5061\n    cert_file: c.pem\n    key_file: k.pem\n", "refusing to take SIP calls on 192.0.2.1:5061"},
		{"bad auth algorithm", "sip:\n  auth:\n    algorithms: [SHA-1]\n    users: [{name: a, password: b}]\n", `algorithm "SHA-1"`},
		{"auth user without password", "sip:\n  auth:\n    users: [{name: a}]\n", `give a password or HA1`},
		{"auth bad ha1", "sip:\n  auth:\n    users: [{name: a, ha1_md5: abc}]\n", `MD5 HA1 must be 32 hex digits`},
		{"bad rate exempt", "sip:\n  rate_limit:\n    exempt: [the-sbc]\n", "sip.rate_limit.exempt[0]"},
		{"negative rate", "sip:\n  rate_limit:\n    per_source: -1\n", "sip.rate_limit.per_source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig([]string{"--config", writeFile(t, "c.yaml", tc.yaml)}, env())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestLoadConfig_SIPAccess: beyond loopback, the SIP bridge takes calls from anyone only
// when told so; sip.allow or sip.auth.users are enough; the rate limit has its defaults.
func TestLoadConfig_SIPAccess(t *testing.T) {
	for _, tc := range []struct{ name, yaml string }{
		{"anyone", "sip:\n  listen: 192.0.2.1:5060\n  allow: [0.0.0.0/0, \"::/0\"]\n"},
		{"pinned", "sip:\n  listen: 192.0.2.1:5060\n  allow: [10.0.0.0/8]\n"},
		{"authenticated", "sip:\n  listen: 192.0.2.1:5060\n  auth:\n    users: [{name: sbc, password: s3cret}]\n"},
		{"loopback", "sip:\n  listen: 127.0.0.1:5060\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LoadConfig([]string{"--config", writeFile(t, "c.yaml", tc.yaml)}, env()); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("Serve", func(t *testing.T) {
		err := Run([]string{"serve", "--sip", "0.0.0.0:5060", "--data", t.TempDir()}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "refusing to take SIP calls on 0.0.0.0:5060 from anyone") {
			t.Fatalf("err = %v, want a refusal", err)
		}
	})
	t.Run("Bridge", func(t *testing.T) {
		cfg, err := LoadConfig([]string{"--config", writeFile(t, "c.yaml", `
sip:
  auth:
    realm: calls.example
    algorithms: [MD5]
    nonce_ttl: 1m
    users:
      - {name: sbc, password: s3cret}
      - {name: ivr, ha1_sha256: 7a8c1b9b0f1d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f80912}
  rate_limit: {per_source: 5, burst: 10, exempt: [10.0.0.0/8]}
`)}, env())
		if err != nil {
			t.Fatal(err)
		}
		bc, err := cfg.SIPBridgeConfig()
		if err != nil {
			t.Fatal(err)
		}
		if a := bc.Auth; a.Realm != "calls.example" || len(a.Users) != 2 || a.Users[1].HA1["SHA-256"] == "" || a.NonceTTL != time.Minute {
			t.Errorf("auth %+v", a)
		}
		if r := bc.RateLimit; r.PerSecond != 5 || r.Burst != 10 || fmt.Sprint(r.Exempt) != "[10.0.0.0/8]" {
			t.Errorf("rate limit %+v", r)
		}
		def, _ := LoadConfig(nil, env())
		bc, _ = def.SIPBridgeConfig()
		if r := bc.RateLimit; r.PerSecond != DefaultSIPRatePerSource || r.Burst != DefaultSIPRateBurst || fmt.Sprint(r.Exempt) != "[127.0.0.0/8 ::1/128]" {
			t.Errorf("default rate limit %+v", r)
		}
	})
}

// A certificate that cannot be loaded stops serve, naming sip.tls; the configuration itself
// is valid, so check, which runs where the key files are not, accepts it.
func TestServe_MissingTLSCert(t *testing.T) {
	yaml := "sip:\n  listen: 127.0.0.1:0\n  tls:\n    listen: 127.0.0.1:0\n    cert_file: /nonexistent.pem\n    key_file: /nonexistent.key\n"
	cfg, err := LoadConfig([]string{"--config", writeFile(t, "c.yaml", yaml)}, env())
	if err != nil {
		t.Fatalf("a configuration naming key files that are not here: %v", err)
	}
	cfg.HTTP.Listen, cfg.Data.Dir, cfg.Flows.Dir = "127.0.0.1:0", t.TempDir(), t.TempDir()
	m := NewMain(cfg, nil)
	if err := m.Open(); err == nil || !strings.Contains(err.Error(), "sip.tls") {
		if err == nil {
			m.Close()
		}
		t.Fatalf("serve with a missing certificate: %v, want it to mention sip.tls", err)
	}
	if err := runCheck([]string{"--config", writeFile(t, "c2.yaml", yaml+"flows:\n  dir: "+cfg.Flows.Dir+"\n")}, io.Discard); err != nil {
		t.Fatalf("check with the key files elsewhere: %v", err)
	}
}

func do(t *testing.T, method, url, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &v)
	return res.StatusCode, v, res.Header
}

// transferWhenAnswered posts a transfer, again while it is refused with 409: until the
// caller has acknowledged callctx's 200, the call cannot be transferred.
func transferWhenAnswered(t *testing.T, url, body string) (int, map[string]any, http.Header) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		status, tr, hdr := do(t, "POST", url, body)
		if status != 409 || time.Now().After(deadline) {
			return status, tr, hdr
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pointers returns the JSON pointers of a problem's errors.
func pointers(p map[string]any) []string {
	var out []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		out = append(out, e.(map[string]any)["pointer"].(string))
	}
	return out
}

// TestMain_SIPTransferOverREST: a call comes in over SIP (real sipp), the session holds
// its context, a CRM transfers it over REST; bad transfers are refused with problems, the
// good one reaches the caller as a REFER with escaped headers, and its outcome shows on the
// call, in history and on the event stream.
func TestMain_SIPTransferOverREST(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.SIP.Map = map[string]MapEntry{"X-Transfer-Reason": {Var: "ivr.transfer_reason"}, "sip.uui.sipkey2": {Var: "app.sipkey2"}}
	m := MustOpenMain(t, cfg)
	defer m.Close()
	base := "http://" + m.HTTPAddr()
	uac := sipptest.Start(t, "uac_refer_answered.xml", m.SIPAddr(), 0)

	var id string
	testenv.WaitFor(t, "a call over SIP", func() bool {
		var list struct{ Items []struct{ ID string } }
		getJSON(t, base+"/v1/calls?state=active", &list)
		if len(list.Items) == 1 {
			id = list.Items[0].ID
		}
		return id != ""
	})
	var sess struct{ Variables map[string]any }
	getJSON(t, base+"/v1/sessions/"+id, &sess)
	for k, want := range map[string]any{"sip.x-customer-id": "12345", "ivr.transfer_reason": "BillingInquiry", "sip.uui.sipkey1": "sipval1", "app.sipkey2": "sipval2", "call.from": "+4930999888"} {
		if got := sess.Variables[k]; got != want {
			t.Errorf("%s=%v, want %v", k, got, want)
		}
	}

	// Watch the event stream from here on.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/sessions/"+id+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	events := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev string
		for sc.Scan() {
			line := sc.Text()
			if e, ok := strings.CutPrefix(line, "event: "); ok {
				ev = e
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				events <- ev + " " + d
			}
		}
		close(events)
	}()

	url := base + "/v1/calls/" + id + "/transfer"
	hundredOne := make([]string, 101)
	for i := range hundredOne {
		hundredOne[i] = fmt.Sprintf(`{"name":"X-H%d","value":"v"}`, i)
	}
	for _, tc := range []struct {
		name, body string
		status     int
		pointer    string
	}{
		{"CRLF in a value", `{"transferTarget":"sip:a@192.0.2.1","transferSipHeaders":[{"name":"X-Evil","value":"a\r\nX-Injected: 1"}]}`, 422, "/transferSipHeaders/0/value"},
		{"encoded CRLF", `{"transferTarget":"sip:a@192.0.2.1","transferSipHeaders":[{"name":"X-Ok","value":"1"},{"name":"X-Evil","value":"%0d%0aVia: x"}]}`, 422, "/transferSipHeaders/1/value"},
		{"forbidden name", `{"transferTarget":"sip:a@192.0.2.1","transferSipHeaders":[{"name":"Call-ID","value":"x"}]}`, 422, "/transferSipHeaders/0/name"},
		{"compact forbidden name", `{"transferTarget":"sip:a@192.0.2.1","transferSipHeaders":[{"name":"m","value":"<sip:evil>"}]}`, 422, "/transferSipHeaders/0/name"},
		{"name not a token", `{"transferTarget":"sip:a@192.0.2.1","transferSipHeaders":[{"name":"X Evil:","value":"x"}]}`, 422, "/transferSipHeaders/0/name"},
		{"too many headers", `{"transferTarget":"sip:a@192.0.2.1","transferSipHeaders":[` + strings.Join(hundredOne, ",") + `]}`, 422, "/transferSipHeaders"},
		{"too long", `{"transferTarget":"sip:a@192.0.2.1","transferSipHeaders":[{"name":"X-A","value":"` + strings.Repeat("a", 11000) + `"},{"name":"X-B","value":"` + strings.Repeat("b", 1000) + `"}]}`, 422, "/transferSipHeaders"},
		{"target injection", `{"transferTarget":"sip:a@b\r\nVia: x"}`, 422, "/transferTarget"},
		{"tel without sbc", `{"transferTarget":"tel:+14077511320"}`, 422, "/transferTarget"},
		{"hangup out of range", `{"transferTarget":"sip:a@192.0.2.1","transferNotificationsHangupMS":20000}`, 422, "/transferNotificationsHangupMS"},
		{"unknown field", `{"transferTarget":"sip:a@192.0.2.1","transferURL":"x"}`, 422, "/transferURL"},
		{"no target", `{}`, 422, "/transferTarget"},
		{"not JSON", `{`, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, p, h := do(t, "POST", url, tc.body)
			if status != tc.status {
				t.Fatalf("status=%d %v, want %d", status, p, tc.status)
			}
			if !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
				t.Errorf("Content-Type=%q, want a problem", h.Get("Content-Type"))
			}
			if tc.pointer != "" && !contains(pointers(p), tc.pointer) {
				t.Errorf("pointers=%v, want %s", pointers(p), tc.pointer)
			}
		})
	}
	if status, p, _ := do(t, "POST", base+"/v1/calls/no-such-call/transfer", `{"transferTarget":"sip:a@192.0.2.1"}`); status != 404 {
		t.Errorf("unknown call: %d %v, want 404", status, p)
	}

	body := `{"transferTarget":"sip:agent@192.0.2.20:5060","transferReferredByURL":"sip:bot@callctx.example",
		"transferSipHeaders":[{"name":"X-AI-Summary","value":"Customer confirmed identity; wants a refund & a callback"}],
		"transferNotificationsHangupMS":50,"handoverReason":"billing",
		"session":{"variables":["sip.x-customer-id","ivr.transfer_reason"],"as":"both","uuiEncoding":"hex"}}`
	status, tr, hdr := transferWhenAnswered(t, url, body)
	if status != 202 || tr["status"] != "pending" || tr["id"] == "" || hdr.Get("Location") != "/v1/calls/"+id {
		t.Fatalf("transfer: %d %v %v", status, tr, hdr)
	}
	if status, p, _ := do(t, "POST", url, body); status != 409 {
		t.Errorf("second transfer while one is in progress: %d %v, want 409", status, p)
	}
	uac.Wait(t)

	var call map[string]any
	testenv.Poll(10*time.Second, func() bool {
		_, call, _ = do(t, "GET", base+"/v1/calls/"+id, "")
		return call["state"] == "ended"
	})
	if call["state"] != "ended" || call["endReason"] != "transferred" {
		t.Fatalf("call after transfer: %v", call)
	}
	transfers, _ := call["transfers"].([]any)
	if len(transfers) != 1 {
		t.Fatalf("transfers=%v", call["transfers"])
	}
	got := transfers[0].(map[string]any)
	if got["id"] != tr["id"] || got["status"] != "answered" || got["sipCode"] != float64(200) || got["handoverReason"] != "billing" || got["endedAt"] == nil {
		t.Errorf("transfer on the call: %v", got)
	}
	if legs, _ := call["legs"].([]any); legs == nil || len(legs) != 0 {
		t.Errorf("legs=%v, want []", call["legs"])
	}

	sawStatus, sawEnd := false, false
	for !sawEnd {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("event stream closed early")
			}
			if strings.HasPrefix(e, "transfer.status ") && strings.Contains(e, `"sip.transfer.status":{"old":"pending","new":"answered"}`) {
				sawStatus = true
			}
			sawEnd = strings.HasPrefix(e, "call.ended ")
		case <-time.After(10 * time.Second):
			t.Fatal("no call.ended on the event stream")
		}
	}
	if !sawStatus {
		t.Error("no transfer.status event on the stream")
	}
	var page struct {
		Items []struct {
			Actor   string
			Changes map[string]struct{ New any }
		}
	}
	getJSON(t, base+"/v1/sessions/"+id+"/history?limit=1000", &page)
	history := page.Items
	var statuses []any
	for _, h := range history {
		if c, ok := h.Changes["sip.transfer.status"]; ok {
			statuses = append(statuses, c.New)
			if h.Actor != "sip" {
				t.Errorf("actor %q, want sip", h.Actor)
			}
		}
	}
	if fmt.Sprint(statuses) != "[pending answered]" {
		t.Errorf("history of sip.transfer.status: %v", statuses)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestMain_SIPOff: with sip.listen empty there is no bridge and transfers say so.
func TestMain_SIPOff(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.SIP.Listen = ""
	m := MustOpenMain(t, cfg)
	defer m.Close()
	if m.SIPAddr() != "" {
		t.Fatalf("SIPAddr=%q with the bridge off", m.SIPAddr())
	}
	base := "http://" + m.HTTPAddr()
	post(t, base+"/v1/calls", `{"id":"c1","from":"a","to":"b"}`)
	if status, p, _ := do(t, "POST", base+"/v1/calls/c1/transfer", `{"transferTarget":"sip:a@192.0.2.1"}`); status != 503 {
		t.Fatalf("transfer with the bridge off: %d %v, want 503", status, p)
	}
}

// TestMain_TransferLiveHubEvent: a bot's transfer event, as Live Hub takes it, on the REST
// transfer endpoint; without transferTarget it goes to sip.transfer_target. Errors in an
// envelope point into it.
func TestMain_TransferLiveHubEvent(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.SIP.TransferTarget = "sip:default-queue@192.0.2.30"
	m := MustOpenMain(t, cfg)
	defer m.Close()
	base := "http://" + m.HTTPAddr()
	uac := sipptest.Start(t, "uac_refer_default.xml", m.SIPAddr(), 0)
	var id string
	testenv.WaitFor(t, "a call over SIP", func() bool {
		var list struct{ Items []struct{ ID string } }
		getJSON(t, base+"/v1/calls?state=active", &list)
		if len(list.Items) == 1 {
			id = list.Items[0].ID
		}
		return id != ""
	})
	url := base + "/v1/calls/" + id + "/transfer"
	for _, tc := range []struct{ name, body, pointer string }{
		{"bot framework", `{"type":"event","name":"transfer","channelData":{"activityParams":{"transferTarget":"sip:a@b\r\nVia: x"}}}`, "/channelData/activityParams/transferTarget"},
		{"dialogflow", `{"activities":[{"type":"message","text":"one moment"},{"type":"event","name":"handover","activityParams":{"transferTarget":"sip:a@192.0.2.1","transferSipHeaders":[{"name":"Via","value":"x"}]}}]}`, "/activities/1/activityParams/transferSipHeaders/0/name"},
		{"no transfer event", `{"activities":[{"type":"message","text":"bye"}]}`, "/activities"},
		{"unknown name", `{"type":"event","name":"hangup","activityParams":{}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, p, _ := do(t, "POST", url, tc.body)
			if status != 422 {
				t.Fatalf("status=%d %v, want 422", status, p)
			}
			if tc.pointer != "" && !contains(pointers(p), tc.pointer) {
				t.Errorf("pointers=%v, want %s", pointers(p), tc.pointer)
			}
		})
	}
	body := `{"type":"event","name":"transfer","activityParams":{"transferSipHeaders":[{"name":"X-My-Header","value":"my_value"}],"transferNotifications":true,"transferNotificationsHangupMS":50}}`
	status, tr, _ := transferWhenAnswered(t, url, body)
	if status != 202 || tr["target"] != "sip:default-queue@192.0.2.30" {
		t.Fatalf("transfer: %d %v", status, tr)
	}
	uac.Wait(t)
}

// TestMain_SIPKeepalive: with sip.keepalive on, /readyz lists the watched targets (one that
// answers OPTIONS, one where nothing listens) and /metrics has their up gauge.
func TestMain_SIPKeepalive(t *testing.T) {
	upPort, downPort := testenv.FreeUDPPort(t), testenv.FreeUDPPort(t)
	sipptest.Start(t, "uas_options.xml", "", upPort, "-m", "1000")
	cfg := testConfig(t.TempDir())
	cfg.SIP.TransferTarget = fmt.Sprintf("sip:queue@127.0.0.1:%d", upPort)
	cfg.SIP.Keepalive.Interval = Duration(200 * time.Millisecond)
	cfg.SIP.Keepalive.Timeout = Duration(300 * time.Millisecond)
	cfg.SIP.Keepalive.Targets = []string{fmt.Sprintf("127.0.0.1:%d", downPort)}
	m := MustOpenMain(t, cfg)
	defer m.Close()
	base := "http://" + m.HTTPAddr()
	up, down := fmt.Sprintf("sip:127.0.0.1:%d", upPort), fmt.Sprintf("sip:127.0.0.1:%d", downPort)
	testenv.WaitFor(t, "both targets in /readyz", func() bool {
		var r struct {
			SIP struct {
				Targets []struct {
					Target string
					Up     *bool
				}
			}
		}
		getJSON(t, base+"/readyz", &r)
		seen := 0
		for _, tg := range r.SIP.Targets {
			if tg.Up != nil && (tg.Target == up && *tg.Up || tg.Target == down && !*tg.Up) {
				seen++
			}
		}
		return seen == 2
	})
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, want := range []string{`callctx_sip_target_up{target="` + up + `"} 1`, `callctx_sip_target_up{target="` + down + `"} 0`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
