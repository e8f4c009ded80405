package api

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// StreamLimits bound the event streams (GET /v1/sessions/{callId}/events,
// /v1/events/calls, /v1/stats/events), so that no client, however many
// streams it opens or however slowly it reads, costs the writers or the
// other clients anything. Zero fields take the defaults.
type StreamLimits struct {
	// Max, MaxPerToken and MaxPerCall cap the streams open at once: in all,
	// per token (the actor), and per call for a session's stream. One more
	// is answered 429 with Retry-After.
	Max, MaxPerToken, MaxPerCall int
	// WriteTimeout is how long one write to a stream may take: a client
	// that does not read for that long is dropped (it resumes with
	// Last-Event-ID when it reads again).
	WriteTimeout time.Duration
	// MaxReplay and MaxReplayBytes bound what a resume (Last-Event-ID)
	// replays: at most that many versions and bytes of changes; a client
	// further behind gets a fresh session.snapshot instead.
	MaxReplay, MaxReplayBytes int
}

// Defaults of StreamLimits.
const (
	DefaultMaxStreams         = 5000
	DefaultMaxStreamsPerToken = 1000
	DefaultMaxStreamsPerCall  = 20
	DefaultStreamWriteTimeout = 10 * time.Second
	DefaultMaxReplay          = 500
	DefaultMaxReplayBytes     = 1 << 20
)

// WithDefaults fills zero fields with the defaults.
func (l StreamLimits) WithDefaults() StreamLimits {
	if l.Max <= 0 {
		l.Max = DefaultMaxStreams
	}
	if l.MaxPerToken <= 0 {
		l.MaxPerToken = DefaultMaxStreamsPerToken
	}
	if l.MaxPerCall <= 0 {
		l.MaxPerCall = DefaultMaxStreamsPerCall
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultStreamWriteTimeout
	}
	if l.MaxReplay <= 0 {
		l.MaxReplay = DefaultMaxReplay
	}
	if l.MaxReplayBytes <= 0 {
		l.MaxReplayBytes = DefaultMaxReplayBytes
	}
	return l
}

// retryAfterStream is the Retry-After (seconds) of a stream refused for
// its caps: streams free their slots when their clients leave.
const retryAfterStream = "10"

// streamSlots counts the open streams against StreamLimits.
type streamSlots struct {
	lim StreamLimits

	mu      sync.Mutex
	total   int
	byToken map[string]int
	byCall  map[string]int
}

func newStreamSlots(lim StreamLimits) *streamSlots {
	return &streamSlots{lim: lim, byToken: map[string]int{}, byCall: map[string]int{}}
}

// take counts one more stream of token (about callID, "" for the list and
// stats streams), or says which cap refuses it.
func (s *streamSlots) take(token, callID string) (release func(), refused string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.total >= s.lim.Max:
		return nil, "callctx serves " + strconv.Itoa(s.lim.Max) + " event streams at once, its limit"
	case s.byToken[token] >= s.lim.MaxPerToken:
		return nil, "the token " + strconv.Quote(token) + " has " + strconv.Itoa(s.lim.MaxPerToken) + " event streams open, its limit"
	case callID != "" && s.byCall[callID] >= s.lim.MaxPerCall:
		return nil, "the call " + callID + " has " + strconv.Itoa(s.lim.MaxPerCall) + " event streams open, its limit"
	}
	s.total++
	s.byToken[token]++
	if callID != "" {
		s.byCall[callID]++
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.total--
		if s.byToken[token]--; s.byToken[token] == 0 {
			delete(s.byToken, token)
		}
		if callID != "" {
			if s.byCall[callID]--; s.byCall[callID] == 0 {
				delete(s.byCall, callID)
			}
		}
	}, ""
}

// streamSlot is the route middleware of the event streams: it holds one
// slot while the stream is open, or answers 429.
func (h *Handler) streamSlot(c *gin.Context) {
	release, refused := h.streams.take(h.actor(c), c.Param("callId"))
	if release == nil {
		c.Header("Retry-After", retryAfterStream)
		writeProblem(c, http.StatusTooManyRequests, typeTooMany, refused+"; close a stream or try again later", nil)
		return
	}
	defer release()
	c.Next()
}

// sse writes one client's event stream. Every write must complete within
// the stream write timeout, or the stream ends: a client that stopped
// reading holds no writer, goroutine or buffer beyond that.
type sse struct {
	c       *gin.Context
	rc      *http.ResponseController
	timeout time.Duration
	frame   []byte
}

// streamSendBuffer bounds the kernel's send buffer of a connection that
// carries an event stream (Linux grows it up to 4 MiB otherwise): a client
// that stops reading then blocks the stream's writes after this much, and
// is dropped by the write timeout, instead of having megabytes copied for it.
const streamSendBuffer = 128 << 10

// connKey is the context key of a request's connection (ConnContext).
type connKey struct{}

// ConnContext is for http.Server.ConnContext: it gives the requests their
// connection, for the event streams to bound its send buffer
// (streamSendBuffer), and the client limits its peer, found once per
// connection instead of once per request (Listener, clientOf).
func (h *Handler) ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, h.clients.describe(c))
}

// startSSE answers 200 with the event stream's headers.
func (h *Handler) startSSE(c *gin.Context) *sse {
	if tc, ok := netConn(c).(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(streamSendBuffer)
	}
	s := &sse{c: c, rc: http.NewResponseController(c.Writer), timeout: h.streamLimits.WriteTimeout}
	c.Header("Content-Type", "text/event-stream")
	c.Header("Cache-Control", "no-cache")
	c.Header("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	return s
}

// write writes b within the write timeout; it reports false when the
// client is gone or too slow.
func (s *sse) write(b []byte) bool {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	_, err := s.c.Writer.Write(b)
	return err == nil
}

// flush sends what is buffered within the write timeout.
func (s *sse) flush() bool {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	return s.rc.Flush() == nil
}

// comment writes a comment line (keep-alives, and why a stream ends) and
// flushes it.
func (s *sse) comment(text string) bool {
	return s.write([]byte(": "+text+"\n\n")) && s.flush()
}

// send writes one event (id 0: none); it reports false when the client is
// gone.
func (s *sse) send(event string, id uint64, data any) bool {
	b, err := json.Marshal(data)
	if err != nil {
		return false
	}
	s.frame = appendFrame(s.frame[:0], event, id, b)
	return s.write(s.frame)
}

// appendFrame appends one event to b: its name, its ID (none when 0) and
// data, a compact JSON text, which holds no newline.
func appendFrame(b []byte, event string, id uint64, data []byte) []byte {
	b = appendFrameHead(b, event, id)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// appendFrameHead appends an event's lines up to its data: its name, its
// ID (none when 0) and "data: ". The caller appends the data, a compact
// JSON text, and the blank line that ends the event.
func appendFrameHead(b []byte, event string, id uint64) []byte {
	b = append(b, "event: "...)
	b = append(b, event...)
	if id > 0 {
		b = append(b, "\nid: "...)
		b = strconv.AppendUint(b, id, 10)
	}
	return append(b, "\ndata: "...)
}
