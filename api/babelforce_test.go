package api_test

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/session"
	signed "github.com/callctx/callctx/token"
)

func TestBabelforce_SessionSet(t *testing.T) {
	_, s := newTestServer(t, nil)
	id := s.createCall(nil)
	t.Run("OnlyApp", func(t *testing.T) {
		res := s.do("PUT", "/api/v2/calls/"+id+"/session/set",
			`{"variables":{"app.priority":"high","ivr.email":"x@y.z","call.to":"x","app":1,"app.bad name":2}}`)
		if res.Status != 200 {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		var out struct {
			Item    struct{ Data map[string]any }
			Ignored []struct{ Key, Reason string }
		}
		if err := json.Unmarshal(res.Body, &out); err != nil {
			t.Fatal(err)
		}
		if out.Item.Data["app.priority"] != "high" || out.Item.Data["ivr.email"] != nil || out.Item.Data["call.to"] != "+4940555000" {
			t.Fatalf("data %v", out.Item.Data)
		}
		var keys []string
		for _, ig := range out.Ignored {
			keys = append(keys, ig.Key)
			if ig.Reason == "" {
				t.Errorf("%s ignored without a reason", ig.Key)
			}
		}
		if got, want := strings.Join(keys, " "), "app app.bad name call.to ivr.email"; got != want {
			t.Fatalf("ignored %q, want %q", got, want)
		}
		if got, want := res.Header.Get("X-Callctx-Ignored"), "app,app.bad%20name,call.to,ivr.email"; got != want {
			t.Fatalf("X-Callctx-Ignored %q, want %q", got, want)
		}
	})
	t.Run("NothingIgnored", func(t *testing.T) {
		res := s.do("PUT", "/api/v2/calls/"+id+"/session/set", `{"variables":{"app.campaign":"spring"}}`)
		if res.Status != 200 || res.Header.Get("X-Callctx-Ignored") != "" || !strings.Contains(string(res.Body), `"ignored":[]`) {
			t.Fatalf("%d %v %s", res.Status, res.Header, res.Body)
		}
	})
	t.Run("AllIgnoredStillAnswersTheSession", func(t *testing.T) {
		res := s.do("PUT", "/api/v2/calls/"+id+"/session/set", `{"variables":{"ivr.x":1}}`)
		if res.Status != 200 || res.JSON(t)["item"].(map[string]any)["id"] != id {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		wantProblem(t, s.do("PUT", "/api/v2/calls/nope/session/set", `{"variables":{"ivr.x":1}}`), 404, "")
	})
}

func TestBabelforce_PutSessionUserKeys(t *testing.T) {
	_, s := newTestServer(t, nil)
	id := s.createCall(nil)
	// babelforce's own example body, then every kind of key.
	res := s.do("PUT", "/api/v2/sessions/"+id, `{"customerTier":"gold","lastOrderId":"ord-10293"}`)
	data := res.JSON(t)["item"].(map[string]any)["data"].(map[string]any)
	if data["ivr.customerTier"] != "gold" || data["ivr.lastOrderId"] != "ord-10293" {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	res = s.do("PUT", "/api/v2/sessions/"+id, `{"ivr.email":"a@b.c","app.x":1,"crm.id":"7","sip.x-a":"b","call.from":"c","tier":"x","ivr.tier":"y","a b":1}`)
	if res.Status != 200 {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	out := res.JSON(t)
	data = out["item"].(map[string]any)["data"].(map[string]any)
	for name, want := range map[string]any{"ivr.email": "a@b.c", "app.x": float64(1), "ivr.crm.id": "7", "ivr.tier": "y", "call.from": "+4930123456"} {
		if data[name] != want {
			t.Errorf("%s = %v, want %v", name, data[name], want)
		}
	}
	if _, ok := data["sip.x-a"]; ok {
		t.Error("a sip. key was written")
	}
	var keys []string
	for _, ig := range out["ignored"].([]any) {
		keys = append(keys, ig.(map[string]any)["key"].(string))
	}
	if got, want := strings.Join(keys, ","), "a b,call.from,sip.x-a,tier"; got != want {
		t.Fatalf("ignored %q, want %q", got, want)
	}
	// /v1 stays strict.
	wantProblem(t, s.do("POST", "/v1/sessions/"+id, `{"customerTier":"gold"}`), 422, "refused")
}

func TestBabelforce_EpochTimes(t *testing.T) {
	_, s := newTestServer(t, nil)
	before := time.Now()
	id := s.createCall(nil)
	item := s.do("GET", "/api/v2/sessions/"+id, nil).JSON(t)["item"].(map[string]any)
	created, ok := item["created"].(float64)
	if !ok {
		t.Fatalf("created %T %v, want a number", item["created"], item["created"])
	}
	if d := created - float64(before.UnixMilli())/1000; d < -1 || d > 5 {
		t.Fatalf("created %f is not the epoch seconds of now (%d)", created, before.Unix())
	}
	if _, ok := item["last_access"].(float64); !ok {
		t.Fatalf("last_access %T", item["last_access"])
	}
}

// calls creates calls for the reporting tests and returns their IDs, newest
// last.
func (s *testServer) calls(bodies ...string) []string {
	var ids []string
	for _, b := range bodies {
		ids = append(ids, s.createCall(b))
	}
	return ids
}

func TestBabelforce_CallsReporting(t *testing.T) {
	_, s := newTestServer(t, nil)
	ids := s.calls(
		`{"id":"c1","from":"+4930111","to":"+4940555000"}`,
		`{"id":"c2","from":"+4930222","to":"+4940555000","direction":"outbound"}`,
		`{"id":"c3","from":"anonymous","to":"+4989777"}`,
		`{"id":"c4","from":"+4930444","to":"+4940555000"}`,
	)
	if res := s.do("POST", "/v1/calls/c4/end", `{"reason":"hangup"}`); res.Status != 200 {
		t.Fatal(res.Status)
	}
	list := func(query string) ([]string, map[string]any) {
		t.Helper()
		res := s.do("GET", "/api/v2/calls/reporting?"+query, nil)
		if res.Status != 200 {
			t.Fatalf("%s: %d %s", query, res.Status, res.Body)
		}
		m := res.JSON(t)
		var got []string
		for _, it := range m["items"].([]any) {
			got = append(got, it.(map[string]any)["id"].(string))
		}
		return got, m["pagination"].(map[string]any)
	}
	for _, tc := range []struct{ query, want string }{
		{"", "c4 c3 c2 c1"},
		{"state=in-progress", "c3 c2 c1"},
		{"filters.state=in-progress", "c3 c2 c1"},
		{"state=completed", "c4"},
		{"state=in-progress&state=completed", "c4 c3 c2 c1"},
		{"state=active", "c3 c2 c1"},
		{"state=ringing", ""},
		{"type=outbound", "c2"},
		{"from=4930", "c4 c2 c1"},
		{"fromNumber=%2B4930222", "c2"},
		{"to=4989777", "c3"},
		{"id=c1,c3", "c3 c1"},
		{"id=c1&id=c2", "c2 c1"},
		{"sessionId=c2", "c2"},
		{"anonymous=true", "c3"},
		{"q=4030", ""},
		{"q=30444", "c4"},
		{"finishReason=hangup", "c4"},
		{"agentId=x", ""},
		{"time.start=" + strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10), "c4 c3 c2 c1"},
		{"time.end=" + strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10), ""},
	} {
		got, _ := list(tc.query)
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%q: got %q, want %q", tc.query, strings.Join(got, " "), tc.want)
		}
	}
	t.Run("Paging", func(t *testing.T) {
		got, pg := list("max=3")
		if strings.Join(got, " ") != "c4 c3 c2" || pg["total"] != float64(4) || pg["pages"] != float64(2) || pg["current"] != float64(1) || pg["maxResults"] != float64(3) {
			t.Fatalf("%v %v", got, pg)
		}
		next, _ := pg["next"].(string)
		u, err := url.Parse(next)
		if err != nil || u.Path != "/api/v2/calls/reporting" || u.Query().Get("page") != "2" || u.Query().Get("max") != "3" {
			t.Fatalf("next %q", next)
		}
		got, pg = list(u.RawQuery)
		if strings.Join(got, " ") != "c1" || pg["next"] != nil {
			t.Fatalf("page 2: %v %v", got, pg)
		}
		if got, _ = list("page=9"); len(got) != 0 {
			t.Fatalf("page past the end: %v", got)
		}
	})
	t.Run("Call", func(t *testing.T) {
		res := s.do("GET", "/api/v2/calls/c4", nil)
		item := res.JSON(t)["item"].(map[string]any)
		if item["state"] != "completed" || item["finishReason"] != "hangup" || item["sessionId"] != "c4" || item["dateFinished"] == nil || item["type"] != "inbound" {
			t.Fatalf("%s", res.Body)
		}
		wantProblem(t, s.do("GET", "/api/v2/calls/nope", nil), 404, "")
	})
	t.Run("Hangup", func(t *testing.T) {
		res := s.do("POST", "/api/v2/calls/c1/hangup", nil)
		item := res.JSON(t)["item"].(map[string]any)
		if res.Status != 200 || item["state"] != "completed" || item["finishReason"] != "system-hangup" {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		if c, _ := s.Service.Call(t0(), "c1"); c.State != session.StateEnded || c.EndReason != "system-hangup" {
			t.Fatalf("call %+v", c)
		}
	})
	t.Run("CSV", func(t *testing.T) {
		res := s.do("GET", "/api/v2/calls/reporting?format=csv&id="+ids[2], nil)
		if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("Content-Type %q", res.Header.Get("Content-Type"))
		}
		rows, err := csv.NewReader(strings.NewReader(string(res.Body))).ReadAll()
		if err != nil || len(rows) != 2 || rows[0][0] != "id" || rows[1][0] != "c3" || rows[1][9] != "anonymous" {
			t.Fatalf("%v %v", rows, err)
		}
	})
	t.Run("BadQuery", func(t *testing.T) {
		for _, q := range []string{"page=0", "max=1001", "max=x", "state=sideways", "type=both", "time.start=yesterday", "anonymous=maybe"} {
			p := wantProblem(t, s.do("GET", "/api/v2/calls/reporting?"+q, nil), 400, "")
			if p["success"] != false {
				t.Errorf("%s: no babelforce envelope", q)
			}
		}
	})
}

// crmToken has every kind of OAuth2 credential; readerToken a static
// secret only.
var (
	crmToken = api.Token{Name: "crm", SHA256: sha256.Sum256([]byte("crm-static-secret")), Scopes: []api.Scope{api.ScopeSessionsRead, api.ScopeSessionsWrite},
		Username: "crm@example.com", PasswordSHA256: sha256.Sum256([]byte("pw-0123456789")),
		ClientID: "crm-client", ClientSecretSHA256: sha256.Sum256([]byte("cs-0123456789"))}
	readerToken = api.Token{Name: "reader", SHA256: sha256.Sum256([]byte("reader-secret")), Scopes: []api.Scope{api.ScopeSessionsRead}}
)

// oauthServer runs the API with crmToken and readerToken.
func oauthServer(t *testing.T, ttl time.Duration) *testServer {
	t.Helper()
	return keyedServer(t, openStore(t), nil, ttl, crmToken, readerToken)
}

// keyedServer runs the API on store with the given signing keys (nil:
// generated) and tokens.
func keyedServer(t *testing.T, store session.Store, keys *signed.Keys, ttl time.Duration, tokens ...api.Token) *testServer {
	t.Helper()
	svc := session.NewService(store, session.Options{})
	_, s := serve(t, api.Config{Service: svc, AccessTokenTTL: ttl, Keys: keys, Tokens: tokens})
	return s
}

// form posts a form to the token endpoint.
func (s *testServer) form(vals url.Values, headers ...string) *response {
	s.t.Helper()
	return s.do("POST", "/oauth/token", vals.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
}

func TestOAuth_Token(t *testing.T) {
	s := oauthServer(t, 0)
	id := s.directCall()
	get := func(bearer string) int {
		return s.do("GET", "/v1/sessions/"+id, nil, "Authorization", "Bearer "+bearer).Status
	}
	t.Run("PasswordGrant", func(t *testing.T) {
		res := s.form(url.Values{"grant_type": {"password"}, "username": {"CRM@example.com"}, "password": {"pw-0123456789"}, "client_id": {"manager"}})
		if res.Status != 200 || res.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%d %v %s", res.Status, res.Header, res.Body)
		}
		m := res.JSON(t)
		if m["token_type"] != "bearer" || m["expires_in"] != float64(3600) || m["refresh_token"] == "" || m["scope"] != "sessions:read sessions:write" {
			t.Fatalf("%s", res.Body)
		}
		access := m["access_token"].(string)
		if got := get(access); got != 200 {
			t.Fatalf("GET with the access token: %d", got)
		}
		// It acts as the token crm: the write is recorded as crm's.
		res = s.do("POST", "/v1/sessions/"+id, `{"ivr.a":1}`, "Authorization", "Bearer "+access)
		if res.Status != 200 {
			t.Fatalf("write: %d %s", res.Status, res.Body)
		}
		hist := s.do("GET", "/v1/sessions/"+id+"/history", nil, "Authorization", "Bearer "+access)
		if !strings.Contains(string(hist.Body), `"actor":"crm"`) {
			t.Fatalf("history %s", hist.Body)
		}
		// crm lacks calls:write, and so does its access token.
		if res := s.do("POST", "/v1/calls", `{"from":"a","to":"b"}`, "Authorization", "Bearer "+access); res.Status != 403 {
			t.Fatalf("create call: %d", res.Status)
		}
		// A refresh token is no access token.
		if got := get(m["refresh_token"].(string)); got != 401 {
			t.Fatalf("refresh token as bearer: %d", got)
		}
		// The refresh grant.
		res = s.form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {m["refresh_token"].(string)}})
		if res.Status != 200 || get(res.JSON(t)["access_token"].(string)) != 200 {
			t.Fatalf("refresh: %d %s", res.Status, res.Body)
		}
	})
	t.Run("ClientCredentials", func(t *testing.T) {
		res := s.form(url.Values{"grant_type": {"client_credentials"}, "client_id": {"crm-client"}, "client_secret": {"cs-0123456789"}, "scope": {"sessions:read"}})
		if res.Status != 200 || res.JSON(t)["scope"] != "sessions:read" {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		access := res.JSON(t)["access_token"].(string)
		if res := s.do("POST", "/v1/sessions/"+id, `{"ivr.a":2}`, "Authorization", "Bearer "+access); res.Status != 403 {
			t.Fatalf("a read-only access token wrote: %d", res.Status)
		}
		// HTTP Basic, as RFC 6749 §2.3.1 prefers.
		res = s.form(url.Values{"grant_type": {"client_credentials"}}, "Authorization", "Basic Y3JtLWNsaWVudDpjcy0wMTIzNDU2Nzg5")
		if res.Status != 200 {
			t.Fatalf("basic: %d %s", res.Status, res.Body)
		}
		// JSON works too.
		res = s.do("POST", "/oauth/token", `{"grant_type":"client_credentials","client_id":"crm-client","client_secret":"cs-0123456789"}`)
		if res.Status != 200 {
			t.Fatalf("json: %d %s", res.Status, res.Body)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			form   url.Values
			status int
			code   string
		}{
			{url.Values{"grant_type": {"password"}, "username": {"crm@example.com"}, "password": {"wrong"}}, 400, "invalid_grant"},
			{url.Values{"grant_type": {"password"}, "username": {"nobody"}, "password": {"pw-0123456789"}}, 400, "invalid_grant"},
			{url.Values{"grant_type": {"password"}, "username": {"crm@example.com"}}, 400, "invalid_request"},
			{url.Values{"grant_type": {"client_credentials"}, "client_id": {"crm-client"}, "client_secret": {"x"}}, 401, "invalid_client"},
			{url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, 422, "invalid_request"},
			{url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}}, 400, "invalid_grant"},
			{url.Values{"grant_type": {"password"}, "username": {"crm@example.com"}, "password": {"pw-0123456789"}, "scope": {"admin"}}, 400, "invalid_scope"},
			{url.Values{"grant_type": {"password", "password"}}, 400, "invalid_request"},
			{url.Values{}, 400, "invalid_request"},
		} {
			res := s.form(tc.form)
			p := wantProblem(t, res, tc.status, "")
			if p["error"] != tc.code || p["error_description"] == "" {
				t.Errorf("%v: error %v, want %s: %s", tc.form, p["error"], tc.code, res.Body)
			}
		}
	})
	t.Run("StaticSecretsStillWork", func(t *testing.T) {
		if get("reader-secret") != 200 || get("nonsense") != 401 || get("a.b.c") != 401 {
			t.Fatal("static tokens")
		}
	})
}

