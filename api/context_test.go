package api_test

import (
	"crypto/sha256"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
	signed "github.com/callctx/callctx/token"
)

// linkServer runs the API with tokens (so that nothing is open), signing keys ks, a Linker
// for links of ttl, and a grace after a call's end.
func linkServer(t *testing.T, store session.Store, ks *signed.Keys, ttl, grace time.Duration) (*testServer, *signed.Linker, *testenv.Buffer) {
	t.Helper()
	log, logs := testenv.CaptureLog(t, slog.LevelInfo)
	links := signed.NewLinker(ks, "", ttl, false)
	_, s := serve(t, api.Config{
		Service: session.NewService(store, session.Options{}), Keys: ks, Links: links, ContextGrace: grace,
		Tokens: []api.Token{{Name: "crm", SHA256: sha256.Sum256([]byte("crm-secret")), Scopes: []api.Scope{api.ScopeAdmin}}},
		Logger: log, AccessLog: true,
	})
	links.SetBaseURL(s.URL)
	s.token = "crm-secret"
	return s, links, logs
}

func mustKeys(t *testing.T, ks ...signed.Key) *signed.Keys {
	t.Helper()
	r, err := signed.NewKeys(ks)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	k1 = signed.Key{ID: "k1", Secret: []byte(strings.Repeat("1", 32))}
	k2 = signed.Key{ID: "k2", Secret: []byte(strings.Repeat("2", 32))}
)

// fetch reads a link without a token and returns the status.
func (s *testServer) fetch(link string) *response {
	s.t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.do("GET", u.Path, nil, "Authorization", "")
}

func TestContextLink(t *testing.T) {
	s, _, logs := linkServer(t, openStore(t), mustKeys(t, k1), time.Minute, time.Second)
	id := s.createCall(nil)
	s.do("POST", "/v1/sessions/"+id, `{"ivr.email":"a@b.c"}`)
	res := s.do("POST", "/v1/calls/"+id+"/context-link", `{"singleUse":true,"ttlSeconds":60}`)
	if res.Status != 201 {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	m := res.JSON(t)
	link := m["url"].(string)
	if m["singleUse"] != true || !strings.HasPrefix(m["header"].(string), "X-Callctx-Context: "+s.URL+"/v1/context/") {
		t.Fatalf("%s", res.Body)
	}
	t.Run("ReadOnceWithoutAToken", func(t *testing.T) {
		res := s.fetch(link)
		if res.Status != 200 || res.JSON(t)["variables"].(map[string]any)["ivr.email"] != "a@b.c" || res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("X-Callctx-Call-Id") != id {
			t.Fatalf("%d %v %s", res.Status, res.Header, res.Body)
		}
		wantProblem(t, s.fetch(link), 410, "single use")
	})
	t.Run("NotInTheLog", func(t *testing.T) {
		tok := link[strings.LastIndex(link, "/")+1:]
		if strings.Contains(logs.String(), tok) {
			t.Fatal("the access log holds a link's token")
		}
		if !strings.Contains(logs.String(), `"path":"/v1/context/{token}"`) {
			t.Fatalf("the access log does not show the route:\n%s", logs.String())
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		wantProblem(t, s.do("GET", "/v1/context/not-a-token", nil, "Authorization", ""), 404, "not valid")
		// An access token is no context link.
		// A link signed with a key this server does not hold.
		l2, _, _ := signed.NewLinker(mustKeys(t, k2), s.URL, time.Minute, false).Link(id, 0, false)
		wantProblem(t, s.fetch(l2), 404, "not valid")
	})
	t.Run("Mint", func(t *testing.T) {
		wantProblem(t, s.do("POST", "/v1/calls/nope/context-link", nil), 404, "")
		wantProblem(t, s.do("POST", "/v1/calls/"+id+"/context-link", nil, "Authorization", ""), 401, "")
		wantProblem(t, s.do("POST", "/v1/calls/"+id+"/context-link", `{"ttlSeconds":0}`), 422, "")
	})
	t.Run("RevokedWhenTheCallEnds", func(t *testing.T) {
		link := s.do("POST", "/v1/calls/"+id+"/context-link", nil).JSON(t)["url"].(string)
		s.do("POST", "/v1/calls/"+id+"/end", nil)
		if res := s.fetch(link); res.Status != 200 {
			t.Fatalf("within the grace period: %d %s", res.Status, res.Body)
		}
		time.Sleep(1100 * time.Millisecond)
		wantProblem(t, s.fetch(link), 410, "revoked")
		wantProblem(t, s.do("POST", "/v1/calls/"+id+"/context-link", nil), 409, "ended")
	})
}

func TestContextLink_Expiry(t *testing.T) {
	s, links, _ := linkServer(t, openStore(t), mustKeys(t, k1), time.Second, time.Minute)
	id := s.createCall(nil)
	link, _, err := links.Link(id, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if res := s.fetch(link); res.Status != 200 {
		t.Fatalf("%d", res.Status)
	}
	time.Sleep(2100 * time.Millisecond) // expiries have a resolution of one second
	wantProblem(t, s.fetch(link), 410, "expired")
}

// Keys rotate without downtime: a node with the new key first and the old one behind it
// serves links the old key signed, and mints with the new one; once the old key is dropped,
// its links stop.
func TestContextLink_KeyRotation(t *testing.T) {
	store := openStore(t)
	old, oldLinks, _ := linkServer(t, store, mustKeys(t, k1), time.Minute, time.Minute)
	id := old.createCall(nil)
	link, _, _ := oldLinks.Link(id, 0, false)
	rotated, newLinks, _ := linkServer(t, store, mustKeys(t, k2, k1), time.Minute, time.Minute)
	if res := rotated.fetch(link); res.Status != 200 {
		t.Fatalf("an old link after rotation: %d %s", res.Status, res.Body)
	}
	newLink, _, _ := newLinks.Link(id, 0, false)
	if res := old.fetch(newLink); res.Status != 404 {
		t.Fatalf("a node without the new key: %d", res.Status)
	}
	dropped, _, _ := linkServer(t, store, mustKeys(t, k2), time.Minute, time.Minute)
	wantProblem(t, dropped.fetch(link), 404, "")
	if res := dropped.fetch(newLink); res.Status != 200 {
		t.Fatalf("a new link on a node with the new key only: %d", res.Status)
	}
}
