package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/session"
)

// The event stream under clients that resume in a loop or never read:
// measured as bytes sent and as writer latency relative to the same
// writes with no such client, never as absolute times.

// bigSession fills a call's session with n variables of size bytes each.
func bigSession(t *testing.T, s *testServer, id string, n, size int) {
	t.Helper()
	vars := map[string]any{}
	for i := 0; i < n; i++ {
		vars[fmt.Sprintf("ivr.blob%d", i)] = strings.Repeat(string(rune('a'+i%26)), size)
	}
	if res := s.do("POST", "/v1/sessions/"+id, vars); res.Status != http.StatusOK {
		t.Fatalf("fill the session: %d %s", res.Status, res.Body)
	}
}

// writeLatency makes n small writes to call id and returns their median
// latency.
func writeLatency(t *testing.T, s *testServer, id string, n int) time.Duration {
	t.Helper()
	took := make([]time.Duration, n)
	for i := range took {
		start := time.Now()
		if res := s.do("POST", "/v1/sessions/"+id, fmt.Sprintf(`{"app.tick":%d}`, time.Now().UnixNano())); res.Status != http.StatusOK {
			t.Fatalf("write: %d %s", res.Status, res.Body)
		}
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	return took[n/2]
}

// resume opens a stream resuming after version last, reads until it has
// seen version upTo (0: the first event) and returns the bytes it read and
// the events' names.
func resume(t *testing.T, url string, last, upTo uint64) (int, []string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Last-Event-ID", strconv.FormatUint(last, 10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("resume: %d", res.StatusCode)
		return 0, nil
	}
	r := bufio.NewReaderSize(res.Body, 1<<16)
	n := 0
	var names []string
	event := ""
	for {
		line, err := r.ReadString('\n')
		n += len(line)
		if err != nil {
			t.Errorf("stream ended after %d bytes: %v", n, err)
			return n, names
		}
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimSpace(line[7:])
			names = append(names, event)
		case strings.HasPrefix(line, "id: "):
			if id, _ := strconv.ParseUint(strings.TrimSpace(line[4:]), 10, 64); id >= upTo || upTo == 0 {
				rest, _ := r.ReadString('\n') // the data line
				return n + len(rest), names
			}
		}
	}
}

// TestEvents_ResumeIsBounded: a resume replays the missed versions' changes,
// not the session at every version; one that is further behind than
// MaxReplay gets one fresh snapshot. Ten clients resuming in a loop from
// the start of a 50 KB session with 300 versions do not slow the writers.
func TestEvents_ResumeIsBounded(t *testing.T) {
	// The ten clients below reopen their streams as fast as they can; a
	// closed stream leaves its slot once the server has seen the connection
	// go, so the per-call cap (tested on its own) is raised out of the way.
	_, s := serve(t, api.Config{Service: session.NewService(openStore(t), session.Options{}), Streams: api.StreamLimits{MaxReplay: 100, MaxPerCall: 1000}})
	id := s.createCall(nil)
	bigSession(t, s, id, 10, 5000)
	for i := 0; i < 300; i++ {
		s.do("POST", "/v1/sessions/"+id, fmt.Sprintf(`{"ivr.n":%d}`, i))
	}
	url := s.URL + "/v1/sessions/" + id + "/events"
	head := uint64(302)

	// Far behind: one snapshot of the session as it is, not 300 versions of it.
	n, names := resume(t, url, 1, head)
	if n > 80_000 || len(names) != 1 || names[0] != "session.snapshot" {
		t.Fatalf("resume after version 1 of %d: %d bytes, events %v; want one snapshot of ~50 KB", head, n, names)
	}
	// Near: the missed versions, their changes only.
	n, names = resume(t, url, head-50, head)
	if n > 50*400 || len(names) != 50 || names[0] != "session.updated" {
		t.Fatalf("resume 50 versions behind: %d bytes, %d events; want 50 small ones", n, len(names))
	}

	// Writers beside ten clients that resume in a loop, against the same
	// writers beside ten clients that read the session in a loop: a resume
	// from far behind costs what reading the session costs, no more.
	idle := writeLatency(t, s, id, 60)
	session := len(s.do("GET", "/v1/sessions/"+id, nil).Body)
	loop := func(read func() int) (time.Duration, int) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		reads, bytes := 0, 0
		for c := 0; c < 10; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					n := read()
					mu.Lock()
					reads, bytes = reads+1, bytes+n
					mu.Unlock()
				}
			}()
		}
		busy := writeLatency(t, s, id, 60)
		close(stop)
		wg.Wait()
		return busy, bytes / max(reads, 1)
	}
	getting, getBytes := loop(func() int { return len(s.do("GET", "/v1/sessions/"+id, nil).Body) })
	resuming, resumeBytes := loop(func() int {
		n, _ := resume(t, url, 1, 0)
		return n
	})
	t.Logf("median write %v idle, %v beside 10 clients reading the %d-byte session in a loop (%d bytes each), %v beside 10 resuming from version 1 in a loop (%d bytes each)",
		idle, getting, session, getBytes, resuming, resumeBytes)
	if resumeBytes > 3*session/2 {
		t.Errorf("a resume from far behind sends %d bytes; the session is %d", resumeBytes, session)
	}
	if resuming > 3*getting+time.Millisecond { // a resume also opens a connection: the stream cannot be reused
		t.Errorf("resuming clients slow the writers more than reading ones: median write %v, %v beside readers, %v idle", resuming, getting, idle)
	}
}