// directCall creates a call through the service (the tokens of these tests
// may not) and returns its ID.
func (s *testServer) directCall() string {
	s.t.Helper()
	c, _, err := s.Service.CreateCall(t0(), session.NewCall{From: "+4930123456", To: "+4940555000"}, session.WriteOptions{Actor: "test"})
	if err != nil {
		s.t.Fatal(err)
	}
	return c.ID
}

func TestOAuth_Expiry(t *testing.T) {
	s := oauthServer(t, time.Second)
	id := s.directCall()
	res := s.form(url.Values{"grant_type": {"password"}, "username": {"crm@example.com"}, "password": {"pw-0123456789"}})
	access := res.JSON(t)["access_token"].(string)
	if got := s.do("GET", "/v1/sessions/"+id, nil, "Authorization", "Bearer "+access).Status; got != 200 {
		t.Fatalf("fresh token: %d", got)
	}
	time.Sleep(2100 * time.Millisecond) // expiries have a resolution of one second
	res = s.do("GET", "/v1/sessions/"+id, nil, "Authorization", "Bearer "+access)
	wantProblem(t, res, 401, "expired")
	if !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
	}
}

func TestBabelforce_AccessHeaders(t *testing.T) {
	s := oauthServer(t, 0)
	id := s.directCall()
	for _, tc := range []struct {
		path, id, secret string
		status           int
	}{
		{"/api/v2/sessions/" + id, "crm", "crm-static-secret", 200},
		{"/api/v2/sessions/" + id, "crm@example.com", "crm-static-secret", 200},
		{"/api/v2/sessions/" + id, "crm-client", "crm-static-secret", 200},
		{"/api/v2/sessions/" + id, "reader", "crm-static-secret", 401},
		{"/api/v2/sessions/" + id, "crm", "wrong", 401},
		{"/v1/sessions/" + id, "crm", "crm-static-secret", 401}, // babelforce's headers on babelforce's routes only
	} {
		res := s.do("GET", tc.path, nil, "X-Auth-Access-Id", tc.id, "X-Auth-Access-Token", tc.secret)
		if res.Status != tc.status {
			t.Errorf("%s as %s: %d, want %d", tc.path, tc.id, res.Status, tc.status)
		}
	}
}

