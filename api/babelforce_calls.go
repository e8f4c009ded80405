package api

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/gin-gonic/gin"
)

// bfCall is a call as babelforce's manager API shows it (its Call schema).
// A callctx call is one leg; its session has the call's ID, so sessionId is
// the call ID, and the conversation is the call a leg was placed for.
type bfCall struct {
	ID             string     `json:"id"`
	ParentID       string     `json:"parentId,omitempty"`
	SessionID      string     `json:"sessionId"`
	ConversationID string     `json:"conversationId"`
	DateCreated    time.Time  `json:"dateCreated"`
	DateFinished   *time.Time `json:"dateFinished,omitempty"`
	State          string     `json:"state"`
	FinishReason   string     `json:"finishReason,omitempty"`
	Type           string     `json:"type"`
	From           string     `json:"from"`
	To             string     `json:"to"`
	Source         string     `json:"source"`
	Domain         string     `json:"domain"`
	Duration       int64      `json:"duration"`
	Anonymous      bool       `json:"anonymous"`
}

// babelforce's call states, finish reasons, sources and domains that callctx
// produces.
const (
	bfStateInProgress = "in-progress"
	bfStateCompleted  = "completed"
	bfStateCanceled   = "canceled"
	bfStateFailed     = "failed"
)

// bfStates are every state of babelforce's CallState; those before
// "canceled" are states of a live call.
var bfStates = []string{"init", "scheduled", "ringing", "in-progress", "queued", "bridged",
	"canceled", "busy", "no-answer", "purged", "completed", "failed"}

func bfLiveState(s string) bool {
	return slices.Index(bfStates, s) < slices.Index(bfStates, bfStateCanceled)
}

// bfFinishReasons maps the end reasons callctx records to babelforce's
// CallFinishReason; any other reason (a client's own) is "unknown".
var bfFinishReasons = map[string]string{
	"hangup": "hangup", "caller-hangup": "hangup", "callee-hangup": "passive-hangup",
	"transferred": "transferred", "redirected": "transferred",
	"cancel": "canceled", "rejected": "declined", "no-ack": "failed", "error": "failed",
	"shutdown": "system-hangup", "system-hangup": "system-hangup", "timeout": "timeout",
	"busy": "busy", "no-answer": "no-answer",
}

func toBFCall(c *session.Call, now time.Time) bfCall {
	out := bfCall{
		ID: c.ID, ParentID: c.ParentID, SessionID: c.ID, ConversationID: c.ID,
		DateCreated: c.StartedAt, State: bfStateInProgress, Type: string(c.Direction),
		From: c.From, To: c.To, Source: "api", Domain: "external",
		Anonymous: c.From == "" || strings.EqualFold(c.From, "anonymous"),
	}
	if c.ParentID != "" {
		out.ConversationID, out.Source = c.ParentID, "transfer"
	}
	end := now
	if c.State == session.StateEnded {
		end = c.EndedAt
		t := c.EndedAt
		out.DateFinished = &t
		out.FinishReason = bfFinishReasons[c.EndReason]
		if out.FinishReason == "" {
			out.FinishReason = "unknown"
		}
		switch out.FinishReason {
		case "canceled":
			out.State = bfStateCanceled
		case "failed", "declined":
			out.State = bfStateFailed
		default:
			out.State = bfStateCompleted
		}
	}
	if d := end.Sub(c.StartedAt); d > 0 {
		out.Duration = int64(d / time.Second)
	}
	return out
}

func (h *Handler) bfGetCall(c *gin.Context) {
	call, err := h.svc.Call(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "item": toBFCall(call, nowFunc())})
}

// bfHangupCall is babelforce's hangup: the call ends with reason
// system-hangup, and the SIP bridge hangs up a call it holds.
func (h *Handler) bfHangupCall(c *gin.Context) {
	call, err := h.svc.EndCall(c.Request.Context(), c.Param("id"), "system-hangup", h.actor(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "item": toBFCall(call, nowFunc())})
}

// bfPagination is babelforce's Pagination.
type bfPagination struct {
	Current    int    `json:"current"`
	Max        int    `json:"max"`
	MaxResults int    `json:"maxResults"`
	Pages      int    `json:"pages"`
	Total      int    `json:"total"`
	Next       string `json:"next,omitempty"`
}

// bfDefaultPageSize is the page size of the reporting list without max.
const bfDefaultPageSize = session.DefaultListLimit

