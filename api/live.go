package api

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/callctx/callctx/stats"
	"github.com/gin-gonic/gin"
)

// The wallboard and the console's call list: GET /v1/stats and two event
// streams that follow the board (package stats) as it changes. Both streams
// send state, not events: a reader that falls behind gets the state as it
// is now, never a backlog.

// Pacing of the live streams: changes are gathered for a moment, so that a
// burst of calls makes one event rather than hundreds.
const (
	callsEvery = 250 * time.Millisecond
	statsEvery = time.Second
	// callsChunk is the most calls one calls.upsert event carries.
	callsChunk = 500
)

// needBoard answers 404 when the server keeps no board, and reports
// whether it keeps one.
func (h *Handler) needBoard(c *gin.Context) bool {
	if h.board == nil {
		writeProblem(c, http.StatusNotFound, typeNotFound, "the wallboard is not enabled on this server", nil)
	}
	return h.board != nil
}

// window reads the window query parameter, 1h by default; it answers 400
// and returns false when it is malformed.
func window(c *gin.Context) (time.Duration, bool) {
	w, err := stats.ParseWindow(c.DefaultQuery("window", "1h"))
	if err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, err.Error(), nil)
		return 0, false
	}
	return w, true
}

// statsJSON is the wallboard's report with the SIP targets the bridge
// watches, as /readyz shows them (none without the bridge).
type statsJSON struct {
	*stats.Report
	Targets []SIPTarget `json:"targets,omitempty"`
}

func (h *Handler) report(w time.Duration) statsJSON {
	out := statsJSON{Report: h.board.Report(w)}
	if h.sipTargets != nil {
		out.Targets = h.sipTargets()
	}
	return out
}

func (h *Handler) getStats(c *gin.Context) {
	if !h.needBoard(c) {
		return
	}
	w, ok := window(c)
	if !ok {
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, h.report(w))
}

// maxStreamTimeout bounds timeoutSeconds.
const maxStreamTimeout = 24 * time.Hour

// streamTimeout applies timeoutSeconds, which ends a stream after that
// long whatever happens (as Kubernetes' watches do): for scripts and tests
// that want the state and a few changes, not a stream without end. The
// caller defers the returned function. It answers 400 and returns false
// when the parameter is malformed.
func streamTimeout(c *gin.Context) (context.CancelFunc, bool) {
	s := c.Query("timeoutSeconds")
	if s == "" {
		return func() {}, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || time.Duration(n)*time.Second > maxStreamTimeout {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "timeoutSeconds must be a whole number of seconds from 1 to 86400", nil)
		return nil, false
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), time.Duration(n)*time.Second)
	c.Request = c.Request.WithContext(ctx)
	return cancel, true
}

// wait holds until the board changes, the keep-alive is due (a comment
// line is written) or the stream must end (false). It then waits out the
// rest of pace since last, so that changes gather.
func (h *Handler) wait(s *sse, changed <-chan struct{}, tick <-chan time.Time, last time.Time, pace time.Duration) bool {
	keepAlive := time.NewTimer(h.keepAlive)
	defer keepAlive.Stop()
	ctx := s.c.Request.Context()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-h.closing:
			return false
		case <-keepAlive.C:
			if !s.comment("keep-alive") {
				return false
			}
			keepAlive.Reset(h.keepAlive)
			continue
		case <-changed:
		case <-tick:
		}
		break
	}
	if d := pace - time.Since(last); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-h.closing:
			return false
		case <-t.C:
		}
	}
	return true
}

// callsReset, callsUpsert and callsRemove are the events of the calls
// stream.
type (
	callsReset struct {
		Seq uint64 `json:"seq"`
	}
	callsUpsert struct {
		Seq   uint64       `json:"seq"`
		Calls []stats.Call `json:"calls"`
	}
	callsRemove struct {
		Seq uint64   `json:"seq"`
		IDs []string `json:"ids"`
	}
)

// streamCalls follows the call list: calls.reset (drop what you have),
// then calls.upsert with every call of the list, then calls.upsert with
// each call that changed (started, moved on in its flow, ended) and
// calls.remove with the IDs dropped from the list. Event IDs are the
// list's sequence numbers: a reconnecting client (Last-Event-ID) gets what
// changed since.
func (h *Handler) streamCalls(c *gin.Context) {
	if !h.needBoard(c) {
		return
	}
	var since uint64
	fresh := true
	if s := cmp.Or(c.GetHeader("Last-Event-ID"), c.Query("lastEventId")); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeProblem(c, http.StatusBadRequest, typeMalformed, "Last-Event-ID must be a sequence number from this stream", nil)
			return
		}
		since, fresh = n, false
	}
	cancel, ok := streamTimeout(c)
	if !ok {
		return
	}
	defer cancel()
	s := h.startSSE(c)
	var last time.Time
	for {
		changed := h.board.Changed() // before reading: no change falls in between
		calls, removed, seq, reset := h.board.Changes(since)
		if fresh || reset {
			if !s.send("calls.reset", seq, callsReset{Seq: seq}) {
				return
			}
			fresh = false
		}
		slices.SortFunc(calls, func(a, b stats.Call) int { return b.StartedAt.Compare(a.StartedAt) })
		for len(calls) > 0 {
			n := min(len(calls), callsChunk)
			if !s.send("calls.upsert", seq, callsUpsert{Seq: seq, Calls: calls[:n]}) {
				return
			}
			calls = calls[n:]
		}
		if len(removed) > 0 && !s.send("calls.remove", seq, callsRemove{Seq: seq, IDs: removed}) {
			return
		}
		if !s.flush() {
			return
		}
		since, last = seq, time.Now()
		if !h.wait(s, changed, nil, last, callsEvery) {
			return
		}
	}
}

// streamStats sends the wallboard's report (event stats) at once, then
// whenever the board changes (at most once a second) and as each minute
// begins.
func (h *Handler) streamStats(c *gin.Context) {
	if !h.needBoard(c) {
		return
	}
	w, ok := window(c)
	if !ok {
		return
	}
	cancel, ok := streamTimeout(c)
	if !ok {
		return
	}
	defer cancel()
	s := h.startSSE(c)
	minute := time.NewTimer(0)
	defer minute.Stop()
	var last time.Time
	for {
		changed := h.board.Changed()
		r := h.report(w)
		if !s.send("stats", 0, r) {
			return
		}
		if !s.flush() {
			return
		}
		last = time.Now()
		minute.Reset(time.Until(r.At.Truncate(time.Minute).Add(time.Minute)))
		if !h.wait(s, changed, minute.C, last, statsEvery) {
			return
		}
	}
}
