package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/gin-gonic/gin"
)

// problem is an RFC 9457 problem detail.
type problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   []problemError `json:"errors,omitempty"`
	// Success and Message are babelforce's error envelope, added on the
	// babelforce-compatible routes only.
	Success *bool  `json:"success,omitempty"`
	Message string `json:"message,omitempty"`
	// Error and ErrorDescription are RFC 6749's error response, added on
	// the OAuth2 token endpoint only.
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// problemError points at one offending part of a request body.
type problemError struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

// Problem types. They are URNs: stable identifiers, documented in docs/api.md.
const (
	typeMalformed      = "urn:callctx:problem:malformed-request"
	typeValidation     = "urn:callctx:problem:validation-failed"
	typeNotFound       = "urn:callctx:problem:not-found"
	typeConflict       = "urn:callctx:problem:conflict"
	typePrecondition   = "urn:callctx:problem:precondition-failed"
	typeUnauthorized   = "urn:callctx:problem:unauthorized"
	typeForbidden      = "urn:callctx:problem:forbidden"
	typeTooLarge       = "urn:callctx:problem:payload-too-large"
	typeMediaType      = "urn:callctx:problem:unsupported-media-type"
	typeMethod         = "urn:callctx:problem:method-not-allowed"
	typeUnavailable    = "urn:callctx:problem:unavailable"
	typeGone           = "urn:callctx:problem:gone"
	typeInternal       = "urn:callctx:problem:internal"
	typeStorageFull    = "urn:callctx:problem:storage-full"
	typeTooMany        = "urn:callctx:problem:too-many-requests"
	contentTypeProblem = "application/problem+json"
	contentTypeJSON    = "application/json; charset=utf-8"
)

// codeStatus maps each domain error code to its HTTP status and problem
// type: the one table of the HTTP edge.
var codeStatus = map[session.Code]struct {
	status int
	typ    string
}{
	session.CodeInvalid:            {http.StatusUnprocessableEntity, typeValidation},
	session.CodeNotFound:           {http.StatusNotFound, typeNotFound},
	session.CodeConflict:           {http.StatusConflict, typeConflict},
	session.CodePreconditionFailed: {http.StatusPreconditionFailed, typePrecondition},
	session.CodeForbidden:          {http.StatusForbidden, typeForbidden},
	session.CodeTooLarge:           {http.StatusRequestEntityTooLarge, typeTooLarge},
	session.CodeUnavailable:        {http.StatusServiceUnavailable, typeUnavailable},
	session.CodeStorageFull:        {http.StatusInsufficientStorage, typeStorageFull},
	session.CodeInternal:           {http.StatusInternalServerError, typeInternal},
}

// ctxBabelforce marks a request to a babelforce-compatible route, whose
// problems also carry babelforce's envelope.
const ctxBabelforce = "callctx.babelforce"

// writeProblem sends a problem and stops the handler chain.
func writeProblem(c *gin.Context, status int, typ, detail string, errs []problemError) {
	p := problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail, Instance: c.Request.URL.Path, Errors: errs}
	if c.GetBool(ctxBabelforce) {
		f := false
		p.Success, p.Message = &f, detail
	}
	if c.GetBool(ctxOAuth) {
		p.Error = c.GetString(ctxOAuthError)
		if p.Error == "" {
			p.Error = oauthInvalidRequest
		}
		p.ErrorDescription = detail
	}
	body, err := json.Marshal(p)
	if err != nil {
		body = []byte(`{"type":"` + typeInternal + `","title":"Internal Server Error","status":500}`)
		status = http.StatusInternalServerError
	}
	c.Abort()
	c.Data(status, contentTypeProblem, body)
}

// fail sends the problem for a domain error, logging internal ones.
func (h *Handler) fail(c *gin.Context, err error) { h.failAt(c, err, "") }

// failAt is fail for a request whose variables sit under varsPointer in the
// body (e.g. "/variables"), so that problem pointers point into the body.
func (h *Handler) failAt(c *gin.Context, err error, varsPointer string) {
	h.failWith(c, err, func(f session.FieldError) string {
		ptr := "/" + escapePointer(f.Name)
		if f.Variable {
			ptr = varsPointer + ptr
		}
		return ptr
	})
}

// failWith is fail with pointer saying where in the body each offending
// field sits.
func (h *Handler) failWith(c *gin.Context, err error, pointer func(session.FieldError) string) {
	code := session.ErrorCode(err)
	m, ok := codeStatus[code]
	if !ok {
		m = codeStatus[session.CodeInternal]
	}
	switch code {
	case session.CodeInternal:
		h.log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(), "call_id", callID(c), "error", err)
	case session.CodeUnavailable, session.CodeStorageFull:
		h.storeLog.Failed(err, "method", c.Request.Method, "path", c.FullPath(), "call_id", callID(c))
		c.Header("Retry-After", retryAfterStore)
	}
	var errs []problemError
	for _, f := range session.ErrorFields(err) {
		errs = append(errs, problemError{Pointer: pointer(f), Detail: f.Message})
	}
	writeProblem(c, m.status, m.typ, session.ErrorMessage(err), errs)
}

// retryAfterStore is the Retry-After (seconds) of an answer that the store
// could not take a write or answer a read: short, since a load balancer or
// an SBC with another node to try does better than the client waiting.
const retryAfterStore = "5"

// recovery turns a panic into a 500 problem and a log line, so a bug in one
// request never takes the process down.
func (h *Handler) recovery(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			h.log.Error("panic serving request", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", r, "stack", string(stack()))
			if !c.Writer.Written() {
				writeProblem(c, http.StatusInternalServerError, typeInternal, "internal error", nil)
			}
		}
	}()
	c.Next()
}

// accessLog logs one line per request.
func (h *Handler) accessLog(c *gin.Context, route string, took time.Duration) {
	h.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "http request",
		slog.String("method", c.Request.Method),
		slog.String("route", route), // as in openapi.yaml and the metrics
		slog.String("path", loggedPath(c)),
		slog.Int("status", c.Writer.Status()),
		slog.Duration("duration", took),
		slog.String("call_id", callID(c)),
		slog.String("actor", h.actor(c)),
	)
}

// ctxSecretPath marks a request whose path holds a secret (a context link's token).
const ctxSecretPath = "callctx.secretPath"

// loggedPath is the request's path for the log: its route when the path holds a secret.
func loggedPath(c *gin.Context) string {
	if c.GetBool(ctxSecretPath) {
		return openapiPath(c.FullPath())
	}
	return c.Request.URL.Path
}

// ctxCallID holds the ID of a call a request created, for the access log.
const ctxCallID = "callctx.callId"

// callID returns the call ID a request is about: the one in its path, or
// the one it created.
func callID(c *gin.Context) string {
	if id := c.GetString(ctxCallID); id != "" {
		return id
	}
	if id := c.Param("callId"); id != "" {
		return id
	}
	return c.Param("id")
}
