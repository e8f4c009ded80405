// Package api is callctx's HTTP interface: a gin router whose routes,
// request bodies and scopes come from openapi.yaml, answering JSON and
// application/problem+json.
package api

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/outage"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/stats"
	"github.com/callctx/callctx/token"
	"github.com/gin-gonic/gin"
)

// Config holds what the HTTP API needs.
type Config struct {
	Service *session.Service
	// Flows runs call flows and serves triggers and flows; nil: the
	// server has none (the routes answer empty lists and 404).
	Flows  *flow.Engine
	Spec   []byte  // openapi.yaml
	Tokens []Token // none: the API is open (the command allows that on loopback only)
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
	// KeepAlive is how often an idle event stream gets a comment line;
	// DefaultKeepAlive when 0.
	KeepAlive time.Duration
	// AccessLog logs every request at info level.
	AccessLog bool
	// Transferer moves calls to another party (the SIP bridge); nil when the bridge is off,
	// and then POST /v1/calls/{id}/transfer answers 503.
	Transferer session.Transferer
	// Metrics, when set, hears of every answered request and serves
	// GET /metrics; without it that route answers 404.
	Metrics Metrics
	// Keys sign and verify the access and refresh tokens of POST
	// /oauth/token; nil: a key generated at start, so that tokens are valid
	// on this process only.
	Keys *token.Keys
	// Links mints context links (POST /v1/calls/{id}/context-link); nil: that route
	// answers 503. Links of any Linker signed with Keys are served either way.
	Links *token.Linker
	// ContextGrace is how long a call's context links keep working after it ended;
	// DefaultContextGrace when 0.
	ContextGrace time.Duration
	// SIPTargets, when set, returns the state of the SIP targets the bridge
	// watches, which /readyz shows (the SIP bridge's keep-alive).
	SIPTargets func() []SIPTarget
	// AccessTokenTTL and RefreshTokenTTL are the lifetimes of the tokens
	// POST /oauth/token issues; DefaultAccessTokenTTL and
	// DefaultRefreshTokenTTL when 0.
	AccessTokenTTL, RefreshTokenTTL time.Duration
	// Streams bounds the event streams: how many, how slow a reader may
	// be, how much a resume replays. Zero fields take the defaults.
	Streams StreamLimits
	// Clients bounds what one client (a source address) may ask: requests
	// per second, connections, failed authentications. Zero fields are no
	// limit.
	Clients ClientLimits
	// Board keeps the live call list and the wallboard's counts
	// (GET /v1/stats, the calls and stats event streams); without it those
	// routes answer 404.
	Board *stats.Board
}

// Metrics is what the API needs from a metrics registry. Package metrics
// implements it; the API itself stays free of Prometheus.
type Metrics interface {
	// ServeHTTP serves the scrape endpoint.
	http.Handler
	// ObserveRequest records one answered request. route is the OpenAPI
	// path of the matched route, "" when none matched; stream marks an
	// event stream, whose took is how long it was watched.
	ObserveRequest(method, route string, status int, took time.Duration, stream bool)
}

// Defaults for Config.
const (
	DefaultMaxBodyBytes = 256 << 10
	DefaultKeepAlive    = 15 * time.Second
)

// Handler serves the API.
type Handler struct {
	engine                *gin.Engine
	svc                   *session.Service
	flows                 *flow.Engine
	spec                  []byte
	tokens                map[[32]byte]*Token // by the SHA-256 of their static secret
	named                 map[string]*Token   // every token, by name
	open                  bool                // no tokens: every request passes as anonymous
	keys                  *token.Keys
	sipTargets            func() []SIPTarget
	links                 *token.Linker
	contextGrace          time.Duration
	usedLinks             usedLinks
	accessTTL, refreshTTL time.Duration
	log                   *slog.Logger
	maxBody               int64
	keepAlive             time.Duration
	metrics               Metrics
	routes                map[string]string // gin path → OpenAPI path, for metrics labels
	console               map[string]consoleFile

	closeOnce sync.Once
	closing   chan struct{} // closed by Close: event streams end
	storeLog  *outage.Log   // failures of the store: a line per change of state, not per request

	streamLimits StreamLimits
	streams      *streamSlots // the open event streams, against streamLimits
	clients      *clients     // the clients, against Config.Clients

	transferer session.Transferer // nil without the SIP bridge
	draw       drawer             // flow diagrams
	board      *stats.Board       // nil: no wallboard
}

