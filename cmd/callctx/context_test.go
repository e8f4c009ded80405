package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/internal/testenv"
)

// TestMain_ContextByReference: a call redirected with sip.carry.as reference; sipp (the next
// hop) receives X-Callctx-Context in the 302's Contact; the test, standing in for the
// receiving side, fetches the session with that link alone (the server wants tokens; the
// link needs none), once: the link is single use. An unsigned link is refused.
func TestMain_ContextByReference(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Auth.Tokens = []TokenConfig{{Name: "crm", Token: "a-crm-secret-for-the-test", Scopes: []string{"admin"}}}
	cfg.SIP.Mode, cfg.SIP.Target = "redirect", "sip:queue@192.0.2.30:5060"
	cfg.SIP.Carry.As = "reference"
	cfg.ContextLinks.SingleUse = true
	cfg.ContextLinks.Grace = Duration(time.Minute) // a redirected call has ended by the time its link is fetched
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := MustOpenMain(t, cfg)
	defer m.Close()
	uac := sipptest.Start(t, "uac_redirect_link.xml", m.SIPAddr(), 0)
	uac.Wait(t)
	encoded := uac.Logged(t, "link")
	link, err := url.PathUnescape(encoded)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, "http://"+m.HTTPAddr()+"/v1/context/") {
		t.Fatalf("link %q", link)
	}
	get := func(u string) (int, string) {
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	status, body := get(link)
	if status != 200 || !strings.Contains(body, `"sip.x-customer-id":"12345"`) || !strings.Contains(body, `"call.endReason":"redirected"`) {
		t.Fatalf("fetch: %d %s", status, body)
	}
	if status, body := get(link); status != 410 || !strings.Contains(body, "single use") {
		t.Fatalf("second fetch: %d %s", status, body)
	}
	tok := link[strings.LastIndex(link, "/")+1:]
	forged := link[:strings.LastIndex(link, "/")+1] + tok[:strings.LastIndex(tok, ".")] + ".AAAA"
	if status, _ := get(forged); status != 404 {
		t.Fatalf("forged link: %d", status)
	}
	// The session is not readable without a token otherwise.
	var callID string
	testenv.WaitFor(t, "the call's ID", func() bool {
		req, _ := http.NewRequest("GET", "http://"+m.HTTPAddr()+"/v1/calls?state=all", nil)
		req.Header.Set("Authorization", "Bearer a-crm-secret-for-the-test")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if i := strings.Index(string(b), `"id":"`); i >= 0 {
			callID = string(b)[i+6 : i+6+36]
		}
		return callID != ""
	})
	if status, _ := get("http://" + m.HTTPAddr() + "/v1/sessions/" + callID); status != 401 {
		t.Fatalf("the session without a token: %d", status)
	}
}
