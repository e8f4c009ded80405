package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	main "github.com/callctx/callctx/cmd/callctx"
)

// bfRequest is one request exactly as babelforce documents it: method, path,
// form or JSON body, and the authentication it names.
type bfRequest struct {
	source string // where babelforce documents it
	method string
	path   string // {id} is the call
	form   url.Values
	json   string
	auth   string // "bearer" (the access token), "access-id" (X-Auth-Access-*), "" none
	status int
	check  func(t *testing.T, body map[string]any, h http.Header)
}

// TestBabelforce_Compatibility sends babelforce's documented requests, as a
// babelforce integration would after changing its base URL, to the real
// service configured from testdata/babelforce/callctx.yaml.
func TestBabelforce_Compatibility(t *testing.T) {
	cfg := main.DefaultConfig()
	if err := main.ReadConfigFile(filepath.Join("testdata", "babelforce", "callctx.yaml"), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.Listen, cfg.SIP.Listen, cfg.Data.Dir = "127.0.0.1:0", "", t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := main.NewMain(cfg, nil)
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	base := "http://" + m.HTTPAddr()

	// The telephony side creates the call (in babelforce, the platform does).
	status, created, _ := bfSend(t, "POST", base+"/v1/calls", "application/json", `{"from":"+4930123456","to":"+498001234567"}`, "Bearer pbx-secret-0123", nil)
	if status != 201 {
		t.Fatalf("create call: %d %v", status, created)
	}
	id := created["id"].(string)

	var access string
	reqs := []bfRequest{
		{source: "help center, Authentication: Best Practice (oauth token via user name and password)",
			method: "POST", path: "/oauth/token",
			form:   url.Values{"username": {"manager@example.com"}, "password": {"pw-babelforce-0123"}, "grant_type": {"password"}},
			status: 200, check: func(t *testing.T, b map[string]any, _ http.Header) {
				access, _ = b["access_token"].(string)
				if access == "" || b["token_type"] != "bearer" || b["expires_in"] != float64(600) {
					t.Fatalf("token response %v", b)
				}
			}},
		{source: "manager SDK, password grant (the public client id \"manager\")",
			method: "POST", path: "/oauth/token",
			form:   url.Values{"grant_type": {"password"}, "username": {"manager@example.com"}, "password": {"pw-babelforce-0123"}, "client_id": {"manager"}},
			status: 200},
		{source: "help center, Authentication: Best Practice (example with the token)",
			method: "GET", path: "/api/v2/agents", auth: "bearer", status: 404,
			check: func(t *testing.T, b map[string]any, _ http.Header) {
				if b["type"] != "urn:callctx:problem:not-found" {
					t.Fatalf("%v", b)
				}
			}},
		{source: "2-way integration of IVR and CRM, Postman: view active calls (manager API listReportingCalls)",
			method: "GET", path: "/api/v2/calls/reporting?filters.state=in-progress&page=1&max=100", auth: "bearer", status: 200,
			check: func(t *testing.T, b map[string]any, _ http.Header) {
				items := b["items"].([]any)
				if len(items) != 1 || items[0].(map[string]any)["sessionId"] != id || b["pagination"].(map[string]any)["total"] != float64(1) {
					t.Fatalf("%v", b)
				}
			}},
		{source: "manager API getCall", method: "GET", path: "/api/v2/calls/{id}", auth: "bearer", status: 200,
			check: func(t *testing.T, b map[string]any, _ http.Header) {
				if b["success"] != true || b["item"].(map[string]any)["state"] != "in-progress" {
					t.Fatalf("%v", b)
				}
			}},
		{source: "2-way integration of IVR and CRM, Postman: check the session of a call (getSessionVariables)",
			method: "GET", path: "/api/v2/sessions/{id}", auth: "bearer", status: 200,
			check: func(t *testing.T, b map[string]any, _ http.Header) {
				item := b["item"].(map[string]any)
				if _, isNumber := item["created"].(float64); !isNumber || item["valid"] != true || item["id"] != id {
					t.Fatalf("%v", b)
				}
			}},
		{source: "2-way integration of IVR and CRM: the CRM writes ivr.[variable] properties to the session",
			method: "PUT", path: "/api/v2/sessions/{id}", auth: "bearer",
			json: `{"ivr.email":"jane@example.com","ivr.premium":true,"ivr.track_id":"TRK-48213"}`, status: 200,
			check: func(t *testing.T, b map[string]any, _ http.Header) {
				data := b["item"].(map[string]any)["data"].(map[string]any)
				if data["ivr.email"] != "jane@example.com" || data["ivr.premium"] != true || len(b["ignored"].([]any)) != 0 {
					t.Fatalf("%v", b)
				}
			}},
		{source: "manager API updateSessionVariables, its example (user scoped keys)",
			method: "PUT", path: "/api/v2/sessions/{id}", auth: "bearer",
			json: `{"customerTier":"gold","lastOrderId":"ord-10293"}`, status: 200,
			check: func(t *testing.T, b map[string]any, _ http.Header) {
				data := b["item"].(map[string]any)["data"].(map[string]any)
				if data["ivr.customerTier"] != "gold" || data["ivr.lastOrderId"] != "ord-10293" {
					t.Fatalf("%v", b)
				}
			}},
		{source: "manager API setCallSessionVariables, its example",
			method: "PUT", path: "/api/v2/calls/{id}/session/set", auth: "bearer",
			json: `{"variables":{"app.priority":"high","app.campaign":"spring"}}`, status: 200,
			check: func(t *testing.T, b map[string]any, _ http.Header) {
				data := b["item"].(map[string]any)["data"].(map[string]any)
				if data["app.priority"] != "high" || data["app.campaign"] != "spring" {
					t.Fatalf("%v", b)
				}
			}},
		{source: "manager API setCallSessionVariables: keys without app. are ignored",
			method: "PUT", path: "/api/v2/calls/{id}/session/set", auth: "bearer",
			json: `{"variables":{"ivr.email":"other@example.com","app.step":"2"}}`, status: 200,
			check: func(t *testing.T, b map[string]any, h http.Header) {
				data := b["item"].(map[string]any)["data"].(map[string]any)
				if data["ivr.email"] != "jane@example.com" || data["app.step"] != "2" || h.Get("X-Callctx-Ignored") != "ivr.email" {
					t.Fatalf("%v %v", b, h)
				}
			}},
		{source: "Nexla's babelforce connector: X-Auth-Access-Id and X-Auth-Access-Token",
			method: "GET", path: "/api/v2/calls/reporting", auth: "access-id", status: 200},
		{source: "manager API hangupCall", method: "POST", path: "/api/v2/calls/{id}/hangup", auth: "bearer", status: 200,
			check: func(t *testing.T, b map[string]any, _ http.Header) {
				if b["item"].(map[string]any)["finishReason"] != "system-hangup" {
					t.Fatalf("%v", b)
				}
			}},
		{source: "after the hangup the session is no longer valid", method: "GET", path: "/api/v2/sessions/{id}", auth: "bearer", status: 200,
			check: func(t *testing.T, b map[string]any, _ http.Header) {
				if b["item"].(map[string]any)["valid"] != false {
					t.Fatalf("%v", b)
				}
			}},
		{source: "writing to an ended call", method: "PUT", path: "/api/v2/sessions/{id}", auth: "bearer", json: `{"ivr.x":1}`, status: 409,
			check: func(t *testing.T, b map[string]any, _ http.Header) {
				if b["success"] != false || b["message"] == "" {
					t.Fatalf("%v", b)
				}
			}},
	}
	for _, r := range reqs {
		t.Run(r.source, func(t *testing.T) {
			var body, ct string
			switch {
			case r.form != nil:
				body, ct = r.form.Encode(), "application/x-www-form-urlencoded"
			case r.json != "":
				body, ct = r.json, "application/json"
			}
			auth := map[string]string{}
			switch r.auth {
			case "bearer":
				auth["Authorization"] = "Bearer " + access
			case "access-id":
				auth["X-Auth-Access-Id"], auth["X-Auth-Access-Token"] = "crm", "static-crm-secret-0123"
			}
			status, out, h := bfSend(t, r.method, base+strings.ReplaceAll(r.path, "{id}", id), ct, body, "", auth)
			if status != r.status {
				t.Fatalf("%s %s: %d, want %d: %v", r.method, r.path, status, r.status, out)
			}
			if r.check != nil {
				r.check(t, out, h)
			}
		})
	}
}

// bfSend makes one request and decodes a JSON object answer.
func bfSend(t *testing.T, method, url, contentType, body, authorization string, headers map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out, res.Header
}