// bfListCalls is babelforce's GET /api/v2/calls/reporting: every call callctx
// keeps (the active ones and those ended within the retention period),
// newest first, filtered and paged as babelforce does.
func (h *Handler) bfListCalls(c *gin.Context) {
	q := c.Request.URL.Query()
	f, problem := parseBFFilter(q)
	if problem != "" {
		writeProblem(c, http.StatusBadRequest, typeMalformed, problem, nil)
		return
	}
	page, size := 1, bfDefaultPageSize
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeProblem(c, http.StatusBadRequest, typeMalformed, "page must be an integer from 1 (the first page)", nil)
			return
		}
		page = n
	}
	if v := q.Get("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > session.MaxListLimit {
			writeProblem(c, http.StatusBadRequest, typeMalformed, "max must be an integer from 1 to "+strconv.Itoa(session.MaxListLimit), nil)
			return
		}
		size = n
	}
	now := nowFunc()
	var matched []bfCall
	opts := session.ListOptions{State: f.scan(), Limit: session.MaxListLimit}
	for {
		p, err := h.svc.ListCalls(c.Request.Context(), opts)
		if err != nil {
			h.fail(c, err)
			return
		}
		for _, call := range p.Items {
			if bc := toBFCall(call, now); f.match(call, bc) {
				matched = append(matched, bc)
			}
		}
		if p.Next == "" {
			break
		}
		opts.Cursor = p.Next
	}
	total := len(matched)
	pages := (total + size - 1) / size
	from := total
	if page <= pages { // (page-1)*size cannot overflow then
		from = (page - 1) * size
	}
	items := matched[from:min(from+size, total)]
	if strings.EqualFold(q.Get("format"), "csv") {
		writeBFCSV(c, items)
		return
	}
	pg := bfPagination{Current: page, Max: size, MaxResults: len(items), Pages: pages, Total: total}
	if page < pages {
		next := c.Request.URL.Query()
		next.Set("page", strconv.Itoa(page+1))
		pg.Next = c.Request.URL.Path + "?" + next.Encode()
	}
	if items == nil {
		items = []bfCall{}
	}
	c.JSON(http.StatusOK, gin.H{"success": true, "items": items, "pagination": pg})
}

// writeBFCSV answers calls as the CSV download of format=csv.
func writeBFCSV(c *gin.Context, calls []bfCall) {
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="calls.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"id", "parentId", "sessionId", "conversationId", "dateCreated", "dateFinished", "state", "finishReason", "type", "from", "to", "source", "domain", "duration", "anonymous"})
	for _, b := range calls {
		finished := ""
		if b.DateFinished != nil {
			finished = b.DateFinished.Format(time.RFC3339Nano)
		}
		_ = w.Write([]string{b.ID, b.ParentID, b.SessionID, b.ConversationID, b.DateCreated.Format(time.RFC3339Nano), finished,
			b.State, b.FinishReason, b.Type, csvSafe(b.From), csvSafe(b.To), b.Source, b.Domain,
			strconv.FormatInt(b.Duration, 10), strconv.FormatBool(b.Anonymous)})
	}
	w.Flush()
}

// csvSafe keeps a caller-controlled text from being read as a formula by a
// spreadsheet (CSV injection).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=@-\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// bfFilter is the filters of babelforce's reporting list; every filter may
// be given bare or under "filters." (state or filters.state), a list as the
// parameter repeated or comma-separated. Filters combine with AND; the
// values of one filter with OR.
type bfFilter struct {
	ids, parents, sessions, conversations, agents []string
	types, states, domains, sources, reasons      []string
	from, to                                      []string // digits the number must contain
	start, end                                    *time.Time
	q                                             string
	anonymous                                     *bool
}

// bfListFilters are the filters of the reporting list that take a list of
// values, and so may be repeated (bare or under "filters.").
var bfListFilters = map[string]bool{
	"id": true, "parentId": true, "sessionId": true, "conversationId": true, "agentId": true,
	"type": true, "state": true, "domain": true, "source": true, "finishReason": true,
	"from": true, "fromNumber": true, "to": true, "toNumber": true,
}

// bfListFilter reports whether a query parameter of the reporting list may
// be repeated.
func bfListFilter(name string) bool { return bfListFilters[strings.TrimPrefix(name, "filters.")] }

