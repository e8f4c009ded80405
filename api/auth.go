package api

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/callctx/callctx/token"
	"github.com/gin-gonic/gin"
)

// Scope is a permission a token may hold.
type Scope string

// Scopes. ScopeAdmin holds every other scope.
const (
	ScopeSessionsRead  Scope = "sessions:read"
	ScopeSessionsWrite Scope = "sessions:write"
	ScopeCallsWrite    Scope = "calls:write"
	ScopeMetricsRead   Scope = "metrics:read" // GET /metrics and /debug/pprof/*, for a Prometheus (or a profiler) that should read nothing else
	ScopeAdmin         Scope = "admin"
)

// Scopes lists every scope a token may hold.
var Scopes = []Scope{ScopeSessionsRead, ScopeSessionsWrite, ScopeCallsWrite, ScopeMetricsRead, ScopeAdmin}

// Valid reports whether s is one of Scopes.
func (s Scope) Valid() bool { return slices.Contains(Scopes, s) }

// Token is a bearer token that may call the API. Only the SHA-256 of the
// secret is kept. A token may also be obtained through OAuth2 (POST
// /oauth/token, babelforce's token endpoint) with a user name and password
// or a client ID and secret: the access token issued acts as this token,
// with its scopes, until it expires.
type Token struct {
	Name   string   // recorded as the actor of the writes it makes
	SHA256 [32]byte // of the secret; all zero for a token used through OAuth2 only
	Scopes []Scope

	Username           string   // the password grant's username; "" when it has none
	PasswordSHA256     [32]byte // of the password
	ClientID           string   // the client credentials grant's client_id; "" when it has none
	ClientSecretSHA256 [32]byte // of the client secret
}

// hasSecret reports whether the token has a static bearer secret.
func (t *Token) hasSecret() bool { return t.SHA256 != [32]byte{} }

// Has reports whether t holds scope s.
func (t *Token) Has(s Scope) bool {
	for _, have := range t.Scopes {
		if have == s || have == ScopeAdmin {
			return true
		}
	}
	return false
}

// anonymous is the actor of requests to a server that runs without tokens.
const anonymous = "anonymous"

// Context keys.
const (
	ctxActor = "callctx.actor"
)

// authenticate checks the bearer token against the scope an operation
// needs. With no tokens configured every request passes as "anonymous"
// (the command refuses to listen beyond loopback in that case).
func (h *Handler) authenticate(scope Scope, allowQueryToken bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if h.open { // the actor is anonymous (actor)
			return
		}
		if h.authLocked(c) {
			return
		}
		secret, ok := bearer(c.GetHeader("Authorization"))
		if !ok && allowQueryToken {
			secret = c.Query("access_token")
			ok = secret != ""
		}
		var tok *Token
		if !ok && c.GetBool(ctxBabelforce) && c.GetHeader(bfAccessIDHeader) != "" {
			tok, ok = h.bfAccessToken(c.GetHeader(bfAccessIDHeader), c.GetHeader(bfAccessTokenHeader)), true
		} else if ok {
			var expired bool
			if tok, expired = h.tokenOf(secret); expired { // a genuine token: not a guess
				c.Header("WWW-Authenticate", `Bearer realm="callctx", error="invalid_token", error_description="the access token has expired"`)
				writeProblem(c, http.StatusUnauthorized, typeUnauthorized, "the access token has expired; get a new one from /oauth/token", nil)
				return
			}
		}
		if !ok { // no credentials: not a guess
			c.Header("WWW-Authenticate", `Bearer realm="callctx"`)
			writeProblem(c, http.StatusUnauthorized, typeUnauthorized, "send Authorization: Bearer <token>", nil)
			return
		}
		if tok == nil { // a wrong token: counted against the client (ClientLimits)
			h.authFailed(c)
			c.Header("WWW-Authenticate", `Bearer realm="callctx", error="invalid_token"`)
			writeProblem(c, http.StatusUnauthorized, typeUnauthorized, "the bearer token is not valid", nil)
			return
		}
		if !tok.Has(scope) {
			c.Header("WWW-Authenticate", `Bearer realm="callctx", error="insufficient_scope", scope="`+string(scope)+`"`)
			writeProblem(c, http.StatusForbidden, typeForbidden, `the token "`+tok.Name+`" lacks the scope `+string(scope), nil)
			return
		}
		c.Set(ctxActor, tok.Name)
	}
}

// actor is who sent the request: the name of its token (authenticate), or
// what a route that takes no token names it ("context-link"); on a server
// without tokens, anonymous.
func (h *Handler) actor(c *gin.Context) string {
	if a := c.GetString(ctxActor); a != "" || !h.open {
		return a
	}
	return anonymous
}

// tokenOf returns the token a bearer secret stands for: a static token's
// secret, or an access token issued by /oauth/token, which acts as the
// token it was issued for with the scopes both hold. expired reports a
// genuine access token past its expiry.
func (h *Handler) tokenOf(secret string) (tok *Token, expired bool) {
	if t := h.tokens[sha256.Sum256([]byte(secret))]; t != nil {
		return t, false
	}
	if h.keys == nil || !token.LooksSigned(secret) {
		return nil, false
	}
	claims, err := h.keys.Verify(secret, token.KindAccess, nowFunc())
	if err != nil {
		return nil, errors.Is(err, token.ErrExpired)
	}
	named := h.named[claims.Subject]
	if named == nil { // the token was removed from the configuration
		return nil, false
	}
	eff := &Token{Name: named.Name}
	for _, s := range claims.Scopes {
		if named.Has(Scope(s)) {
			eff.Scopes = append(eff.Scopes, Scope(s))
		}
	}
	return eff, false
}

// bearer extracts the token of an "Authorization: Bearer …" header.
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
