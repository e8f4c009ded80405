package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callctx/callctx/session"
	redis "github.com/redis/go-redis/v9"
)

// How events travel between nodes: every write script PUBLISHes a short
// notice, "<event type> <version> <call ID> <node ID>", on the prefix's events
// channel, in the same atomic step as the write, so a committed change is
// never without its notice and an uncommitted one never has one. Each
// node's Follow subscribes, drops its own notices (its Service published
// those already), and for calls that someone on this node watches fetches
// the session and the history from the notified version on, in one
// pipelined round trip, to build the event exactly as it was at that
// version. Pub/sub delivers at most once; whenever a subscription is
// (re)established, Follow tells the sink that events may be missing, and
// subscribers catch up from History, which is exact.

// Follow tuning.
const (
	noticeQueue   = 4096                   // notices waiting to be fetched; more means the node lags
	fetchBatch    = 256                    // notices fetched in one round trip
	followPing    = 3 * time.Second        // a silent subscription is pinged after this
	followBackoff = 100 * time.Millisecond // first wait before reconnecting; doubles up to maxBackoff
	maxBackoff    = 2 * time.Second
)

// notice is a parsed event notice.
type notice struct {
	event   session.EventType
	version uint64
	callID  string
	node    string
}

// parseNotice reads "<event type> <version> <call ID> <node ID>".
func parseNotice(p string) (notice, bool) {
	f := strings.Split(p, " ")
	if len(f) != 4 || !validEventType(f[0]) {
		return notice{}, false
	}
	if f[1] == "" || f[1][0] == '0' || f[3] == "" { // versions start at 1, printed without leading zeros
		return notice{}, false
	}
	v, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || !session.ValidCallID(f[2]) {
		return notice{}, false
	}
	return notice{event: session.EventType(f[0]), version: v, callID: f[2], node: f[3]}, true
}

// validEventType accepts names like session.updated: 1 to 64 lowercase
// letters and dots.
func validEventType(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// Follow implements session.EventSource.
func (s *Store) Follow(ctx context.Context, sink session.EventSink) error {
	queue := make(chan notice, noticeQueue)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.fetchLoop(ctx, queue, sink)
	}()
	defer wg.Wait()
	// Until the first subscription is confirmed, notices pass unseen: the
	// subscribers this node already has must catch up then, as after any
	// reconnection.
	lost, backoff := true, followBackoff
	for {
		if s.subscribe(ctx, queue, sink, &lost) {
			backoff = followBackoff
		}
		lost = true // the subscription broke: notices may have been published meanwhile
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// subscribe receives notices on one subscription until it breaks or ctx
// ends; it reports whether the subscription had been confirmed.
func (s *Store) subscribe(ctx context.Context, queue chan notice, sink session.EventSink, lost *bool) (confirmed bool) {
	ps := s.rdb.Subscribe(ctx, s.channel)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { ps.Close() }) // a blocked read ignores ctx
	defer stop()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, followPing)
		if err != nil {
			var ne net.Error
			if ctx.Err() == nil && confirmed && !pinged && errors.As(err, &ne) && ne.Timeout() {
				// Silence may be a dead server: a ping must come back
				// before the next timeout.
				pinged = true
				if ps.Ping(ctx) == nil {
					continue
				}
			}
			return confirmed
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				confirmed = true
				if *lost {
					*lost = false
					sink.Missed()
				}
			}
		case *redis.Message:
			n, ok := parseNotice(m.Payload)
			if !ok || n.node == s.node || !sink.Wants(n.callID, n.event) {
				continue
			}
			select {
			case queue <- n:
			default: // this node cannot keep up: drop the backlog, readers catch up from history
				for len(queue) > 0 {
					<-queue
				}
				sink.Missed()
			}
		}
	}
}

// fetchLoop turns queued notices into events, a batch per round trip.
func (s *Store) fetchLoop(ctx context.Context, queue chan notice, sink session.EventSink) {
	for {
		var n notice
		select {
		case <-ctx.Done():
			return
		case n = <-queue:
		}
		latest := map[string]notice{n.callID: n}
	drain:
		for len(latest) < fetchBatch {
			select {
			case n = <-queue:
				// The latest version wins; of one version, call.ended
				// (a call created ended has started and ended at once).
				if l := latest[n.callID]; n.version > l.version || n.version == l.version && n.event == session.EventCallEnded {
					latest[n.callID] = n
				}
			default:
				break drain
			}
		}
		for id, n := range latest {
			if !sink.Wants(id, n.event) {
				delete(latest, id)
			}
		}
		if len(latest) == 0 {
			continue
		}
		events, err := s.fetchEvents(ctx, latest)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			sink.Missed()
			continue
		}
		for _, e := range events {
			sink.Deliver(e)
		}
	}
}

// fetchEvents builds the event of each notice: the session now and the
// history from the notice's version on give the variables at that version
// (later changes undone, newest first).
func (s *Store) fetchEvents(ctx context.Context, notices map[string]notice) ([]session.Event, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	type fetch struct {
		n    notice
		blob *redis.StringCmd
		hist *redis.StringSliceCmd
		call *redis.SliceCmd // for call.started and call.ended
	}
	pipe := s.rdb.Pipeline()
	fetches := make([]fetch, 0, len(notices))
	for id, n := range notices {
		f := fetch{n: n, blob: pipe.Get(ctx, s.sessKey(id)), hist: pipe.LRange(ctx, s.histKey(id), int64(n.version-1), -1)}
		if n.event == session.EventCallStarted || n.event == session.EventCallEnded {
			f.call = pipe.HMGet(ctx, s.callKey(id), callFields...)
		}
		fetches = append(fetches, f)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("fetch events: %w", err)
	}
	events := make([]session.Event, 0, len(fetches))
	for _, f := range fetches {
		blob, err := f.blob.Result()
		raw := f.hist.Val()
		if errors.Is(err, redis.Nil) || len(raw) == 0 {
			continue // purged meanwhile
		}
		sess, _, err := decodeBlob(f.n.callID, blob)
		if err != nil {
			return nil, err
		}
		entries, err := decodeHistory(f.n.callID, raw)
		if err != nil {
			return nil, err
		}
		if entries[0].Version != f.n.version {
			return nil, fmt.Errorf("history of %s: entry %d where %d was expected", f.n.callID, entries[0].Version, f.n.version)
		}
		vars := sess.Variables
		for i := len(entries) - 1; i >= 1; i-- {
			for name, ch := range entries[i].Changes {
				if ch.Old == nil {
					delete(vars, name)
				} else {
					vars[name] = ch.Old
				}
			}
		}
		e := session.Event{Type: f.n.event, CallID: f.n.callID, Version: f.n.version,
			At: entries[0].At, Actor: entries[0].Actor, Changes: entries[0].Changes, Variables: vars}
		if f.call != nil {
			if e.Call, _, err = callFromFields(f.n.callID, f.call.Val()); err != nil {
				return nil, err
			}
		}
		events = append(events, e)
	}
	return events, nil
}
