package api

import (
	"net/http"
	"time"

	"github.com/callctx/callctx/triggers"
	"github.com/gin-gonic/gin"
)

// upcomingDays is how far ahead GET /v1/calendars/{name} lists exceptions.
const upcomingDays = 30

// calendarJSON is a calendar as the API shows it, with its state at one
// moment ("at"): open or closed, what decided, and when that changes.
type calendarJSON struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	File        string      `json:"file"`
	Line        int         `json:"line"`
	TZ          string      `json:"tz"`
	At          time.Time   `json:"at"`
	Open        bool        `json:"open"`
	State       string      `json:"state"`
	Exception   *string     `json:"exception"`
	Holiday     *string     `json:"holiday"`
	Range       *string     `json:"range"`
	Reason      string      `json:"reason"`
	NextChange  *changeJSON `json:"nextChange"`
	// In the detail only.
	Weekly     map[string][]string `json:"weekly,omitempty"`
	Exceptions []exceptionJSON     `json:"exceptions,omitempty"`
	Upcoming   []occurrenceJSON    `json:"upcoming,omitempty"`
}

// changeJSON is when a calendar next opens or closes.
type changeJSON struct {
	At        time.Time `json:"at"`
	Open      bool      `json:"open"`
	InSeconds int64     `json:"inSeconds"`
}

// exceptionJSON is an exception as written.
type exceptionJSON struct {
	Name   string   `json:"name"`
	Covers string   `json:"covers"`
	Closed bool     `json:"closed"`
	Hours  []string `json:"hours"`
}

// occurrenceJSON is a day an exception governs.
type occurrenceJSON struct {
	Date      string   `json:"date"`
	Exception string   `json:"exception"`
	Closed    bool     `json:"closed"`
	Hours     []string `json:"hours"`
	Holiday   *string  `json:"holiday"`
}

func rangeTexts(rs []triggers.Range) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

func toCalendarJSON(c *triggers.Calendar, at time.Time, detail bool) calendarJSON {
	d := c.Decide(at)
	out := calendarJSON{
		Name: c.Name, Description: c.Description, File: c.File, Line: c.Line, TZ: c.TZ,
		At: d.At, Open: d.Open, State: "closed", Exception: optString(d.Exception), Holiday: optString(d.Holiday),
		Range: optString(d.Range), Reason: d.Reason,
	}
	if d.Open {
		out.State = "open"
	}
	if ch, ok := c.NextChange(at); ok {
		out.NextChange = &changeJSON{At: ch.At, Open: ch.Open, InSeconds: int64(ch.At.Sub(at) / time.Second)}
	}
	if !detail {
		return out
	}
	out.Weekly = map[string][]string{}
	for wd := time.Sunday; wd <= time.Saturday; wd++ {
		out.Weekly[triggers.WeekdayName(wd)] = rangeTexts(c.Weekly(wd))
	}
	out.Exceptions = []exceptionJSON{}
	for _, e := range c.Exceptions() {
		out.Exceptions = append(out.Exceptions, exceptionJSON{Name: e.Name, Covers: e.What, Closed: e.Closed(), Hours: rangeTexts(e.Hours)})
	}
	out.Upcoming = []occurrenceJSON{}
	for _, o := range c.Upcoming(at, upcomingDays) {
		out.Upcoming = append(out.Upcoming, occurrenceJSON{Date: o.Date, Exception: o.Exception.Name, Closed: o.Exception.Closed(),
			Hours: rangeTexts(o.Exception.Hours), Holiday: optString(o.Holiday)})
	}
	return out
}

// calendarTime reads ?at= (RFC 3339), now by default.
func calendarTime(c *gin.Context) (time.Time, bool) {
	s := c.Query("at")
	if s == "" {
		return nowFunc(), true
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		writeProblem(c, http.StatusBadRequest, typeMalformed, "at must be an RFC 3339 time such as 2026-12-24T11:00:00+01:00", nil)
		return time.Time{}, false
	}
	return t, true
}

func (h *Handler) listCalendars(c *gin.Context) {
	at, ok := calendarTime(c)
	if !ok {
		return
	}
	snap := h.snapshot()
	items := []calendarJSON{}
	for _, cal := range snap.Triggers.Calendars() {
		items = append(items, toCalendarJSON(cal, at, false))
	}
	c.JSON(http.StatusOK, gin.H{"version": snap.Version, "items": items})
}

func (h *Handler) getCalendar(c *gin.Context) {
	name := c.Param("name")
	cal, ok := h.snapshot().Triggers.Calendar(name)
	if !ok {
		writeProblem(c, http.StatusNotFound, typeNotFound, "there is no calendar "+name, nil)
		return
	}
	at, ok := calendarTime(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, toCalendarJSON(cal, at, true))
}