// Route is one method and path the handler serves, in OpenAPI's syntax.
type Route struct {
	Method string
	Path   string
}

var nowFunc = time.Now

// NewHandler builds the API. It fails when the routes in code and the
// operations in the spec differ, so the two cannot drift apart.
//
// It puts gin in release mode, whose only effect is that gin prints no debug
// output (route tables, warnings) to standard output. gin keeps its mode in
// the process, not in an engine, so this is the one place that sets it:
// when a handler is built, not when the package is imported.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Service == nil {
		return nil, errors.New("api: no session service")
	}
	gin.SetMode(gin.ReleaseMode)
	sp, err := parseSpec(cfg.Spec)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		engine:     gin.New(),
		svc:        cfg.Service,
		flows:      cfg.Flows,
		spec:       cfg.Spec,
		tokens:     make(map[[32]byte]*Token, len(cfg.Tokens)),
		named:      make(map[string]*Token, len(cfg.Tokens)),
		open:       len(cfg.Tokens) == 0,
		keys:       cfg.Keys,
		sipTargets: cfg.SIPTargets,
		links:      cfg.Links, contextGrace: cmp.Or(cfg.ContextGrace, DefaultContextGrace),
		accessTTL: cmp.Or(cfg.AccessTokenTTL, DefaultAccessTokenTTL), refreshTTL: cmp.Or(cfg.RefreshTokenTTL, DefaultRefreshTokenTTL),
		log:       cfg.Logger,
		maxBody:   cfg.MaxBodyBytes,
		keepAlive: cfg.KeepAlive,
		metrics:   cfg.Metrics,
		routes:    make(map[string]string),
		closing:   make(chan struct{}),
	}
	h.transferer = cfg.Transferer
	h.board = cfg.Board
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.storeLog = outage.New(h.log, "the session store", 0)
	h.streamLimits = cfg.Streams.WithDefaults()
	h.streams = newStreamSlots(h.streamLimits)
	h.clients = newClients(cfg.Clients)
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.keepAlive <= 0 {
		h.keepAlive = DefaultKeepAlive
	}
	if h.console, err = loadConsole(); err != nil {
		return nil, fmt.Errorf("api: load the console: %w", err)
	}
	if h.keys == nil {
		h.keys = token.GenerateKeys()
	}
	for i := range cfg.Tokens {
		t := cfg.Tokens[i]
		if t.hasSecret() {
			h.tokens[t.SHA256] = &t
		}
		h.named[t.Name] = &t
	}

	h.setUpEngine(cfg.AccessLog)
	if err := h.handleRoutes(sp); err != nil {
		return nil, err
	}
	return h, nil
}

// setUpEngine sets gin's engine up: its options, the middleware every
// request passes, and the answers for no route and no method.
func (h *Handler) setUpEngine(accessLog bool) {
	e := h.engine
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.ContextWithFallback = true
	if accessLog || h.metrics != nil {
		e.Use(h.observe(accessLog))
	}
	e.Use(h.recovery)
	e.NoRoute(h.limitRequests, func(c *gin.Context) {
		writeProblem(c, http.StatusNotFound, typeNotFound, "there is no route "+c.Request.Method+" "+c.Request.URL.Path, nil)
	})
	e.NoMethod(h.limitRequests, func(c *gin.Context) {
		writeProblem(c, http.StatusMethodNotAllowed, typeMethod, "the route "+c.Request.URL.Path+" does not accept "+c.Request.Method, nil)
	})
}

