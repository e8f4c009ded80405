package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/callctx/callctx/session"
	"github.com/gin-gonic/gin"
)

// etag is a session version as a strong entity tag.
func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

// parseIfMatch reads an If-Match header: "" and "*" make no precondition
// (the session exists or the write fails with 404 anyway); otherwise it must
// be one strong entity tag holding a version.
func parseIfMatch(h string) (uint64, bool) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return 0, true
	}
	if len(h) < 3 || h[0] != '"' || h[len(h)-1] != '"' {
		return 0, false
	}
	v, err := strconv.ParseUint(h[1:len(h)-1], 10, 64)
	if err != nil || v == 0 {
		return 0, false
	}
	return v, true
}

// noneMatch reports whether an If-None-Match header matches the entity tag
// want, by weak comparison as RFC 9110 asks.
func noneMatch(h, want string) bool {
	for tag := range strings.SplitSeq(h, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return true
		}
	}
	return false
}

// getSession serves the stored JSON of the session as it is: the hot read
// path decodes nothing.
func (h *Handler) getSession(c *gin.Context) {
	js, version, err := h.svc.SessionJSON(c.Request.Context(), c.Param("callId"))
	if err != nil {
		h.fail(c, err)
		return
	}
	tag := etag(version)
	c.Header("ETag", tag)
	c.Header("Cache-Control", "no-cache")
	if noneMatch(c.GetHeader("If-None-Match"), tag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, contentTypeJSON, js)
}

// writeSession merges the body into the session (POST and PATCH).
func (h *Handler) writeSession(c *gin.Context) {
	ifMatch, ok := parseIfMatch(c.GetHeader("If-Match"))
	if !ok {
		writeProblem(c, http.StatusBadRequest, typeMalformed, `If-Match must be one entity tag holding a version, like "3"`, nil)
		return
	}
	s, ok := h.merge(c, c.Param("callId"), ifMatch)
	if !ok {
		return
	}
	c.Header("ETag", etag(s.Version))
	c.Data(http.StatusOK, contentTypeJSON, s.JSON())
}

// merge decodes the validated body as a flat map of variables and writes it.
// It answers the problem itself and returns false when the write fails.
func (h *Handler) merge(c *gin.Context, callID string, ifMatch uint64) (*session.Session, bool) {
	body, _ := validatedBody(c)
	vars, err := session.ParseVariables(body) // validated as an object already; values sub-slice the body
	if err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "the body must be a JSON object of variables", nil)
		return nil, false
	}
	return h.write(c, callID, vars, ifMatch, "")
}

// write merges vars, whose problem pointers sit under varsPointer.
func (h *Handler) write(c *gin.Context, callID string, vars map[string]json.RawMessage, ifMatch uint64, varsPointer string) (*session.Session, bool) {
	s, _, err := h.svc.Merge(c.Request.Context(), callID, vars, session.WriteOptions{
		IfMatch: ifMatch, Actor: h.actor(c), Origin: session.OriginClient,
	})
	if err != nil {
		h.failAt(c, err, varsPointer)
		return nil, false
	}
	return s, true
}

func (h *Handler) getVariable(c *gin.Context) {
	name := c.Param("name")
	v, err := h.svc.Variable(c.Request.Context(), c.Param("callId"), name)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"name": name, "value": v})
}

// History pages (GET /v1/sessions/{callId}/history).
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 1000
	// maxHistoryPage bounds the bytes of one page: entries can be as large
	// as a session (64 KiB), and a page ends early, with its next cursor,
	// rather than grow past this.
	maxHistoryPage = 4 << 20
)

// getHistory pages through a session's history, oldest first, as
// GET /v1/calls pages through calls: {items, next}. The cursor is the
// version of the page's last entry; after is the same as a cursor.
func (h *Handler) getHistory(c *gin.Context) {
	after, limit, ok := historyPage(c)
	if !ok {
		return
	}
	entries, err := h.svc.History(c.Request.Context(), c.Param("callId"), after, limit+1)
	if err != nil {
		h.fail(c, err)
		return
	}
	more := len(entries) > limit
	if more {
		entries = entries[:limit]
	}
	b := append(make([]byte, 0, 64+256*len(entries)), `{"items":[`...)
	for i := range entries {
		if i > 0 {
			if len(b) > maxHistoryPage {
				entries, more = entries[:i], true
				break
			}
			b = append(b, ',')
		}
		b = entries[i].AppendJSON(b)
	}
	b = append(b, `],"next":`...)
	if more {
		b = append(b, '"')
		b = strconv.AppendUint(b, entries[len(entries)-1].Version, 10)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	c.Data(http.StatusOK, contentTypeJSON, append(b, '}'))
}

// historyPage reads the paging parameters of getHistory: where the page
// starts (after, or the cursor of the previous page) and its size.
func historyPage(c *gin.Context) (after uint64, limit int, ok bool) {
	limit = DefaultHistoryLimit
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxHistoryLimit {
			writeProblem(c, http.StatusBadRequest, typeMalformed, "limit must be an integer from 1 to "+strconv.Itoa(MaxHistoryLimit), nil)
			return 0, 0, false
		}
		limit = n
	}
	a, cursor := c.Query("after"), c.Query("cursor")
	if a != "" && cursor != "" {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "give after or cursor, not both", nil)
		return 0, 0, false
	}
	if s := a + cursor; s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			msg := "after must be a version number (0 or more)"
			if cursor != "" {
				msg = "the cursor is not valid; pass the next value of a previous page unchanged"
			}
			writeProblem(c, http.StatusBadRequest, typeMalformed, msg, nil)
			return 0, 0, false
		}
		after = n
	}
	return after, limit, true
}
