package api

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
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

// stream writes one client's session event stream. Event IDs are session
// versions: every version is sent at most once and in order, live from the
// feed or replayed from history after a gap or a resume; a client too far
// behind gets a fresh snapshot instead of a long replay.
type stream struct {
	h      *Handler
	c      *gin.Context
	out    *sse
	callID string
	last   uint64 // the last version sent
	ended  bool   // call.ended has been sent
}

func (h *Handler) streamEvents(c *gin.Context) {
	ctx := c.Request.Context()
	st := &stream{h: h, c: c, callID: c.Param("callId")}
	last, resume, ok := lastEventID(c)
	if !ok {
		return
	}
	// Subscribe before reading the session, so no write falls in between.
	sub := h.svc.Subscribe(st.callID)
	defer sub.Close()
	sess, err := h.svc.Session(ctx, st.callID)
	if err != nil {
		h.fail(c, err)
		return
	}
	if resume && sess.State == session.StateEnded && last >= sess.Version {
		c.Status(http.StatusNoContent) // EventSource stops reconnecting on 204
		return
	}
	st.out = h.startSSE(c)
	switch {
	case resume && last <= sess.Version && sess.Version-last <= uint64(h.streamLimits.MaxReplay):
		st.last = last
		if !st.catchUp() {
			return
		}
		if sess.State == session.StateEnded && !st.ended && st.last == sess.Version {
			// A call created ended (a redirected INVITE) has one version, call.started.
			st.sendSnapshotEnd(sess)
		}
	default: // a new stream, or a client too far behind (or ahead) to replay to
		if !st.snapshot(sess) {
			return
		}
	}
	if st.ended || !st.out.flush() {
		return
	}

	st.follow(ctx, sub)
}

// follow sends the call's events as sub delivers them, with keep-alives in
// between, until the call ends, the client goes or the server closes.
func (st *stream) follow(ctx context.Context, sub *session.Subscription) {
	keepAlive := time.NewTicker(st.h.keepAlive)
	defer keepAlive.Stop()
	for !st.ended {
		select {
		case <-ctx.Done():
			return
		case <-st.h.closing:
			return
		case <-keepAlive.C:
			if !st.out.comment("keep-alive") {
				return
			}
			continue
		case e, ok := <-sub.Events():
			if !ok {
				if sub.Lagged() {
					// The client read too slowly for the writes: it is dropped,
					// and resumes after the last id it got when it reconnects.
					st.out.comment("dropped: the client fell behind; reconnect with Last-Event-ID " + strconv.FormatUint(st.last, 10) + " to resume")
				}
				return
			}
			switch {
			case e.Version <= st.last:
				continue // sent already, from history
			case e.Version > st.last+1:
				if !st.catchUp() { // an earlier version's event is still on its way
					return
				}
			default:
				if !st.out.write(e.Encoded(eventFrame)) {
					return
				}
				st.last = e.Version
				st.ended = e.Type == session.EventCallEnded
			}
		}
		if !st.out.flush() {
			return
		}
	}
}

// lastEventID reads where a client resumes: the Last-Event-ID header, or
// the lastEventId query parameter for clients that cannot set headers.
func lastEventID(c *gin.Context) (last uint64, resume, ok bool) {
	s := c.GetHeader("Last-Event-ID")
	if s == "" {
		s = c.Query("lastEventId")
	}
	if s == "" {
		return 0, false, true
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "Last-Event-ID must be a session version from this stream", nil)
		return 0, false, false
	}
	return n, true, true
}