// slowConn opens the session's stream over a connection with a small
// receive buffer and never reads from it.
func slowConn(t *testing.T, addr, path string) net.Conn {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr)
	return c
}

// TestEvents_SlowSubscribers: 200 clients that open a stream and never
// read do not slow the writers (each event is encoded once, queued without
// waiting, and a stream that cannot be written within the write timeout
// is dropped), and the slots they held are free again afterwards.
func TestEvents_SlowSubscribers(t *testing.T) {
	_, s := serve(t, api.Config{Service: session.NewService(openStore(t), session.Options{}),
		Streams: api.StreamLimits{MaxPerCall: 200, WriteTimeout: 500 * time.Millisecond}})
	id := s.createCall(nil)
	bigSession(t, s, id, 8, 6000)
	idle := writeLatency(t, s, id, 80)

	addr := strings.TrimPrefix(s.URL, "http://")
	path := "/v1/sessions/" + id + "/events"
	var conns []net.Conn
	for i := 0; i < 200; i++ {
		conns = append(conns, slowConn(t, addr, path))
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Every stream is open (its status line sent; the rest stays unread):
	// the 201st for this call is refused.
	for i, c := range conns {
		status := make([]byte, 12)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, status); err != nil || string(status) != "HTTP/1.1 200" {
			t.Fatalf("stream %d: %q %v", i, status, err)
		}
	}
	refused, err := (&http.Client{Timeout: 10 * time.Second}).Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	refused.Body.Close()
	if refused.StatusCode != http.StatusTooManyRequests || refused.Header.Get("Retry-After") == "" {
		t.Fatalf("the 201st stream of a call: %d, want 429 with Retry-After", refused.StatusCode)
	}
	busy := writeLatency(t, s, id, 80) // 80 × 48 KB to each of 200 streams that do not read
	t.Logf("median write %v idle, %v with 200 streams that never read", idle, busy)
	if busy > 4*idle+2*time.Millisecond {
		t.Errorf("stalled streams slow the writers: median write %v, %v without them", busy, idle)
	}
	// Dropped (lagging, then the write timeout): the slots are free again.
	var res *http.Response
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		res, err = http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
		res.Body.Close()
		time.Sleep(100 * time.Millisecond)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("a new stream after the stalled ones were dropped: %d", res.StatusCode)
	}
	// A stalled client that reads again finds why it was dropped, and the
	// id to resume from.
	conns[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(io.LimitReader(conns[0], 64<<20))
	if !strings.Contains(string(b), "dropped") && !strings.Contains(string(b), "id: ") {
		t.Fatalf("a dropped stream's client read %d bytes without an id to resume from", len(b))
	}
}

// TestEvents_MemoryPerSubscriber measures what an open stream holds on the
// server (goroutine, buffers, subscription): bounded, and reported in
// docs/performance.md.
func TestEvents_MemoryPerSubscriber(t *testing.T) {
	if testing.Short() {
		t.Skip("measures memory")
	}
	_, s := serve(t, api.Config{Service: session.NewService(openStore(t), session.Options{}), Streams: api.StreamLimits{MaxPerCall: 1000}})
	id := s.createCall(nil)
	addr := strings.TrimPrefix(s.URL, "http://")
	path := "/v1/sessions/" + id + "/events"
	before := inUse()
	const n = 500
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = slowConn(t, addr, path)
	}
	time.Sleep(300 * time.Millisecond) // the streams open and send their snapshots
	per := (inUse() - before) / n
	for _, c := range conns {
		c.Close()
	}
	t.Logf("memory per open session stream: %d bytes (heap and stacks, %d streams)", per, n)
	if per > 64<<10 {
		t.Errorf("an open stream holds %d bytes; want at most 64 KiB", per)
	}
}

func inUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
