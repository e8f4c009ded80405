package main_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	main "github.com/callctx/callctx/cmd/callctx"
	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/svgtest"
	"github.com/callctx/callctx/internal/testenv"
)

const (
	crmSecret = "crm-webhook-secret-for-the-e2e-test"
	ivrToken  = "ivr-token-e2e"
	crmToken  = "crm-token-e2e"
)

// startMain runs callctx in this process on 127.0.0.1:0 with a temporary
// data directory, the given flows directory and environment, and two
// tokens: the media platform's (ivr) and the CRM's.
func startMain(t *testing.T, flowsDir string, env map[string]string) *main.Main {
	t.Helper()
	cfg := main.DefaultConfig()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SIP.Listen = "127.0.0.1:0"
	off := false
	cfg.HTTP.AccessLog = &off
	cfg.Data.Dir = t.TempDir()
	cfg.Flows.Dir = flowsDir
	cfg.Automations.Backoff = main.Duration(50 * time.Millisecond)
	cfg.Auth.Tokens = []main.TokenConfig{
		{Name: "ivr", Token: ivrToken, Scopes: []string{"calls:write", "sessions:read"}},
		{Name: "crm", Token: crmToken, Scopes: []string{"sessions:write", "sessions:read"}},
	}
	m := main.NewMain(cfg, nil)
	m.Getenv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// client talks to callctx over HTTP with one token.
type client struct {
	t     testing.TB
	base  string
	token string
}

func (c *client) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	status, m, err := c.try(method, path, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, m
}

// try is do for goroutines other than the test's: it returns errors.
func (c *client) try(method, path string, body any) (int, map[string]any, error) {
	r, err := send(method, c.base+path, body, "Authorization", "Bearer "+c.token)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	if m == nil {
		m = map[string]any{"raw": string(r.Body)}
	}
	return r.Status, m, nil
}

func (c *client) must(status int, method, path string, body any) map[string]any {
	c.t.Helper()
	got, m := c.do(method, path, body)
	if got != status {
		c.t.Fatalf("%s %s: status %d, want %d: %v", method, path, got, status, m)
	}
	return m
}

// fakeCRM is the CRM of the babelforce scenario: it receives automations,
// checks their signatures, and answers lookups asynchronously by writing
// the caller's profile into the call's session through the REST API.
type fakeCRM struct {
	t        *testing.T
	api      *client // set once callctx runs
	delay    time.Duration
	mu       sync.Mutex
	got      []crmRequest
	profiles map[string]map[string]any
	srv      *httptest.Server
	pending  sync.WaitGroup // write-backs in flight
}

type crmRequest struct {
	Path, Key, CallID string
	Body              map[string]any
	SignatureOK       bool
	At                time.Time
}

func newFakeCRM(t *testing.T) *fakeCRM {
	c := &fakeCRM{t: t, profiles: map[string]map[string]any{
		"+4930123456": {"ivr.email": "jane@example.com", "ivr.premium": true, "ivr.track_id": "TRK-48213"},
		"AB12345":     {"ivr.email": "max@example.com", "ivr.premium": false, "ivr.track_id": "TRK-77001"},
	}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *fakeCRM) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := crmRequest{Path: r.URL.Path, Key: r.Header.Get("Idempotency-Key"), CallID: r.Header.Get("X-Callctx-Call-Id"),
		SignatureOK: checkSignature(r.Header.Get("X-Callctx-Signature"), body), At: time.Now()}
	_ = json.Unmarshal(body, &req.Body)
	c.mu.Lock()
	c.got = append(c.got, req)
	delay := c.delay
	c.mu.Unlock()
	if !req.SignatureOK {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	if r.URL.Path != "/callctx/lookup" {
		return
	}
	key, _ := req.Body["from"].(string)
	if ref, ok := req.Body["reference"].(string); ok {
		key = ref
	}
	c.pending.Add(1)
	go func() {
		defer c.pending.Done()
		time.Sleep(delay)
		profile, ok := c.profiles[key]
		if !ok {
			profile = map[string]any{"ivr.lookup": "not_found"}
		}
		status, m, err := c.api.try("POST", "/v1/sessions/"+req.CallID, profile)
		if err != nil || (status != http.StatusOK && status != http.StatusConflict) {
			c.t.Errorf("the CRM's write-back: %d %v %v", status, m, err)
		}
	}()
}

// checkSignature is the receiver's own check of X-Callctx-Signature:
// t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<body>")), at most 5 minutes old.
func checkSignature(header string, body []byte) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(part, "t="); ok {
			ts = v
		} else if v, ok := strings.CutPrefix(part, "v1="); ok {
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, []byte(crmSecret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(sig))
}

func (c *fakeCRM) requests(path, callID string) []crmRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []crmRequest
	for _, r := range c.got {
		if r.Path == path && r.CallID == callID {
			out = append(out, r)
		}
	}
	return out
}

func action(t *testing.T, next map[string]any) map[string]any {
	t.Helper()
	a, ok := next["action"].(map[string]any)
	if !ok {
		t.Fatalf("no action in %v", next)
	}
	return a
}

func pathOf(run map[string]any) string {
	var out []string
	for _, st := range run["path"].([]any) {
		out = append(out, st.(map[string]any)["node"].(string))
	}
	return strings.Join(out, " ")
}

// TestOrderStatus runs the babelforce scenario of examples/order-status end
// to end: the real server, the media platform driving the flow over REST,
// and a CRM that answers automations by writing back through the REST API.
func TestOrderStatus(t *testing.T) {
	crm := newFakeCRM(t)
	m := startMain(t, "../../examples/order-status/flows", map[string]string{"CRM_URL": crm.srv.URL, "CRM_WEBHOOK_SECRET": crmSecret})
	base := "http://" + m.HTTPAddr()
	ivr := &client{t: t, base: base, token: ivrToken}
	crm.api = &client{t: t, base: base, token: crmToken}
	t.Cleanup(crm.pending.Wait) // before the server closes: cleanups run last-in first-out
	crm.delay = 50 * time.Millisecond

	newCall := func(from string) string {
		t.Helper()
		c := ivr.must(http.StatusCreated, "POST", "/v1/calls", map[string]any{"from": from, "to": "+498001234567", "flow": "order-status"})
		return c["id"].(string)
	}
	next := func(id string, body any) map[string]any {
		t.Helper()
		return ivr.must(http.StatusOK, "POST", "/v1/calls/"+id+"/flow/next", body)
	}

	t.Run("KnownCallerPremium", func(t *testing.T) {
		id := newCall("+4930123456")
		first := next(id, map[string]any{})
		if a := action(t, first); a["type"] != "play" || a["prompt"] != "welcome-order-status" {
			t.Fatalf("first action %v", a)
		}
		// The prompt was played; the switch waits for the CRM's answer.
		got := next(id, map[string]any{"status": "done", "step": first["step"]})
		a := action(t, got)
		if a["type"] != "transfer" || a["target"] != "sip:premium-queue@pbx.example.com" || got["node"] != "to-agent" {
			t.Fatalf("action %v, want the transfer to the agent queue", got)
		}
		if h := a["headers"].(map[string]any); h["X-Track-Id"] != "TRK-48213" || a["uui"] != "track=TRK-48213" {
			t.Fatalf("transfer carries %v", a)
		}
		run := ivr.must(http.StatusOK, "GET", "/v1/calls/"+id+"/flow", nil)
		if got, want := pathOf(run), "lookup-number welcome known-caller premium-check to-agent"; got != want {
			t.Fatalf("path %q, want %q", got, want)
		}
		wait := run["path"].([]any)[2].(map[string]any)["wait"].(map[string]any)
		if wait["fired"] != true {
			t.Fatalf("the switch did not see the CRM's answer: %v", wait)
		}
		lookups := crm.requests("/callctx/lookup", id)
		if len(lookups) != 1 || lookups[0].Body["from"] != "+4930123456" || !lookups[0].SignatureOK {
			t.Fatalf("lookups %+v", lookups)
		}
	})

	t.Run("UnknownCallerEntersReference", func(t *testing.T) {
		id := newCall("+4930999999")
		first := next(id, nil)
		got := next(id, map[string]any{"status": "done", "step": first["step"]})
		a := action(t, got)
		if a["type"] != "input" || a["var"] != "app.inputReader.reference" || got["node"] != "inputReader" {
			t.Fatalf("action %v, want the reference input", got)
		}
		got = next(id, map[string]any{"input": "AB12345", "step": got["step"]})
		if a := action(t, got); a["type"] != "say" || got["node"] != "thanks" {
			t.Fatalf("action %v, want thanks", got)
		}
		got = next(id, map[string]any{"status": "done", "step": got["step"]})
		if a := action(t, got); a["type"] != "say" || got["node"] != "email-sent" || !strings.Contains(a["text"].(string), "max@example.com") {
			t.Fatalf("action %v, want the e-mail confirmation", got)
		}
		testenv.WaitFor(t, "the e-mail automation", func() bool { return len(crm.requests("/callctx/email", id)) == 1 })
		mail := crm.requests("/callctx/email", id)[0]
		if mail.Body["trackingUrl"] != "https://shop.example.com/track/TRK-77001" || mail.Body["to"] != "max@example.com" || !mail.SignatureOK {
			t.Fatalf("e-mail request %+v", mail)
		}
		refs := crm.requests("/callctx/lookup", id)
		if len(refs) != 2 || refs[1].Body["reference"] != "AB12345" {
			t.Fatalf("lookups %+v", refs)
		}
		got = next(id, map[string]any{"status": "done", "step": got["step"]})
		if a := action(t, got); a["type"] != "hangup" || got["done"] != true {
			t.Fatalf("action %v, want hangup", got)
		}
		sess := ivr.must(http.StatusOK, "GET", "/v1/sessions/"+id, nil)
		if v := sess["variables"].(map[string]any)["app.inputReader.reference"]; v != "AB12345" {
			t.Fatalf("app.inputReader.reference = %v", v)
		}
		// An attempt is recorded once the receiver has answered, a moment after it got the
		// request.
		var autos []any
		delivered := func() bool {
			autos = ivr.must(http.StatusOK, "GET", "/v1/calls/"+id+"/automations", nil)["items"].([]any)
			for _, a := range autos {
				if a.(map[string]any)["status"] != "delivered" {
					return false
				}
			}
			return len(autos) == 3
		}
		testenv.Poll(testenv.WaitTimeout, delivered)
		if len(autos) != 3 {
			t.Fatalf("%d automations, want 3", len(autos))
		}
		for _, a := range autos {
			d := a.(map[string]any)
			if d["status"] != "delivered" || len(d["attempts"].([]any)) != 1 {
				t.Errorf("automation %v", d)
			}
		}
	})

	t.Run("SlowCRMTakesDefault", func(t *testing.T) {
		crm.mu.Lock()
		crm.delay = 4 * time.Second // longer than the switch's 3 s wait
		crm.mu.Unlock()
		defer func() { crm.mu.Lock(); crm.delay = 50 * time.Millisecond; crm.mu.Unlock() }()
		id := newCall("+4930123456") // a known caller, but the answer comes too late
		first := next(id, nil)
		start := time.Now()
		got := next(id, map[string]any{"status": "done", "step": first["step"]})
		if a := action(t, got); a["type"] != "input" || got["node"] != "inputReader" {
			t.Fatalf("action %v, want the default branch (input)", got)
		}
		if el := time.Since(start); el < 3*time.Second {
			t.Fatalf("answered after %v, before the wait's timeout", el)
		}
		run := ivr.must(http.StatusOK, "GET", "/v1/calls/"+id+"/flow", nil)
		wait := run["path"].([]any)[2].(map[string]any)["wait"].(map[string]any)
		if wait["fired"] != false || wait["waitedMs"].(float64) < 3000 {
			t.Fatalf("wait %v", wait)
		}
	})
}

// TestCheckAndSimulateCommands runs the designer commands in process.
func TestCheckAndSimulateCommands(t *testing.T) {
	cases := []struct {
		args     []string
		env      map[string]string
		wantErr  string
		contains []string
	}{
		{args: []string{"check", "../../examples/order-status/flows"},
			contains: []string{"ok: 0 calendars, 3 triggers, 3 automations, 1 flow, no routing table; 2 warnings", "CRM_URL is not set"}},
		{args: []string{"check", "../../examples/opening-hours/flows"},
			contains: []string{"ok: 1 calendar, 3 triggers, 0 automations, 3 flows, 2 routes and a default; 0 warnings"}},
		// Every stage's problems in one run, sorted by file and line.
		{args: []string{"check", "../../flow/testdata/errors/all-at-once"}, wantErr: "7 errors, 0 warnings",
			contains: []string{"a.yaml:3:42: /triggers/typo/when/valeu: unknown field \"valeu\"", "a.yaml:4:47: /triggers/bad-regex/when/value: invalid regular expression",
				"a.yaml:5:48: /triggers/bad-zone/when/tz: unknown time zone", "a.yaml:12:18: /flows/main/nodes/route/cases/0/trigger: unknown trigger",
				"a.yaml:13:9: /flows/main/nodes/route/default: unknown node", "b.yaml:4:35: /calendars/support/weekly/mon/1: mon 11:00-13:00 overlaps",
				"b.yaml:7:32: /routing/routes/0/flow: unknown flow"}},
		{args: []string{"check", "../../flow/testdata/errors/compile"}, wantErr: "12 errors, 4 warnings",
			contains: []string{"../../flow/testdata/errors/compile/flows.yaml:25:5: /flows/broken/start: unknown node \"nowhere\"",
				"warning: ../../flow/testdata/errors/compile/flows.yaml:27:7: /flows/broken/nodes/ask: node \"ask\" is never reached from start"}},
		{args: []string{"check", "../../triggers/testdata/errors/references"}, wantErr: "3 errors",
			contains: []string{"a.yaml:10:18: /triggers/c/when/not/trigger: trigger cycle: a → b → c → a"}},
		{args: []string{"check", "no/such/dir"}, wantErr: "there is no flows directory no/such/dir"},
		{args: []string{"check"}, env: map[string]string{"CALLCTX_FLOWS": "", "CALLCTX_CONFIG": ""}, wantErr: "there is no flows directory ./flows"},
		{args: []string{"check", "--help"}, contains: []string{"Usage: callctx check [--config FILE] [--svg DIR] [DIR]", "-config string"}},
		{args: []string{"serve", "--help"}, contains: []string{"Usage: callctx serve", "-http string", "-sip value"}},
		{args: []string{"simulate", "-h"}, contains: []string{"Usage: callctx simulate", "-to string", "-at string"}},
		{args: []string{"simulate", "--dir", "../../examples/opening-hours/flows", "--to", "030 1234567", "--at", "2026-12-24T13:00:00+01:00"},
			contains: []string{"+49301234567 takes route support-line to flow support",
				"calendar support-hours is open at now (seen \"2026-12-24T13:00:00+01:00\"): false (closed: outside exception christmas-eve on 2026-12-24, hours 08:00-12:00)",
				"→ closed-message"}},
		{args: []string{"simulate", "--dir", "../../examples/opening-hours/flows", "--to", "+44 20 7946 0000", "--at", "2026-12-24T11:00:00+01:00"},
			contains: []string{"+442079460000 takes the default route to flow main-menu"}},
		{args: []string{"simulate", "--dir", "../../examples/order-status/flows", "--to", "+4930"}, wantErr: "no routing table"},
		{args: []string{"simulate", "--dir", "../../examples/order-status/flows", "--flow", "order-status",
			"--set", "ivr.email=jane@example.com", "--set", "ivr.premium=true", "--set", "ivr.track_id=TRK-1", "--at", "2026-11-20T09:00:00Z"},
			contains: []string{"flow order-status (version ", "simulated at 2026-11-20T09:00:00Z",
				"3. known-caller       switch", "wait for crm-answered up to 3s: it fires at once",
				"ivr.premium eq true (seen true): true", "5. to-agent           transfer   refer to sip:premium-queue@pbx.example.com X-Customer-Email=\"jane@example.com\" X-Track-Id=\"TRK-1\" → done",
				"the flow ended", "session: app.to-agent.status = \"done\""}},
		{args: []string{"simulate", "--dir", "../../examples/order-status/flows", "--flow", "order-status", "--set", "call.from=0049301234", "--input", "AB12345"},
			contains: []string{"crm-lookup-number: would POST https://env.invalid/callctx/lookup {\"callId\":\"simulated-call\",\"from\":\"0049301234\"}",
				"4. inputReader        input      app.inputReader.reference (7–7 characters) → input \"AB12345\"",
				"10. bye                hangup", "session: app.inputReader.reference = \"AB12345\""}},
		{args: []string{"simulate", "--dir", "../../examples/order-status/flows"}, wantErr: "--flow NAME or --to NUMBER is required"},
		{args: []string{"simulate", "--dir", "../../examples/order-status/flows", "--flow", "nope"}, wantErr: "there is no flow nope"},
		{args: []string{"simulate", "--dir", "../../examples/order-status/flows", "--flow", "order-status", "--set", "novalue"}, wantErr: "is not NAME=VALUE"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			err := main.Run(tc.args, &stdout, &stderr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v\n%s", err, stdout.String())
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q\n%s", err, tc.wantErr, stdout.String())
			}
			for _, want := range tc.contains {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, stdout.String())
				}
			}
		})
	}
}

