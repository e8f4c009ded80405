package api

import (
	"crypto/sha256"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// Scope is a permission a token may hold.
type Scope string

// Scopes. ScopeAdmin holds every other scope.
const (
	ScopeSessionsRead  Scope = "sessions:read"
	ScopeSessionsWrite Scope = "sessions:write"
	ScopeCallsWrite    Scope = "calls:write"
	ScopeMetricsRead   Scope = "metrics:read" // GET /metrics, for a Prometheus that should read nothing else
	ScopeAdmin         Scope = "admin"
)

// Scopes lists every scope a token may hold.
var Scopes = []Scope{ScopeSessionsRead, ScopeSessionsWrite, ScopeCallsWrite, ScopeMetricsRead, ScopeAdmin}

// Valid reports whether s is one of Scopes.
func (s Scope) Valid() bool { return slices.Contains(Scopes, s) }

// Token is a bearer token that may call the API. Only the SHA-256 of the
// secret is kept.
type Token struct {
	Name   string   // recorded as the actor of the writes it makes
	SHA256 [32]byte // of the secret
	Scopes []Scope
}

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
		if len(h.tokens) == 0 {
			c.Set(ctxActor, anonymous)
			return
		}
		secret, ok := bearer(c.GetHeader("Authorization"))
		if !ok && allowQueryToken {
			secret = c.Query("access_token")
			ok = secret != ""
		}
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="callctx"`)
			writeProblem(c, http.StatusUnauthorized, typeUnauthorized, "send Authorization: Bearer <token>", nil)
			return
		}
		tok := h.tokens[sha256.Sum256([]byte(secret))]
		if tok == nil {
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

// bearer extracts the token of an "Authorization: Bearer …" header.
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