// eventFrame is the stream event of e: a live one with the session's
// variables after it, encoded once for every stream that sends it
// (session.Event.Encoded); a replayed one with its changes only. Its data
// is written by hand, as the stores write sessions: the values are compact
// JSON checked when written, and encoding/json would check them again.
func eventFrame(e *session.Event) []byte {
	b := make([]byte, 0, 256+eventSize(e))
	b = appendFrameHead(b, string(e.Type), e.Version)
	b = append(b, `{"callId":`...)
	b = session.AppendJSONString(b, e.CallID)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, e.Version, 10)
	state := session.StateActive
	if e.Type == session.EventCallEnded {
		state = session.StateEnded
	}
	b = append(b, `,"state":"`...)
	b = append(b, state...)
	b = append(b, `","at":"`...)
	b = e.At.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if e.Actor != "" {
		b = append(b, `,"actor":`...)
		b = session.AppendJSONString(b, e.Actor)
	}
	if len(e.Changes) > 0 {
		b = append(b, `,"changes":{`...)
		for i, name := range slices.Sorted(maps.Keys(e.Changes)) {
			if i > 0 {
				b = append(b, ',')
			}
			c := e.Changes[name]
			b = session.AppendJSONString(b, name)
			b = append(b, `:{"old":`...)
			b = appendRaw(b, c.Old)
			b = append(b, `,"new":`...)
			b = appendRaw(b, c.New)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	if e.Variables != nil {
		b = append(b, `,"variables":{`...)
		for i, name := range slices.Sorted(maps.Keys(e.Variables)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = session.AppendJSONString(b, name)
			b = append(b, ':')
			b = append(b, e.Variables[name]...)
		}
		b = append(b, '}')
	}
	return append(b, "}\n\n"...)
}

// eventSize estimates the bytes of e's values, to size its frame.
func eventSize(e *session.Event) int {
	n := 0
	for name, c := range e.Changes {
		n += len(name) + len(c.Old) + len(c.New) + 24
	}
	for name, v := range e.Variables {
		n += len(name) + len(v) + 4
	}
	return n
}

func appendRaw(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return append(b, v...)
}

// catchUp sends the versions after st.last as the session replays them,
// each with its changes: at most MaxReplay versions and MaxReplayBytes;
// when the client is further behind, a fresh snapshot instead.
func (st *stream) catchUp() bool {
	lim := st.h.streamLimits
	events, err := st.h.svc.Replay(st.c.Request.Context(), st.callID, st.last, lim.MaxReplay+1)
	if err != nil {
		st.h.log.Warn("event stream: replay", "call_id", st.callID, "error", err)
		return false
	}
	if len(events) > lim.MaxReplay {
		return st.freshSnapshot()
	}
	sent := 0
	for i := range events {
		frame := eventFrame(&events[i])
		if sent += len(frame); sent > lim.MaxReplayBytes {
			return st.freshSnapshot()
		}
		if !st.out.write(frame) {
			return false
		}
		st.last = events[i].Version
		if events[i].Type == session.EventCallEnded {
			st.ended = true
			break
		}
	}
	return true
}

// freshSnapshot reads the session and sends it as a snapshot.
func (st *stream) freshSnapshot() bool {
	sess, err := st.h.svc.Session(st.c.Request.Context(), st.callID)
	if err != nil {
		st.h.log.Warn("event stream: read session", "call_id", st.callID, "error", err)
		return false
	}
	return st.snapshot(sess)
}

// snapshot sends the whole session as session.snapshot (the session as
// GET /v1/sessions/{callId} answers it), and call.ended after it when the
// call has ended.
func (st *stream) snapshot(sess *session.Session) bool {
	frame := appendFrame(make([]byte, 0, 320+sess.Size()), eventSnapshot, sess.Version, sess.AppendJSON(make([]byte, 0, 256+sess.Size())))
	if !st.out.write(frame) {
		return false
	}
	st.last = sess.Version
	if sess.State == session.StateEnded {
		return st.sendSnapshotEnd(sess)
	}
	return true
}

// sendSnapshotEnd sends call.ended for an ended session read whole, which
// ends the stream.
func (st *stream) sendSnapshotEnd(sess *session.Session) bool {
	st.ended = true
	return st.out.send(string(session.EventCallEnded), sess.Version, eventData{CallID: sess.CallID, Version: sess.Version, State: sess.State, Variables: sess.Variables})
}
