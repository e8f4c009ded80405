package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/gin-gonic/gin"
)

// bfSession is a session in babelforce's envelope.
type bfSession struct {
	Success bool       `json:"success"`
	Item    bfItemJSON `json:"item"`
}

type bfItemJSON struct {
	ID         string                     `json:"id"`
	Valid      bool                       `json:"valid"`
	Created    time.Time                  `json:"created"`
	LastAccess time.Time                  `json:"last_access"`
	Data       map[string]json.RawMessage `json:"data"`
}

func toBFSession(s *session.Session) bfSession {
	data := s.Variables
	if data == nil {
		data = map[string]json.RawMessage{}
	}
	return bfSession{Success: true, Item: bfItemJSON{
		ID: s.CallID, Valid: s.State == session.StateActive, Created: s.CreatedAt, LastAccess: s.UpdatedAt, Data: data,
	}}
}

func (h *Handler) bfGetSession(c *gin.Context) {
	s, err := h.svc.Session(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toBFSession(s))
}

func (h *Handler) bfPutSession(c *gin.Context) {
	s, ok := h.merge(c, c.Param("id"), 0)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, toBFSession(s))
}

func (h *Handler) bfSetCallSession(c *gin.Context) {
	var req struct {
		Variables map[string]json.RawMessage `json:"variables"`
	}
	if _, err := decodeBody(c, &req); err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "the body must be {\"variables\": {…}}", nil)
		return
	}
	s, ok := h.write(c, c.Param("id"), req.Variables, 0, "/variables")
	if !ok {
		return
	}
	c.JSON(http.StatusOK, toBFSession(s))
}
