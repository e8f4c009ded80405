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
	Variables map[string]json.RawMessage `json:"variables"`
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
			d := eventData{CallID: e.CallID, Version: e.Version, State: session.StateActive, At: &e.At, Actor: e.Actor, Changes: e.Changes, Variables: e.Variables}
			if e.Type == session.EventCallEnded {
				d.State = session.StateEnded
			}
			if !st.send(string(e.Type), e.Version, d) {
				return
			}
			st.last = e.Version
		}
		c.Writer.Flush()
	}
}

// catchUp sends every version after st.last from history, rebuilding the
// variables at each version by replaying the changes from the first.
func (st *stream) catchUp() bool {
	entries, err := st.h.svc.History(st.c.Request.Context(), st.callID, 0)
	if err != nil {
		st.h.log.Warn("event stream: read history", "call_id", st.callID, "error", err)
		return false
	}
	vars := make(map[string]json.RawMessage)
	for _, e := range entries {
		for name, ch := range e.Changes {
			if ch.New == nil {
				delete(vars, name)
			} else {
				vars[name] = ch.New
			}
		}
		if e.Version <= st.last {
			continue
		}
		typ, state := session.EventSessionUpdated, session.StateActive
		switch {
		case e.Version == 1:
			typ = session.EventCallStarted
		case bytes.Equal(e.Changes["call.state"].New, []byte(`"ended"`)):
			typ, state = session.EventCallEnded, session.StateEnded
		case isTransferOutcome(e.Changes[session.VarTransferStatus].New):
			typ = session.EventTransferStatus
		case e.Changes[session.VarReferTarget].New != nil:
			typ = session.EventCallReferred
		}
		at := e.At
		if !st.send(string(typ), e.Version, eventData{CallID: st.callID, Version: e.Version, State: state, At: &at, Actor: e.Actor, Changes: e.Changes, Variables: vars}) {
			return false
		}
		st.last = e.Version
	}
	st.c.Writer.Flush()
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

// isTransferOutcome reports whether a new sip.transfer.status is a final outcome, which was
// published live as transfer.status, so that a replay names it the same way.
func isTransferOutcome(v json.RawMessage) bool {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return false
	}
	return session.TransferStatus(s).Final()
}