// TestCheck_SVG writes the diagrams of the example's flows offline: one
// SVG per flow, with an element per node and edge of the flow's graph.
func TestCheck_SVG(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "diagrams")
	var stdout bytes.Buffer
	if err := main.Run([]string{"check", "--svg", dir, "../../examples/order-status/flows"}, &stdout, io.Discard); err != nil {
		t.Fatalf("check --svg: %v\n%s", err, stdout.String())
	}
	path := filepath.Join(dir, "order-status.svg")
	if !strings.Contains(stdout.String(), "wrote "+path+" (12 nodes)") {
		t.Errorf("output does not say what it wrote:\n%s", stdout.String())
	}
	svg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, _, err := flow.Load("../../examples/order-status/flows", flow.CompileOptions{AllowMissingSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := snap.Flow("order-status")
	byID := svgtest.CheckFlow(t, f.Graph(), svg)
	if got := byID["node-to-agent"].Text(); got != "to-agent transfer (refer) to sip:premium-queue@pbx.example.com" {
		t.Errorf("the transfer node shows %q", got)
	}

	// A directory with errors draws nothing.
	bad := filepath.Join(t.TempDir(), "none")
	if err := main.Run([]string{"check", "--svg", bad, "../../flow/testdata/errors/compile"}, io.Discard, io.Discard); err == nil {
		t.Fatal("check of a broken directory passed")
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("check of a broken directory made %s: %v", bad, err)
	}
}

// TestSimulate_json checks the machine-readable output: camelCase keys,
// as everywhere else.
func TestSimulate_json(t *testing.T) {
	var stdout bytes.Buffer
	err := main.Run([]string{"simulate", "--json", "--dir", "../../examples/order-status/flows", "--flow", "order-status", "--input", "AB12345"}, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var sim map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &sim); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return strings.Join(ks, " ")
	}
	if got, want := keys(sim), "requests run vars"; got != want {
		t.Fatalf("keys %s, want %s", got, want)
	}
	run := sim["run"].(map[string]any)
	requests := sim["requests"].([]any)
	if run["done"] != true || len(run["path"].([]any)) != 10 || len(requests) != 3 {
		t.Fatalf("simulation %s", stdout.Bytes())
	}
	if got, want := keys(requests[0].(map[string]any)), "automation body headers id method node url"; got != want {
		t.Fatalf("request keys %s, want %s", got, want)
	}
	stdout.Reset()
	if err := main.Run([]string{"simulate", "--json", "--dir", "../../examples/opening-hours/flows", "--to", "0800 555"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(stdout.Bytes(), &sim); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(sim["route"]), "map[flow:sales index:1 number:+49800555 route:free-phone]"; got != want {
		t.Fatalf("route %s, want %s", got, want)
	}
}

// TestCheckAndSimulate_ServesFlowsDir: without a directory, check and
// simulate use the one serve would load, from --config or the environment.
func TestCheckAndSimulate_ServesFlowsDir(t *testing.T) {
	flows, err := filepath.Abs("../../examples/order-status/flows")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "callctx.yaml")
	if err := os.WriteFile(conf, []byte("flows:\n  dir: "+flows+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var stdout bytes.Buffer
		err := main.Run(args, &stdout, io.Discard)
		return stdout.String(), err
	}
	if out, err := run("check", "--config", conf); err != nil || !strings.Contains(out, flows+": ok: 0 calendars, 3 triggers") {
		t.Errorf("check --config: %v\n%s", err, out)
	}
	if out, err := run("simulate", "--config", conf, "--flow", "order-status", "--input", "AB12345"); err != nil || !strings.Contains(out, "flow order-status (version ") {
		t.Errorf("simulate --config: %v\n%s", err, out)
	}
	if _, err := run("check", "--config", filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("check with a missing configuration file succeeded")
	}
	t.Setenv("CALLCTX_FLOWS", flows)
	if out, err := run("check"); err != nil || !strings.Contains(out, flows+": ok: 0 calendars, 3 triggers") {
		t.Errorf("check with CALLCTX_FLOWS: %v\n%s", err, out)
	}
}
