package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/callctx/callctx/token"
	"github.com/gin-gonic/gin"
)

// The OAuth2 token endpoint (RFC 6749 §3.2), as babelforce's clients call it
// first: POST /oauth/token with a password grant (babelforce's documented
// way), client credentials or a refresh token, form-encoded. It maps onto
// callctx's tokens: each configured token may have a username and password
// and/or a client ID and secret, and the access token issued acts as that
// token, with its scopes, until it expires.

// Defaults of the OAuth2 token lifetimes.
const (
	DefaultAccessTokenTTL  = time.Hour
	DefaultRefreshTokenTTL = 24 * time.Hour
)

// babelforce's header pair for its access ID and token.
const (
	bfAccessIDHeader    = "X-Auth-Access-Id"
	bfAccessTokenHeader = "X-Auth-Access-Token"
)

// ctxOAuth marks a request to the token endpoint, whose problems also carry
// RFC 6749's error and error_description.
const ctxOAuth = "callctx.oauth"

// OAuth2 error codes (RFC 6749 §5.2).
const (
	oauthInvalidRequest   = "invalid_request"
	oauthInvalidClient    = "invalid_client"
	oauthInvalidGrant     = "invalid_grant"
	oauthUnsupportedGrant = "unsupported_grant_type"
	oauthInvalidScope     = "invalid_scope"
)

