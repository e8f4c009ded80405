package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/gin-gonic/gin"
)

// The babelforce-compatible routes (/api/v2) behave as babelforce's manager
// API documents them, where /v1 is strict: session/set applies app.* and
// ignores every other key; a session PUT takes babelforce's unprefixed user
// keys (as ivr.<key>) and ignores the read-only namespaces; timestamps of a
// session are epoch seconds. What was ignored is never silent: writes answer
// it in the ignored field and the X-Callctx-Ignored header. docs/babelforce.md
// lists every babelforce call and what callctx does with it.

// bfIgnoredHeader lists the keys a babelforce write ignored, each
// percent-encoded, separated by commas.
const bfIgnoredHeader = "X-Callctx-Ignored"

// bfSession is a session in babelforce's envelope.
type bfSession struct {
	Success bool       `json:"success"`
	Item    bfItemJSON `json:"item"`
}

// bfWritten is the answer to a babelforce write: the session, and the keys
// the write did not apply with the reason (an empty list when none).
type bfWritten struct {
	bfSession
	Ignored []bfIgnored `json:"ignored"`
}

type bfItemJSON struct {
	ID         string                     `json:"id"`
	Valid      bool                       `json:"valid"`
	Created    epochSeconds               `json:"created"`
	LastAccess epochSeconds               `json:"last_access"`
	Data       map[string]json.RawMessage `json:"data"`
}

// bfIgnored is one key of a babelforce write that was not applied.
type bfIgnored struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// epochSeconds is a time as babelforce's session timestamps are: a number of
// seconds since 1970, with the milliseconds as a fraction.
type epochSeconds time.Time

// MarshalJSON writes the seconds with at most three decimals.
func (t epochSeconds) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return json.Marshal(float64(ms) / 1000)
}

func toBFSession(s *session.Session) bfSession {
	data := s.Variables
	if data == nil {
		data = map[string]json.RawMessage{}
	}
	return bfSession{Success: true, Item: bfItemJSON{
		ID: s.CallID, Valid: s.State == session.StateActive,
		Created: epochSeconds(s.CreatedAt), LastAccess: epochSeconds(s.UpdatedAt), Data: data,
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

// bfPutSession is babelforce's "update the user scoped session variables":
// see bfUserKeys for the mapping.
func (h *Handler) bfPutSession(c *gin.Context) {
	body, _ := validatedBody(c)
	vars, err := session.ParseVariables(body)
	if err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "the body must be a JSON object of variables", nil)
		return
	}
	write, ignored := h.bfUserKeys(vars)
	h.bfWrite(c, write, ignored, "")
}

// bfSetCallSession is babelforce's session/set: only app.* keys take effect.
func (h *Handler) bfSetCallSession(c *gin.Context) {
	var req struct {
		Variables map[string]json.RawMessage `json:"variables"`
	}
	if _, err := decodeBody(c, &req); err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "the body must be {\"variables\": {…}}", nil)
		return
	}
	write := make(map[string]json.RawMessage, len(req.Variables))
	var ignored []bfIgnored
	for k, v := range req.Variables {
		switch {
		case session.Namespace(k) != session.NamespaceApp || k == session.NamespaceApp:
			ignored = append(ignored, bfIgnored{k, "session/set applies app.* variables only, as babelforce does; write other keys with PUT /api/v2/sessions/{id}"})
		case h.bfBadName(k, k, &ignored):
		default:
			write[k] = v
		}
	}
	h.bfWrite(c, write, ignored, "/variables")
}

// bfUserKeys maps the keys of a babelforce session PUT onto variables: keys
// in ivr. and app. are taken as they are; keys in call. and sip. are ignored
// (callctx sets them); every other key is a babelforce user key and is
// written as ivr.<key> (customerTier → ivr.customerTier), the namespace
// external systems write. When a body holds both k and ivr.k, ivr.k wins.
func (h *Handler) bfUserKeys(vars map[string]json.RawMessage) (map[string]json.RawMessage, []bfIgnored) {
	write := make(map[string]json.RawMessage, len(vars))
	var ignored []bfIgnored
	for k, v := range vars {
		name := k
		switch ns := session.Namespace(k); {
		case ns == k: // no namespace at all
			name = session.NamespaceIVR + "." + k
		case ns == session.NamespaceIVR || ns == session.NamespaceApp:
		case ns == session.NamespaceCall || ns == session.NamespaceSIP:
			ignored = append(ignored, bfIgnored{k, "the " + ns + ". namespace is read-only: callctx sets it"})
			continue
		default:
			name = session.NamespaceIVR + "." + k
		}
		if _, both := vars[name]; both && name != k {
			ignored = append(ignored, bfIgnored{k, "the body also sets " + name + ", which wins"})
			continue
		}
		if !h.bfBadName(k, name, &ignored) {
			write[name] = v
		}
	}
	return write, ignored
}

// bfBadName reports (and records in ignored, under key) a name no variable
// may have.
func (h *Handler) bfBadName(key, name string, ignored *[]bfIgnored) bool {
	if err := session.CheckName(name, h.svc.Limits().MaxNameLength); err != nil {
		*ignored = append(*ignored, bfIgnored{key, "as " + name + ": " + err.Error()})
		return true
	}
	return false
}

// bfWrite merges write and answers the session with what was ignored. An
// empty write still answers the session as it is (404 for an unknown call).
func (h *Handler) bfWrite(c *gin.Context, write map[string]json.RawMessage, ignored []bfIgnored, varsPointer string) {
	sort.Slice(ignored, func(i, j int) bool { return ignored[i].Key < ignored[j].Key })
	if len(ignored) > 0 {
		keys := make([]string, len(ignored))
		for i, ig := range ignored {
			keys[i] = url.PathEscape(ig.Key)
		}
		c.Header(bfIgnoredHeader, strings.Join(keys, ","))
	}
	var s *session.Session
	if len(write) == 0 {
		var err error
		if s, err = h.svc.Session(c.Request.Context(), c.Param("id")); err != nil {
			h.fail(c, err)
			return
		}
	} else {
		var ok bool
		if s, ok = h.write(c, c.Param("id"), write, 0, varsPointer); !ok {
			return
		}
	}
	if ignored == nil {
		ignored = []bfIgnored{}
	}
	c.JSON(http.StatusOK, bfWritten{bfSession: toBFSession(s), Ignored: ignored})
}
