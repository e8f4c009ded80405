package stats

import (
	"slices"
	"time"
)

// MaxWindow is the longest window the board keeps counts for.
const MaxWindow = 24 * time.Hour

// minutes is how many one-minute buckets the ring holds: MaxWindow's.
const minutes = int(MaxWindow / time.Minute)

// bucket counts what happened in one minute.
type bucket struct {
	start        int64 // unix minute (seconds / 60) it counts; 0: unused
	callsStarted int
	callsEnded   int
	transfers    map[string]int // outcome → count
	delivered    int
	failed       int // attempts that failed and will be retried
	gaveUp       int
}

// window is a ring of the last MaxWindow's one-minute buckets.
type window struct {
	ring [minutes]bucket
}

// at returns the bucket of the minute of t, emptied if it held an older
// minute.
func (w *window) at(t time.Time) *bucket {
	m := t.Unix() / 60
	b := &w.ring[m%int64(minutes)]
	if b.start != m {
		*b = bucket{start: m}
	}
	return b
}

// Series is counts per minute, oldest first, aligned with Report.Minutes.
type Series []int

// series collects the minutes of a window ending with now.
func (w *window) series(now time.Time, n int) (times []int64, rows []*bucket) {
	last := now.Unix() / 60
	times = make([]int64, n)
	rows = make([]*bucket, n)
	empty := &bucket{}
	for i := range n {
		m := last - int64(n-1-i)
		times[i] = m * 60
		b := &w.ring[m%int64(minutes)]
		if b.start != m {
			b = empty
		}
		rows[i] = b
	}
	return times, rows
}

// column returns one count of each row.
func column(rows []*bucket, f func(*bucket) int) Series {
	s := make(Series, len(rows))
	for i, b := range rows {
		s[i] = f(b)
	}
	return s
}

// outcomes returns the transfer outcomes that the rows saw, sorted.
func outcomes(rows []*bucket) []string {
	var out []string
	for _, b := range rows {
		for o := range b.transfers {
			if !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	slices.Sort(out)
	return out
}
