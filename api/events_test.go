package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sseEvent is one event read off a stream.
type sseEvent struct {
	Event string
	ID    string
	Data  map[string]any
}

// sseClient reads a live event stream.
type sseClient struct {
	res    *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

func (s *testServer) openStream(t *testing.T, path string, headers ...string) (*sseClient, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		res.Body.Close()
		cancel()
		return nil, res.StatusCode
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	c := &sseClient{res: res, events: make(chan sseEvent, 1024), cancel: cancel}
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" {
					c.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &ev.Data); err != nil {
					ev.Data = map[string]any{"undecodable": line}
				}
			}
		}
	}()
	t.Cleanup(c.Close)
	return c, 200
}

func (c *sseClient) Close() { c.cancel(); c.res.Body.Close() }

// next returns the next event, failing after a timeout.
func (c *sseClient) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

func (c *sseClient) wantEnd(t *testing.T) {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if ok {
			t.Fatalf("unexpected event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end")
	}
}

func TestEvents(t *testing.T) {
	_, s := newTestServer(t, nil)
	id := s.createCall(nil)
	path := "/v1/sessions/" + id + "/events"

	live, _ := s.openStream(t, path)
	ev := live.next(t)
	if ev.Event != "session.snapshot" || ev.ID != "1" || ev.Data["variables"].(map[string]any)["call.id"] != id {
		t.Fatalf("first event %+v", ev)
	}
	s.do("POST", "/v1/sessions/"+id, `{"ivr.email":"a@b.c"}`)
	s.do("POST", "/v1/sessions/"+id, `{"ivr.email":"a@b.c"}`) // no change: no event
	s.do("POST", "/v1/sessions/"+id, `{"ivr.premium":true}`)
	ev = live.next(t)
	if ev.Event != "session.updated" || ev.ID != "2" {
		t.Fatalf("event %+v, want session.updated id 2", ev)
	}
	ch := ev.Data["changes"].(map[string]any)["ivr.email"].(map[string]any)
	if ch["old"] != nil || ch["new"] != "a@b.c" || ev.Data["actor"] != "anonymous" {
		t.Fatalf("changes %v", ev.Data)
	}
	ev = live.next(t)
	if ev.ID != "3" || ev.Data["variables"].(map[string]any)["ivr.email"] != "a@b.c" {
		t.Fatalf("event 3 %+v: the variables must be the whole session after the write", ev)
	}

	// Resume after version 1: versions 2 and 3 are replayed as they were
	// sent live, with their changes but not the whole session.
	resumed, _ := s.openStream(t, path, "Last-Event-ID", "1")
	for _, want := range []string{"2", "3"} {
		ev := resumed.next(t)
		if ev.Event != "session.updated" || ev.ID != want {
			t.Fatalf("replayed %+v, want id %s", ev, want)
		}
		if _, has := ev.Data["variables"]; has || ev.Data["changes"] == nil || ev.Data["actor"] != "anonymous" {
			t.Fatalf("replayed event %s: %v; want the changes and no variables", want, ev.Data)
		}
	}

	// Ending the call sends call.ended to both streams, which then end.
	s.do("POST", "/v1/calls/"+id+"/end", `{"reason":"caller-hangup"}`)
	for _, c := range []*sseClient{live, resumed} {
		ev := c.next(t)
		if ev.Event != "call.ended" || ev.ID != "4" || ev.Data["state"] != "ended" {
			t.Fatalf("end event %+v", ev)
		}
		c.wantEnd(t)
	}
	// A reconnection after the end: 204 tells EventSource to stop.
	if _, status := s.openStream(t, path, "Last-Event-ID", "4"); status != http.StatusNoContent {
		t.Fatalf("reconnect after end: %d, want 204", status)
	}
	// Resume by query parameter, replaying up to and including the end.
	late, _ := s.openStream(t, path+"?lastEventId=2")
	if ev := late.next(t); ev.ID != "3" {
		t.Fatalf("late resume %+v", ev)
	}
	if ev := late.next(t); ev.Event != "call.ended" || ev.ID != "4" {
		t.Fatalf("late resume end %+v", ev)
	}
	late.wantEnd(t)

	if _, status := s.openStream(t, "/v1/sessions/nope/events"); status != 404 {
		t.Fatalf("unknown call: %d", status)
	}
	if _, status := s.openStream(t, path, "Last-Event-ID", "x"); status != 400 {
		t.Fatalf("bad Last-Event-ID: %d", status)
	}
}

// TestEvents_EveryVersionOnce: with many concurrent writers, events of one
// call can be published out of order; the stream still sends each version
// exactly once, in order.
func TestEvents_EveryVersionOnce(t *testing.T) {
	_, s := newTestServer(t, nil)
	id := s.createCall(nil)
	stream, _ := s.openStream(t, "/v1/sessions/"+id+"/events")
	if ev := stream.next(t); ev.ID != "1" {
		t.Fatalf("snapshot %+v", ev)
	}
	const writers, each = 16, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				s.do("POST", "/v1/sessions/"+id, fmt.Sprintf(`{"app.w%d":%d}`, w, i))
			}
		}(w)
	}
	wg.Wait()
	for v := 2; v <= writers*each+1; v++ {
		ev := stream.next(t)
		if ev.ID != strconv.Itoa(v) {
			t.Fatalf("event id %s, want %d", ev.ID, v)
		}
	}
}

// TestEvents_ResumeUpToDate: a client that resumes from the version it
// already has (the console, after reading the session) gets the stream's
// 200 and headers at once, not only with the next write: EventSource
// reports it open then.
func TestEvents_ResumeUpToDate(t *testing.T) {
	_, s := newTestServer(t, nil)
	id := s.createCall(nil)
	version := fmt.Sprint(s.do("GET", "/v1/sessions/"+id, nil).JSON(t)["version"])
	client := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest("GET", s.URL+"/v1/sessions/"+id+"/events?lastEventId="+version, nil)
	res, err := client.Do(req) // returns once the headers are in, or times out
	if err != nil {
		t.Fatalf("resume at version %s: no answer: %v", version, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("resume at version %s: %d %q", version, res.StatusCode, res.Header.Get("Content-Type"))
	}
}