// tokenRequest is the body of POST /oauth/token.
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	Username     string `json:"username"`
	Password     string `json:"password"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// tokenResponse is RFC 6749's access token response, as babelforce answers it.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	ClientID     string `json:"client_id,omitempty"`
}

// oauthFail answers an OAuth2 error as a problem carrying error and
// error_description, with 401 for a client that failed to authenticate.
func oauthFail(c *gin.Context, code, detail string) {
	status := http.StatusBadRequest
	if code == oauthInvalidClient {
		status = http.StatusUnauthorized
		c.Header("WWW-Authenticate", `Basic realm="callctx"`)
	}
	c.Set(ctxOAuthError, code)
	typ := typeMalformed
	if status == http.StatusUnauthorized {
		typ = typeUnauthorized
	}
	writeProblem(c, status, typ, detail, nil)
}

// ctxOAuthError holds the RFC 6749 error code of a failed token request.
const ctxOAuthError = "callctx.oauthError"

func (h *Handler) oauthToken(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	if !h.open && h.authLocked(c) {
		return
	}
	var req tokenRequest
	if _, err := decodeBody(c, &req); err != nil {
		oauthFail(c, oauthInvalidRequest, "the body could not be decoded")
		return
	}
	// RFC 6749 §2.3.1: a client may authenticate with HTTP Basic instead.
	if id, secret, ok := c.Request.BasicAuth(); ok {
		id, err1 := url.QueryUnescape(id)
		secret, err2 := url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || req.ClientSecret != "" && req.ClientSecret != secret {
			oauthFail(c, oauthInvalidRequest, "the client credentials in the Authorization header are malformed or disagree with the body")
			return
		}
		req.ClientID, req.ClientSecret = id, secret
	}
	var tok *Token
	switch req.GrantType {
	case "password":
		if req.Username == "" || req.Password == "" {
			oauthFail(c, oauthInvalidRequest, "the password grant needs username and password")
			return
		}
		if tok = h.byPassword(req.Username, req.Password); tok == nil && !h.open {
			h.authFailed(c)
			oauthFail(c, oauthInvalidGrant, "the username or password is not valid")
			return
		}
	case "client_credentials":
		if req.ClientID == "" || req.ClientSecret == "" {
			oauthFail(c, oauthInvalidClient, "the client credentials grant needs client_id and client_secret")
			return
		}
		if tok = h.byClient(req.ClientID, req.ClientSecret); tok == nil && !h.open {
			h.authFailed(c)
			oauthFail(c, oauthInvalidClient, "the client_id or client_secret is not valid")
			return
		}
	case "refresh_token":
		claims, err := h.keys.Verify(req.RefreshToken, token.KindRefresh, nowFunc())
		if err != nil {
			h.authFailed(c)
			oauthFail(c, oauthInvalidGrant, "the refresh token is not valid or has expired")
			return
		}
		if tok = h.named[claims.Subject]; tok == nil && !(h.open && claims.Subject == anonymous) {
			oauthFail(c, oauthInvalidGrant, "the refresh token's token no longer exists")
			return
		}
		if req.Scope == "" {
			req.Scope = strings.Join(claims.Scopes, " ")
		}
	case "":
		oauthFail(c, oauthInvalidRequest, "grant_type is missing")
		return
	default:
		oauthFail(c, oauthUnsupportedGrant, "grant_type "+req.GrantType+" is not supported; use password, client_credentials or refresh_token")
		return
	}
	if tok == nil { // an open server: every grant is the anonymous admin
		tok = &Token{Name: anonymous, Scopes: []Scope{ScopeAdmin}}
	}
	scopes, ok := grantedScopes(tok, req.Scope)
	if !ok {
		oauthFail(c, oauthInvalidScope, "the token "+tok.Name+" holds the scopes "+joinScopes(tok.Scopes)+"; ask for some of them, or * for all")
		return
	}
	h.issueTokens(c, tok.Name, scopes, req.ClientID)
}

// issueTokens answers an access token and a refresh token for the token
// called name with scopes.
func (h *Handler) issueTokens(c *gin.Context, name string, scopes []string, clientID string) {
	now := nowFunc()
	access, err := h.keys.Sign(token.Claims{Kind: token.KindAccess, Subject: name, Scopes: scopes, Issued: now, Expires: now.Add(h.accessTTL)})
	if err == nil {
		var refresh string
		refresh, err = h.keys.Sign(token.Claims{Kind: token.KindRefresh, Subject: name, Scopes: scopes, Issued: now, Expires: now.Add(h.refreshTTL)})
		if err == nil {
			h.log.Info("oauth token issued", "token", name, "scopes", strings.Join(scopes, " "))
			c.JSON(http.StatusOK, tokenResponse{AccessToken: access, TokenType: "bearer", ExpiresIn: int64(h.accessTTL / time.Second),
				RefreshToken: refresh, Scope: strings.Join(scopes, " "), ClientID: clientID})
			return
		}
	}
	h.log.Error("oauth sign token", "error", err)
	writeProblem(c, http.StatusInternalServerError, typeInternal, "internal error", nil)
}

// grantedScopes returns the scopes an access token gets: those asked for
// (space-separated; "" or "*" for all the token holds), which the token must
// hold.
func grantedScopes(tok *Token, asked string) ([]string, bool) {
	var out []string
	if f := strings.Fields(asked); len(f) > 0 && !(len(f) == 1 && f[0] == "*") {
		for _, s := range f {
			if !tok.Has(Scope(s)) || !Scope(s).Valid() {
				return nil, false
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out, true
	}
	for _, s := range tok.Scopes {
		out = append(out, string(s))
	}
	return out, true
}

func joinScopes(ss []Scope) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, " ")
}

// byPassword returns the token whose username (compared without regard to
// case, as e-mail addresses are) and password match, nil when none does.
// (On an open server there are no tokens: any credentials pass, as the
// anonymous admin.)
func (h *Handler) byPassword(username, password string) *Token {
	sum := sha256.Sum256([]byte(password))
	for _, t := range h.named {
		if t.Username != "" && strings.EqualFold(t.Username, username) && subtle.ConstantTimeCompare(sum[:], t.PasswordSHA256[:]) == 1 {
			return t
		}
	}
	return nil
}

// byClient returns the token whose client ID and secret match.
func (h *Handler) byClient(id, secret string) *Token {
	sum := sha256.Sum256([]byte(secret))
	for _, t := range h.named {
		if t.ClientID != "" && t.ClientID == id && subtle.ConstantTimeCompare(sum[:], t.ClientSecretSHA256[:]) == 1 {
			return t
		}
	}
	return nil
}

// bfAccessToken is babelforce's older header pair: X-Auth-Access-Id names
// the token (its name, username or client ID) and X-Auth-Access-Token is its
// static secret.
func (h *Handler) bfAccessToken(id, secret string) *Token {
	t := h.tokens[sha256.Sum256([]byte(secret))]
	if t == nil || id != t.Name && !strings.EqualFold(id, t.Username) && id != t.ClientID {
		return nil
	}
	return t
}
