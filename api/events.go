package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/gin-gonic/gin"
)

// Event names on the stream, beside those of session.EventType.
const eventSnapshot = "session.snapshot"

// eventData is the data: line of a stream event.
type eventData struct {
	CallID    string                     `json:"callId"`
	Version   uint64                     `json:"version"`
	State     session.State              `json:"state"`
	At        *time.Time                 `json:"at,omitempty"`
	Actor     string                     `json:"actor,omitempty"`
	Changes   map[string]session.Change  `json:"changes,omitempty"`
	Variables map[string]json.RawMessage `json:"variables,omitempty"` // left out of replayed events
}

// stream writes one client's event stream. Event IDs are session versions:
// every version is sent exactly once and in order, whether it comes live
// from the feed or is replayed from history after a gap or a resume.
type stream struct {
	h      *Handler
	c      *gin.Context
	callID string
	last   uint64 // the last version sent
	ended  bool   // call.ended has been sent
}

func (h *Handler) streamEvents(c *gin.Context) {
	ctx := c.Request.Context()
	st := &stream{h: h, c: c, callID: c.Param("callId")}
	resume := false
	s := c.GetHeader("Last-Event-ID")
	if s == "" {
		s = c.Query("lastEventId")
	}
	if s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeProblem(c, http.StatusBadRequest, typeMalformed, "Last-Event-ID must be a session version from this stream", nil)
			return
		}
		st.last, resume = n, true
	}
	// Subscribe before reading the session, so no write falls in between.
	sub := h.svc.Subscribe(st.callID)
	defer func() { sub.Close() }()
	sess, err := h.svc.Session(ctx, st.callID)
	if err != nil {
		h.fail(c, err)
		return
	}
	if resume && sess.State == session.StateEnded && st.last >= sess.Version {
		c.Status(http.StatusNoContent) // EventSource stops reconnecting on 204
		return
	}
	// The server's write timeout must not cut a long-lived stream.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	c.Header("Content-Type", "text/event-stream")
	c.Header("Cache-Control", "no-cache")
	c.Header("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	if resume {
		if !st.catchUp() {
			return
		}
	} else {
		if !st.send(eventSnapshot, sess.Version, eventData{CallID: sess.CallID, Version: sess.Version, State: sess.State, Variables: sess.Variables}) {
			return
		}
		st.last = sess.Version
		if sess.State == session.StateEnded {
			st.send(string(session.EventCallEnded), sess.Version, eventData{CallID: sess.CallID, Version: sess.Version, State: sess.State, Variables: sess.Variables})
			return
		}
	}
	c.Writer.Flush()

	keepAlive := time.NewTicker(h.keepAlive)
	defer keepAlive.Stop()
	for !st.ended {
		select {
		case <-ctx.Done():
			return
		case <-h.closing:
			return
		case <-keepAlive.C:
			if _, err := c.Writer.WriteString(": keep-alive\n\n"); err != nil {
				return
			}
			c.Writer.Flush()
		case e, ok := <-sub.Events():
			if !ok {
				if !sub.Lagged() {
					return
				}
				// The reader fell behind and was dropped: subscribe again and
				// fill what was missed from history.
				sub = h.svc.Subscribe(st.callID)
				if !st.catchUp() {
					return
				}
				continue
			}
			switch {
			case e.Version <= st.last:
				continue // sent already, from history
			case e.Version > st.last+1:
				if !st.catchUp() { // an earlier version's event is still on its way
					return
				}
				continue
			}
			if !st.sendEvent(&e) {
				return
			}
		}
		c.Writer.Flush()
	}
}

// catchUp sends every version after st.last as the session replays it:
// each version's changes, without the variables.
func (st *stream) catchUp() bool {
	events, err := st.h.svc.Replay(st.c.Request.Context(), st.callID, st.last, 0)
	if err != nil {
		st.h.log.Warn("event stream: replay", "call_id", st.callID, "error", err)
		return false
	}
	for i := range events {
		if !st.sendEvent(&events[i]) {
			return false
		}
	}
	st.c.Writer.Flush()
	return true
}

// sendEvent sends a live or replayed event and moves st.last on.
func (st *stream) sendEvent(e *session.Event) bool {
	d := eventData{CallID: e.CallID, Version: e.Version, State: session.StateActive, At: &e.At, Actor: e.Actor, Changes: e.Changes, Variables: e.Variables}
	if e.Type == session.EventCallEnded {
		d.State = session.StateEnded
	}
	if !st.send(string(e.Type), e.Version, d) {
		return false
	}
	st.last = e.Version
	return true
}

// send writes one event; it reports false when the client is gone.
func (st *stream) send(event string, id uint64, data eventData) bool {
	b, err := json.Marshal(data)
	if err != nil {
		st.h.log.Error("event stream: encode event", "call_id", st.callID, "error", err)
		return false
	}
	var buf bytes.Buffer
	buf.Grow(len(b) + len(event) + 32)
	buf.WriteString("event: ")
	buf.WriteString(event)
	buf.WriteString("\nid: ")
	buf.WriteString(strconv.FormatUint(id, 10))
	buf.WriteString("\ndata: ")
	buf.Write(b) // compact JSON holds no newline
	buf.WriteString("\n\n")
	if _, err := st.c.Writer.Write(buf.Bytes()); err != nil {
		return false
	}
	if event == string(session.EventCallEnded) {
		st.ended = true
	}
	return true
}