// parseBFFilter reads the filters of q; it returns a problem detail for a
// value it cannot use.
func parseBFFilter(q url.Values) (bfFilter, string) {
	var f bfFilter
	list := func(name string) []string {
		var out []string
		for _, key := range []string{name, "filters." + name} {
			for _, v := range q[key] {
				for part := range strings.SplitSeq(v, ",") {
					if part = strings.TrimSpace(part); part != "" {
						out = append(out, part)
					}
				}
			}
		}
		return out
	}
	f.ids, f.parents, f.sessions, f.conversations, f.agents = list("id"), list("parentId"), list("sessionId"), list("conversationId"), list("agentId")
	f.types, f.states, f.domains, f.sources, f.reasons = list("type"), list("state"), list("domain"), list("source"), list("finishReason")
	for _, n := range append(list("from"), list("fromNumber")...) {
		f.from = append(f.from, digits(n))
	}
	for _, n := range append(list("to"), list("toNumber")...) {
		f.to = append(f.to, digits(n))
	}
	for _, s := range f.states {
		if !slices.Contains(bfStates, s) && s != string(session.StateActive) && s != string(session.StateEnded) {
			return f, "state " + strconv.Quote(s) + " is not a call state; use one of " + strings.Join(bfStates, ", ") + " (or active, ended)"
		}
	}
	for _, t := range f.types {
		if t != string(session.DirectionInbound) && t != string(session.DirectionOutbound) {
			return f, "type " + strconv.Quote(t) + " is not a call type; use inbound or outbound"
		}
	}
	for _, b := range []struct {
		name string
		dst  **time.Time
	}{{"time.start", &f.start}, {"time.end", &f.end}} {
		if v := list(b.name); len(v) > 0 {
			secs, err := strconv.ParseInt(v[0], 10, 64)
			if err != nil || len(v) > 1 {
				return f, b.name + " must be one Unix timestamp in seconds, like 1763629200"
			}
			t := time.Unix(secs, 0)
			*b.dst = &t
		}
	}
	if v := list("q"); len(v) > 0 {
		f.q = strings.ToLower(strings.Join(v, ","))
	}
	if v := list("anonymous"); len(v) > 0 {
		b, err := strconv.ParseBool(v[0])
		if err != nil {
			return f, "anonymous must be true or false"
		}
		f.anonymous = &b
	}
	return f, ""
}

// scan is the narrowest state of calls the store must list for f.
func (f bfFilter) scan() session.StateFilter {
	if len(f.states) == 0 {
		return session.FilterAll
	}
	live, ended := false, false
	for _, s := range f.states {
		switch {
		case s == string(session.StateActive):
			live = true
		case s == string(session.StateEnded):
			ended = true
		case bfLiveState(s):
			live = true
		default:
			ended = true
		}
	}
	switch {
	case live && !ended:
		return session.FilterActive
	case ended && !live:
		return session.FilterEnded
	}
	return session.FilterAll
}

func (f bfFilter) match(c *session.Call, b bfCall) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	contains := func(list []string, number string) bool {
		if len(list) == 0 {
			return true
		}
		d := digits(number)
		for _, want := range list {
			if want != "" && strings.Contains(d, want) {
				return true
			}
		}
		return false
	}
	switch {
	case !in(f.ids, b.ID), !in(f.sessions, b.SessionID), !in(f.conversations, b.ConversationID),
		!in(f.types, b.Type), !in(f.domains, b.Domain), !in(f.sources, b.Source), !in(f.reasons, b.FinishReason):
		return false
	case len(f.parents) > 0 && !slices.Contains(f.parents, b.ParentID):
		return false
	case len(f.agents) > 0: // callctx has no agents: no call was handled by one
		return false
	case len(f.states) > 0 && !slices.Contains(f.states, b.State) && !slices.Contains(f.states, string(c.State)):
		return false
	case !contains(f.from, b.From), !contains(f.to, b.To):
		return false
	case f.start != nil && b.DateCreated.Before(*f.start), f.end != nil && b.DateCreated.After(*f.end):
		return false
	case f.anonymous != nil && *f.anonymous != b.Anonymous:
		return false
	}
	if f.q != "" {
		hay := strings.ToLower(strings.Join([]string{b.ID, b.ParentID, b.From, b.To, c.Flow, c.EndReason}, " "))
		if !strings.Contains(hay, f.q) {
			return false
		}
	}
	return true
}

// digits returns the decimal digits of a phone number.
func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
