package api

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/token"
	"github.com/gin-gonic/gin"
)

// Context by reference: a signed, expiring, call-scoped link (GET /v1/context/{token}) that
// reads the whole session without a token of its own. The SIP bridge puts one in
// X-Callctx-Context on a transfer, REFER or 302 (sip.carry.as: reference); POST
// /v1/calls/{id}/context-link mints one over REST. A link stops working when it expires,
// a grace period after its call ended, and after its first use when it is single use.

// DefaultContextGrace is how long a call's links keep working after the call ended.
const DefaultContextGrace = 30 * time.Second

// usedLinks remembers the single-use links that were used, until they expire. It is per
// process: behind several nodes, route a link's requests to one (docs/context-links.md).
type usedLinks struct {
	mu   sync.Mutex
	seen map[string]time.Time // token ID → expiry
}

// use reports whether the link id is used for the first time, and remembers it.
func (u *usedLinks) use(id string, exp, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		u.seen = map[string]time.Time{}
	}
	if _, used := u.seen[id]; used {
		return false
	}
	for k, e := range u.seen { // the map holds live links only
		if now.After(e) {
			delete(u.seen, k)
		}
	}
	u.seen[id] = exp
	return true
}

// getContext serves the session a context link points to.
func (h *Handler) getContext(c *gin.Context) {
	now := nowFunc()
	claims, err := h.keys.Verify(c.Param("token"), token.KindContext, now)
	switch {
	case errors.Is(err, token.ErrExpired):
		writeProblem(c, http.StatusGone, typeGone, "the context link has expired", nil)
		return
	case err != nil:
		writeProblem(c, http.StatusNotFound, typeNotFound, "the context link is not valid", nil)
		return
	}
	c.Set(ctxActor, "context-link")
	c.Set(ctxCallID, claims.Subject)
	call, err := h.svc.Call(c.Request.Context(), claims.Subject)
	if session.ErrorCode(err) == session.CodeNotFound {
		writeProblem(c, http.StatusGone, typeGone, "the call of this context link is gone", nil)
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	if call.State == session.StateEnded && now.After(call.EndedAt.Add(h.contextGrace)) {
		writeProblem(c, http.StatusGone, typeGone, "the call ended at "+call.EndedAt.UTC().Format(time.RFC3339)+"; its context links were revoked "+h.contextGrace.String()+" later", nil)
		return
	}
	js, version, err := h.svc.SessionJSON(c.Request.Context(), claims.Subject)
	if err != nil {
		h.fail(c, err)
		return
	}
	if claims.Once && !h.usedLinks.use(claims.ID, claims.Expires, now) {
		writeProblem(c, http.StatusGone, typeGone, "the context link was for a single use, and it has been used", nil)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("ETag", etag(version))
	c.Header("X-Callctx-Call-Id", call.ID)
	c.Data(http.StatusOK, contentTypeJSON, js)
}

// contextLinkRequest is the body of POST /v1/calls/{id}/context-link.
type contextLinkRequest struct {
	TTLSeconds int  `json:"ttlSeconds"`
	SingleUse  bool `json:"singleUse"`
}

// createContextLink mints a context link for a call.
func (h *Handler) createContextLink(c *gin.Context) {
	if h.links == nil {
		writeProblem(c, http.StatusServiceUnavailable, typeUnavailable, "context links are not configured on this server", nil)
		return
	}
	var req contextLinkRequest
	if _, err := decodeBody(c, &req); err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "the body could not be decoded: "+jsonErrorText(err), nil)
		return
	}
	call, err := h.svc.Call(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	if call.State == session.StateEnded {
		writeProblem(c, http.StatusConflict, typeConflict, "the call "+call.ID+" has ended", nil)
		return
	}
	link, exp, err := h.links.Link(call.ID, time.Duration(req.TTLSeconds)*time.Second, req.SingleUse)
	if err != nil {
		h.log.Error("mint context link", "call_id", call.ID, "error", err)
		writeProblem(c, http.StatusInternalServerError, typeInternal, "internal error", nil)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, gin.H{"url": link, "callId": call.ID, "expiresAt": exp.UTC(), "singleUse": req.SingleUse || h.links.SingleUse(),
		"header": session.ContextLinkHeader + ": " + link})
}
