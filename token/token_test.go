package token_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/token"
)

func keys(t *testing.T, ks ...token.Key) *token.Keys {
	t.Helper()
	r, err := token.NewKeys(ks)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, token.MinSecretBytes) }

func TestKeys_SignVerify(t *testing.T) {
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	k1 := token.Key{ID: "k1", Secret: secret('a')}
	k2 := token.Key{ID: "k2", Secret: secret('b')}
	old := keys(t, k1)
	claims := token.Claims{Kind: token.KindAccess, Subject: "crm", Scopes: []string{"sessions:read", "sessions:write"}, Issued: now, Expires: now.Add(time.Hour)}
	s, err := old.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		c, err := old.Verify(s, token.KindAccess, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != "crm" || len(c.Scopes) != 2 || c.ID == "" || !c.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("claims %+v", c)
		}
	})
	t.Run("Rotation", func(t *testing.T) {
		// The new key signs; tokens of the old one still verify while it is kept.
		rotated := keys(t, k2, k1)
		if _, err := rotated.Verify(s, token.KindAccess, now); err != nil {
			t.Fatalf("old token after rotation: %v", err)
		}
		s2, _ := rotated.Sign(claims)
		if _, err := old.Verify(s2, token.KindAccess, now); !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("a key the ring lacks: %v", err)
		}
		dropped := keys(t, k2)
		if _, err := dropped.Verify(s, token.KindAccess, now); !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("a dropped key: %v", err)
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		if _, err := old.Verify(s, token.KindAccess, now.Add(2*time.Hour)); !errors.Is(err, token.ErrExpired) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("WrongKind", func(t *testing.T) {
		if _, err := old.Verify(s, token.KindContext, now); !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("err %v", err)
		}
		if _, err := old.Verify(s, token.KindContext, now.Add(2*time.Hour)); !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("an expired token of another kind must be invalid, not expired: %v", err)
		}
	})
	t.Run("Tampered", func(t *testing.T) {
		parts := strings.Split(s, ".")
		forged := keys(t, token.Key{ID: "k1", Secret: secret('z')})
		f, _ := forged.Sign(token.Claims{Kind: token.KindAccess, Subject: "admin", Issued: now, Expires: now.Add(time.Hour)})
		fparts := strings.Split(f, ".")
		for _, bad := range []string{
			parts[0] + "." + fparts[1] + "." + parts[2], // claims swapped
			f, // signed with another secret under the same key ID
			parts[0] + "." + parts[1] + ".", "", "a.b.c", s + "x",
		} {
			if _, err := old.Verify(bad, token.KindAccess, now); !errors.Is(err, token.ErrInvalid) {
				t.Errorf("%q: err %v", bad, err)
			}
		}
	})
}

func TestNewKeys_Errors(t *testing.T) {
	for name, ks := range map[string][]token.Key{
		"none":      nil,
		"short":     {{ID: "a", Secret: []byte("short")}},
		"no ID":     {{Secret: secret('a')}},
		"bad ID":    {{ID: "a b", Secret: secret('a')}},
		"duplicate": {{ID: "a", Secret: secret('a')}, {ID: "a", Secret: secret('b')}},
	} {
		if _, err := token.NewKeys(ks); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestGenerateKeys(t *testing.T) {
	a, b := token.GenerateKeys(), token.GenerateKeys()
	now := time.Now()
	s, err := a.Sign(token.Claims{Kind: token.KindContext, Subject: "call-1", Once: true, Issued: now, Expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := a.Verify(s, token.KindContext, now); err != nil || !c.Once || c.Subject != "call-1" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := b.Verify(s, token.KindContext, now); err == nil {
		t.Fatal("another generated ring accepted the token")
	}
}

// FuzzVerify: no input crashes Verify or passes as a token it did not sign.
func FuzzVerify(f *testing.F) {
	r, _ := token.NewKeys([]token.Key{{ID: "k", Secret: secret('k')}})
	now := time.Unix(1_800_000_000, 0)
	good, _ := r.Sign(token.Claims{Kind: token.KindAccess, Subject: "x", Issued: now, Expires: now.Add(time.Hour)})
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := r.Verify(s, token.KindAccess, now)
		if err == nil && s != good {
			// Only a re-encoding of the good token could pass; its claims must be the same.
			if c.Subject != "x" {
				t.Fatalf("accepted %q as %+v", s, c)
			}
		}
	})
}

func TestLinker(t *testing.T) {
	k := keys(t, token.Key{ID: "k", Secret: secret('k')})
	l := token.NewLinker(k, "", time.Minute, false)
	if _, _, err := l.Link("call-1", 0, false); err == nil {
		t.Fatal("a link without a base URL")
	}
	l.SetBaseURL("https://callctx.example.com/")
	link, exp, err := l.Link("call-1", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := strings.CutPrefix(link, "https://callctx.example.com"+token.ContextPath)
	if !ok {
		t.Fatalf("link %q", link)
	}
	c, err := k.Verify(tok, token.KindContext, time.Now())
	if err != nil || c.Subject != "call-1" || !c.Once || !c.Expires.Equal(exp.Truncate(time.Second)) && c.Expires.Unix() != exp.Unix() {
		t.Fatalf("%+v %v (exp %v)", c, err, exp)
	}
	if _, err := k.Verify(tok, token.KindAccess, time.Now()); err == nil {
		t.Fatal("a context link passed as an access token")
	}
}
