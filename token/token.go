// Package token mints and verifies callctx's signed tokens: the access and
// refresh tokens of the OAuth2 token endpoint, and the read links of context
// by reference (a call-scoped URL a SIP peer fetches the session with).
//
// Tokens are JSON Web Tokens signed with HMAC-SHA256 (golang-jwt). A Keys
// ring signs with its first key and verifies with any of them, by the key ID
// in the token's header: a new key is put first, the old one kept behind it
// until every token it signed has expired, and no token stops working while
// keys rotate. Tokens carry everything needed to check them; callctx keeps no
// token state, so any node that has the keys accepts them.
package token

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// MinSecretBytes is the shortest secret a key may have: HS256 wants at
// least as many bytes as the hash has.
const MinSecretBytes = 32

// Kind says what a token may be used for; a token of one kind is refused
// as any other.
type Kind string

// Kinds of tokens.
const (
	KindAccess  Kind = "access"  // a bearer token for the API
	KindRefresh Kind = "refresh" // exchanged for a new access token
	KindContext Kind = "context" // reads one call's session
)

// audience is the JWT audience a kind is minted for.
func (k Kind) audience() string { return "callctx:" + string(k) }

// Key is one signing key.
type Key struct {
	ID     string // in the token header (kid); letters, digits, '.', '_', '-'
	Secret []byte
}

// Keys is a ring of signing keys, immutable and safe for concurrent use.
type Keys struct {
	sign Key
	byID map[string][]byte
}

// NewKeys returns a ring that signs with keys[0] and verifies with every key.
// It fails when there is no key, an ID is empty, repeated or not a plain
// word, or a secret is shorter than MinSecretBytes.
func NewKeys(keys []Key) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("no signing key")
	}
	r := &Keys{sign: keys[0], byID: make(map[string][]byte, len(keys))}
	for i, k := range keys {
		if !validID(k.ID) {
			return nil, fmt.Errorf("key %d: the ID %q must be 1 to 64 letters, digits, '.', '_' or '-'", i, k.ID)
		}
		if _, dup := r.byID[k.ID]; dup {
			return nil, fmt.Errorf("key %d: the ID %q is used twice", i, k.ID)
		}
		if len(k.Secret) < MinSecretBytes {
			return nil, fmt.Errorf("key %q: the secret has %d bytes; use at least %d random bytes", k.ID, len(k.Secret), MinSecretBytes)
		}
		r.byID[k.ID] = slices.Clone(k.Secret)
	}
	return r, nil
}

// GenerateKeys returns a ring of one random key. Tokens it signs are valid
// only for this process: use NewKeys with configured keys where several
// nodes must accept the same tokens, or tokens must survive a restart.
func GenerateKeys() *Keys {
	secret := make([]byte, MinSecretBytes)
	if _, err := rand.Read(secret); err != nil {
		panic(fmt.Sprintf("token: read random bytes: %v", err)) // crypto/rand does not fail on supported systems
	}
	r, _ := NewKeys([]Key{{ID: "generated-" + hex.EncodeToString(secret[:4]), Secret: secret}})
	return r
}

// SigningKeyID returns the ID of the key new tokens are signed with.
func (r *Keys) SigningKeyID() string { return r.sign.ID }

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Claims is what a token says.
type Claims struct {
	Kind    Kind
	ID      string   // unique per token (jti); Sign fills it when empty
	Subject string   // the API token's name (access, refresh) or the call ID (context)
	Scopes  []string // access and refresh: what the token may do
	Once    bool     // context: the link may be used once
	Issued  time.Time
	Expires time.Time
}

// jwtClaims is Claims on the wire.
type jwtClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope,omitempty"`
	Once  bool   `json:"once,omitempty"`
}