// Servers with the same signing keys accept each other's access tokens
// (several nodes, a restart); a token removed from the configuration takes
// its access tokens with it.
func TestOAuth_SharedKeysAndRemovedToken(t *testing.T) {
	keys, err := signed.NewKeys([]signed.Key{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t)
	a := keyedServer(t, store, keys, 0, crmToken, readerToken)
	b := keyedServer(t, store, keys, 0, crmToken)
	c := keyedServer(t, store, keys, 0, readerToken)
	other := keyedServer(t, store, nil, 0, crmToken)
	id := a.directCall()
	res := a.form(url.Values{"grant_type": {"password"}, "username": {"crm@example.com"}, "password": {"pw-0123456789"}})
	access := res.JSON(t)["access_token"].(string)
	for _, tc := range []struct {
		name   string
		s      *testServer
		status int
	}{{"same keys", b, 200}, {"token removed", c, 401}, {"other keys", other, 401}} {
		if got := tc.s.do("GET", "/v1/sessions/"+id, nil, "Authorization", "Bearer "+access).Status; got != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.status)
		}
	}
}

// On a server without tokens any credentials get an access token: the
// server is open anyway, and babelforce clients ask for one first.
func TestOAuth_OpenServer(t *testing.T) {
	_, open := newTestServer(t, nil)
	res := open.form(url.Values{"grant_type": {"password"}, "username": {"anyone"}, "password": {"anything"}})
	if res.Status != 200 || !slices.Contains(strings.Fields(res.JSON(t)["scope"].(string)), "admin") {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	id := open.createCall(nil)
	if got := open.do("GET", "/api/v2/sessions/"+id, nil, "Authorization", "Bearer "+res.JSON(t)["access_token"].(string)).Status; got != 200 {
		t.Fatalf("%d", got)
	}
}