// handleRoutes registers every route of routeTable with its chain, and
// fails when a route is not in the spec or the spec has one the table
// lacks.
func (h *Handler) handleRoutes(sp *spec) error {
	seen := make(map[string]bool)
	for _, r := range h.routeTable() {
		key := r.method + " " + r.path
		op := sp.ops[key]
		if op == nil {
			return fmt.Errorf("api: route %s is not in openapi.yaml", key)
		}
		seen[key] = true
		h.engine.Handle(r.method, ginPath(r.path), h.chain(r, op)...)
		h.routes[ginPath(r.path)] = r.path
	}
	var missing []string
	for key := range sp.ops {
		if !seen[key] {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("api: openapi.yaml describes routes the server lacks: %s", strings.Join(missing, ", "))
	}
	return nil
}

// chain is the handlers of route r, operation op of the spec: marks,
// request limits, authentication, body validation and stream slots as the
// route needs them, then its handler.
func (h *Handler) chain(r route, op *operation) []gin.HandlerFunc {
	chain := make([]gin.HandlerFunc, 0, 8)
	if r.babelforce {
		chain = append(chain, func(c *gin.Context) { c.Set(ctxBabelforce, true) })
	}
	if r.oauth {
		chain = append(chain, func(c *gin.Context) { c.Set(ctxOAuth, true) })
	}
	chain = append(chain, h.limitRequests, uniqueQuery(r.repeatable))
	if r.secretPath {
		chain = append(chain, func(c *gin.Context) { c.Set(ctxSecretPath, true) })
	}
	if op.Scope != "" {
		chain = append(chain, h.authenticate(op.Scope, r.queryToken))
	}
	if op.Body != nil {
		chain = append(chain, h.validateBody(op))
	}
	if r.stream {
		chain = append(chain, h.streamSlot)
	}
	return append(chain, r.handle)
}

// route is one entry of the route table.
type route struct {
	method, path string // path in OpenAPI syntax, as in the spec
	handle       gin.HandlerFunc
	babelforce   bool // answer errors in babelforce's envelope too; accept its X-Auth-Access-* headers
	oauth        bool // answer errors with RFC 6749's error fields too
	secretPath   bool // the path holds a secret: the access log shows the route instead
	queryToken   bool // accept the token as ?access_token= (EventSource cannot set headers)
	stream       bool // an event stream: it holds a slot of StreamLimits while open
	// repeatable names the query parameters that may be given more than once (list
	// filters); nil: none may.
	repeatable func(name string) bool
}

// routeTable lists every route. Scopes and body schemas come from the spec.
func (h *Handler) routeTable() []route {
	return []route{
		{method: "POST", path: "/v1/calls", handle: h.createCall},
		{method: "GET", path: "/v1/calls", handle: h.listCalls},
		{method: "GET", path: "/v1/calls/{id}", handle: h.getCall},
		{method: "POST", path: "/v1/calls/{id}/end", handle: h.endCall},
		{method: "POST", path: "/v1/calls/{id}/transfer", handle: h.transferCall},
		{method: "POST", path: "/v1/calls/{id}/flow/next", handle: h.flowNext},
		{method: "GET", path: "/v1/calls/{id}/flow", handle: h.getCallFlow},
		{method: "GET", path: "/v1/calls/{id}/automations", handle: h.getCallAutomations},
		{method: "GET", path: "/v1/triggers", handle: h.listTriggers},
		{method: "GET", path: "/v1/triggers/{name}", handle: h.getTrigger},
		{method: "POST", path: "/v1/triggers/{name}/evaluate", handle: h.evaluateTrigger},
		{method: "GET", path: "/v1/calendars", handle: h.listCalendars},
		{method: "GET", path: "/v1/calendars/{name}", handle: h.getCalendar},
		{method: "GET", path: "/v1/routing", handle: h.getRouting},
		{method: "GET", path: "/v1/routing/graph", handle: h.getRoutingGraph},
		{method: "GET", path: "/v1/flows", handle: h.listFlows},
		{method: "GET", path: "/v1/flows/{name}", handle: h.getFlow},
		{method: "GET", path: "/v1/flows/{name}/graph", handle: h.getFlowGraph},
		{method: "GET", path: "/v1/flows/{name}/versions", handle: h.getFlowVersions},
		{method: "GET", path: "/v1/sessions/{callId}", handle: h.getSession},
		{method: "POST", path: "/v1/sessions/{callId}", handle: h.writeSession},
		{method: "PATCH", path: "/v1/sessions/{callId}", handle: h.writeSession},
		{method: "GET", path: "/v1/sessions/{callId}/variables/{name}", handle: h.getVariable},
		{method: "GET", path: "/v1/sessions/{callId}/history", handle: h.getHistory},
		{method: "GET", path: "/v1/sessions/{callId}/events", handle: h.streamEvents, queryToken: true, stream: true},
		{method: "GET", path: "/v1/context/{token}", handle: h.getContext, secretPath: true},
		{method: "POST", path: "/v1/calls/{id}/context-link", handle: h.createContextLink},
		{method: "GET", path: "/api/v2/sessions/{id}", handle: h.bfGetSession, babelforce: true},
		{method: "PUT", path: "/api/v2/sessions/{id}", handle: h.bfPutSession, babelforce: true},
		{method: "PUT", path: "/api/v2/calls/{id}/session/set", handle: h.bfSetCallSession, babelforce: true},
		{method: "GET", path: "/api/v2/calls/reporting", handle: h.bfListCalls, babelforce: true, repeatable: bfListFilter},
		{method: "GET", path: "/api/v2/calls/{id}", handle: h.bfGetCall, babelforce: true},
		{method: "POST", path: "/api/v2/calls/{id}/hangup", handle: h.bfHangupCall, babelforce: true},
		{method: "POST", path: "/oauth/token", handle: h.oauthToken, oauth: true},
		{method: "GET", path: "/v1/stats", handle: h.getStats},
		{method: "GET", path: "/v1/stats/events", handle: h.streamStats, queryToken: true, stream: true},
		// Not /v1/calls/events: "events" is a valid call ID.
		{method: "GET", path: "/v1/events/calls", handle: h.streamCalls, queryToken: true, stream: true},
		{method: "GET", path: "/healthz", handle: h.healthz},
		{method: "GET", path: "/readyz", handle: h.readyz},
		{method: "GET", path: "/openapi.yaml", handle: h.openAPI},
		// The integrator's kit: metrics and the live console.
		{method: "GET", path: "/metrics", handle: h.serveMetrics},
		{method: "GET", path: "/debug/pprof/{profile}", handle: h.serveProfile},
		{method: "GET", path: "/console", handle: h.consolePage},
		{method: "GET", path: "/console/{asset}", handle: h.consoleAsset},
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.engine.ServeHTTP(w, r) }

// Routes returns every method and path the router serves, in OpenAPI's
// syntax, read back from the router itself.
func (h *Handler) Routes() []Route {
	var out []Route
	for _, r := range h.engine.Routes() {
		out = append(out, Route{Method: r.Method, Path: openapiPath(r.Path)})
	}
	return out
}

// Close ends the open event streams, so that a graceful shutdown does not
// wait for clients that never hang up. It is safe to call more than once.
func (h *Handler) Close() {
	h.closeOnce.Do(func() {
		close(h.closing)
		h.storeLog.Close()
	})
}

// uniqueQuery refuses a query string that gives a parameter twice
// (limit=10&limit=abc) or cannot be decoded: which value would win is an
// accident of the parser, and a client that sends two has a bug it should
// hear about. Only the parameters repeatable names may repeat.
func uniqueQuery(repeatable func(string) bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		raw := c.Request.URL.RawQuery
		if raw == "" {
			return
		}
		q, err := url.ParseQuery(raw)
		if err != nil {
			writeProblem(c, http.StatusBadRequest, typeMalformed, "the query string cannot be decoded (percent-encode it)", nil)
			return
		}
		for name, vs := range q {
			if len(vs) > 1 && (repeatable == nil || !repeatable(name)) {
				writeProblem(c, http.StatusBadRequest, typeMalformed, "the query parameter "+strconv.Quote(name)+" is given more than once; give it once", nil)
				return
			}
		}
	}
}

// validBody is a request body that validateBody has read and checked. It
// takes the place of the request's Body, so that a handler takes the bytes
// (validatedBody) instead of reading them again; read, it reads them again.
// It rides on the request rather than in gin's per-request map, which a
// write would allocate for this one value.
type validBody struct {
	raw []byte
	off int
}

func (b *validBody) Read(p []byte) (int, error) {
	if b.off >= len(b.raw) {
		return 0, io.EOF
	}
	n := copy(p, b.raw[b.off:])
	b.off += n
	return n, nil
}

func (b *validBody) Close() error { return nil }

// validatedBody returns the body validateBody read and checked, or false when
// an optional body was absent.
func validatedBody(c *gin.Context) ([]byte, bool) {
	b, ok := c.Request.Body.(*validBody)
	if !ok {
		return nil, false
	}
	return b.raw, true
}

// exactBodyBytes is the largest declared body read in one allocation of its
// length before it arrives; a larger one grows with what arrives, so that a
// client declaring large bodies and sending them slowly holds no more
// memory than it has sent.
const exactBodyBytes = 16 << 10

// readBody reads the request body within limit: in one allocation of its
// declared length when that is small, through a MaxBytesReader otherwise
// (which also closes the connection of a body past the limit).
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	if n := c.Request.ContentLength; n >= 0 && n <= min(limit, exactBodyBytes) {
		body := make([]byte, n)
		if _, err := io.ReadFull(c.Request.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
}

// validateBody reads the request body within the size limit, checks its
// media type and validates it against the operation's schema. Handlers
// take the body with validatedBody, which finds none when an optional body
// was absent.
func (h *Handler) validateBody(op *operation) gin.HandlerFunc {
	return func(c *gin.Context) {
		body, err := readBody(c, h.maxBody)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeProblem(c, http.StatusRequestEntityTooLarge, typeTooLarge, fmt.Sprintf("the body is larger than %d bytes", h.maxBody), nil)
				return
			}
			writeProblem(c, http.StatusBadRequest, typeMalformed, "the body could not be read", nil)
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			if op.Body.Required {
				writeProblem(c, http.StatusBadRequest, typeMalformed, "the request needs a body ("+strings.Join(op.Body.MediaTypes(), " or ")+")", nil)
			}
			return
		}
		ct := c.GetHeader("Content-Type")
		mt, err := ct, error(nil)
		if op.Body.Media[ct] == nil { // not given exactly as the spec names it: parse it
			mt, _, err = mime.ParseMediaType(ct)
		}
		schema := op.Body.Media[mt]
		if err != nil || schema == nil {
			if ct == "" {
				ct = "no Content-Type"
			}
			writeProblem(c, http.StatusUnsupportedMediaType, typeMediaType,
				"send the body as "+strings.Join(op.Body.MediaTypes(), " or ")+", not "+ct, nil)
			return
		}
		if schema.anyObject && mt != formMediaType && json.Valid(body) {
			if body = bytes.TrimSpace(body); body[0] != '{' {
				writeProblem(c, http.StatusUnprocessableEntity, typeValidation, "the body does not match the "+op.ID+" schema",
					[]problemError{{Pointer: "", Detail: "expected object, but got " + jsonKind(body[0])}})
				return
			}
			c.Request.Body = &validBody{raw: body}
			return
		}
		var v any
		if mt == formMediaType {
			form, detail := formObject(body)
			if detail != "" {
				writeProblem(c, http.StatusBadRequest, typeMalformed, detail, nil)
				return
			}
			v = form
			if body, err = json.Marshal(form); err != nil {
				writeProblem(c, http.StatusBadRequest, typeMalformed, "the form could not be read", nil)
				return
			}
		} else {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				writeProblem(c, http.StatusBadRequest, typeMalformed, "the body is not valid JSON: "+jsonErrorText(err), nil)
				return
			}
			if dec.More() {
				writeProblem(c, http.StatusBadRequest, typeMalformed, "the body holds more than one JSON value", nil)
				return
			}
		}
		if err := schema.Validate(v); err != nil {
			writeProblem(c, http.StatusUnprocessableEntity, typeValidation, "the body does not match the "+op.ID+" schema", fieldErrors(err))
			return
		}
		c.Request.Body = &validBody{raw: body}
	}
}

// formMediaType is the media type of HTML forms, which OAuth2 token
// requests use (RFC 6749 §4.3.2).
const formMediaType = "application/x-www-form-urlencoded"

// formObject reads a form body as a JSON object of strings, for validation
// against the operation's schema and decoding like a JSON body. A parameter
// given twice is refused, as RFC 6749 §3.2 asks.
func formObject(body []byte) (map[string]any, string) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, "the form is not valid application/x-www-form-urlencoded"
	}
	out := make(map[string]any, len(vals))
	for k, vs := range vals {
		if len(vs) > 1 {
			return nil, "the form gives " + k + " more than once"
		}
		out[k] = vs[0]
	}
	return out, ""
}

// jsonKind names the JSON type of a value by its first byte, as the
// schema validator does in its messages.
func jsonKind(first byte) string {
	switch first {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// jsonErrorText describes a JSON syntax error without echoing Go types.
func jsonErrorText(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s (at byte %d)", syn.Error(), syn.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// decodeBody decodes the validated body into v; it reports whether there
// was a body.
func decodeBody(c *gin.Context, v any) (bool, error) {
	raw, ok := validatedBody(c)
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

func stack() []byte { return debug.Stack() }