// Sign mints a token for c, which must have a kind, a subject and an
// expiry after its issue time.
func (r *Keys) Sign(c Claims) (string, error) {
	switch {
	case c.Kind == "":
		return "", errors.New("sign token: no kind")
	case c.Subject == "":
		return "", errors.New("sign token: no subject")
	case !c.Expires.After(c.Issued):
		return "", errors.New("sign token: it expires before it is issued")
	}
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	jc := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID: c.ID, Subject: c.Subject, Audience: jwt.ClaimStrings{c.Kind.audience()},
			IssuedAt: jwt.NewNumericDate(c.Issued), ExpiresAt: jwt.NewNumericDate(c.Expires),
		},
		Scope: strings.Join(c.Scopes, " "),
		Once:  c.Once,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jc)
	t.Header["kid"] = r.sign.ID
	s, err := t.SignedString(r.sign.Secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Errors of Verify, for callers that answer them differently.
var (
	ErrExpired = errors.New("the token has expired")
	ErrInvalid = errors.New("the token is not valid")
)

// Verify checks s as a token of kind at time now: its signature by a key of
// the ring, its kind and its expiry. It returns ErrExpired for a genuine
// token past its expiry and ErrInvalid (wrapped with the reason) for
// anything else.
func (r *Keys) Verify(s string, kind Kind, now time.Time) (Claims, error) {
	var jc jwtClaims
	_, err := jwt.ParseWithClaims(s, &jc, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := r.byID[kid]
		if !ok {
			return nil, fmt.Errorf("unknown key %q", kid)
		}
		return key, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(kind.audience()),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenInvalidAudience):
		// Claims are checked after the signature: this token is genuine.
		return Claims{}, ErrExpired
	case err != nil:
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	case jc.Subject == "" || jc.ID == "":
		return Claims{}, fmt.Errorf("%w: no subject or ID", ErrInvalid)
	}
	c := Claims{Kind: kind, ID: jc.ID, Subject: jc.Subject, Once: jc.Once, Expires: jc.ExpiresAt.Time}
	if jc.IssuedAt != nil {
		c.Issued = jc.IssuedAt.Time
	}
	if jc.Scope != "" {
		c.Scopes = strings.Fields(jc.Scope)
	}
	return c, nil
}

// LooksSigned reports whether s has the shape of a signed token (three
// dot-separated parts), so that a bearer secret need not be tried as one.
func LooksSigned(s string) bool { return strings.Count(s, ".") == 2 }

// ContextPath is where the API serves a context link: ContextPath + the token.
const ContextPath = "/v1/context/"

// Linker mints context links: URLs that read one call's session without a token of their
// own, until they expire (and, the API checks, until a grace period after the call ended;
// once, when single use). It is safe for concurrent use.
type Linker struct {
	keys *Keys
	ttl  time.Duration
	once bool
	now  func() time.Time
	base atomic.Pointer[string]
}

// NewLinker returns a Linker that signs with keys links valid for ttl, for single use when
// once is set, under baseURL (the scheme, host and port receivers reach the API at; it may
// be set later with SetBaseURL).
func NewLinker(keys *Keys, baseURL string, ttl time.Duration, once bool) *Linker {
	l := &Linker{keys: keys, ttl: ttl, once: once, now: time.Now}
	l.SetBaseURL(baseURL)
	return l
}

// SingleUse reports whether every link the Linker mints is for a single use.
func (l *Linker) SingleUse() bool { return l.once }

// SetBaseURL sets the scheme, host and port of the links (a trailing slash is dropped).
func (l *Linker) SetBaseURL(u string) {
	u = strings.TrimSuffix(u, "/")
	l.base.Store(&u)
}

// Link mints a link to the session of callID, with the Linker's lifetime and use unless
// ttl or once say otherwise (ttl 0: the Linker's).
func (l *Linker) Link(callID string, ttl time.Duration, once bool) (string, time.Time, error) {
	base := *l.base.Load()
	if base == "" {
		return "", time.Time{}, errors.New("context links have no base URL")
	}
	if ttl <= 0 {
		ttl = l.ttl
	}
	now := l.now()
	exp := now.Add(ttl)
	s, err := l.keys.Sign(Claims{Kind: KindContext, Subject: callID, Once: once || l.once, Issued: now, Expires: exp})
	if err != nil {
		return "", time.Time{}, err
	}
	return base + ContextPath + s, exp, nil
}
