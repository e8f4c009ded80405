package main_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session/bolt/bolttest"
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOutbox_SIGKILL: an automation queued before the server is killed
// with SIGKILL — its request in flight, not yet answered — is delivered
// after the restart, with the same Idempotency-Key, and the database passes
// bbolt's consistency check.
func TestOutbox_SIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	var mu sync.Mutex
	var keys []string
	held := make(chan struct{}) // closed once the first request is in flight
	var heldOnce sync.Once
	release := make(chan struct{})
	up := false
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		isUp := up
		mu.Unlock()
		if !isUp {
			heldOnce.Do(func() { close(held) })
			<-release // hold the request until the server is dead
			http.Error(w, "too late", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer receiver.Close()
	defer close(release)

	flows := t.TempDir()
	writeFile(t, filepath.Join(flows, "notify.yaml"), `
automations:
  notify:
    url: "${RECEIVER_URL}/notify/{call.id}"
    body: {call: "{call.id}", from: "{call.from}"}
    retry: {attempts: 10, backoff: 50ms, max_backoff: 200ms}
flows:
  notify-flow:
    start: fire
    nodes:
      fire: {type: automation, automations: [notify], next: bye}
      bye: {type: hangup}
`)
	data := t.TempDir()
	env := "RECEIVER_URL=" + receiver.URL
	p := startBinary(t, data, flows, env)
	call := p.must(http.StatusCreated, "POST", "/v1/calls", map[string]any{"from": "+4930123456", "to": "+4940555000", "flow": "notify-flow"})
	id := call["id"].(string)
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the automation was not sent")
	}
	p.kill() // the request is in flight: queued, not delivered

	mu.Lock()
	up = true
	first := keys[0]
	mu.Unlock()
	p = startBinary(t, data, flows, env)
	var items []any
	testenv.WaitFor(t, "the delivery after the restart", func() bool {
		items = p.must(http.StatusOK, "GET", "/v1/calls/"+id+"/automations", nil)["items"].([]any)
		return len(items) == 1 && items[0].(map[string]any)["status"] == "delivered"
	})
	d := items[0].(map[string]any)
	if d["id"] != first {
		t.Fatalf("delivery %v is not the entry queued before the kill (%s)", d["id"], first)
	}
	mu.Lock()
	for _, k := range keys {
		if k != first {
			t.Errorf("Idempotency-Key changed: %s, want %s", k, first)
		}
	}
	mu.Unlock()
	if !strings.Contains(p.logText(), "resuming automations queued before the restart") {
		t.Errorf("the restart did not report resumed automations:\n%s", p.logText())
	}
	p.stop()

	bolttest.MustCheck(t, data)
}

// TestReload_SIGHUP: SIGHUP loads the flows directory again; a live call
// keeps the version it started with, a new call gets the new one, and a
// broken directory is refused while the server goes on serving.
func TestReload_SIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	flows := t.TempDir()
	file := filepath.Join(flows, "f.yaml")
	writeFile(t, file, `
flows:
  f:
    start: a
    nodes:
      a: {type: say, text: version one, next: b}
      b: {type: say, text: still version one, next: c}
      c: {type: hangup}
`)
	p := startBinary(t, t.TempDir(), flows)
	v1 := p.must(http.StatusOK, "GET", "/v1/flows", nil)["version"]
	live := p.must(http.StatusCreated, "POST", "/v1/calls", map[string]any{"from": "a", "to": "b", "flow": "f"})["id"].(string)
	if a := action(t, p.must(http.StatusOK, "POST", "/v1/calls/"+live+"/flow/next", nil)); a["text"] != "version one" {
		t.Fatalf("action %v", a)
	}

	writeFile(t, file, `
flows:
  f:
    start: a
    nodes:
      a: {type: say, text: version two, next: c}
      c: {type: hangup}
`)
	p.cmd.Process.Signal(syscall.SIGHUP)
	testenv.WaitFor(t, "the reload", func() bool { return p.must(http.StatusOK, "GET", "/v1/flows", nil)["version"] != v1 })
	if a := action(t, p.must(http.StatusOK, "POST", "/v1/calls/"+live+"/flow/next", map[string]any{"status": "done"})); a["text"] != "still version one" {
		t.Fatalf("the live call changed version: %v", a)
	}
	fresh := p.must(http.StatusCreated, "POST", "/v1/calls", map[string]any{"from": "a", "to": "b", "flow": "f"})["id"].(string)
	if a := action(t, p.must(http.StatusOK, "POST", "/v1/calls/"+fresh+"/flow/next", nil)); a["text"] != "version two" {
		t.Fatalf("a new call did not get the new version: %v", a)
	}

	v2 := p.must(http.StatusOK, "GET", "/v1/flows", nil)["version"]
	writeFile(t, file, "flows:\n  f:\n    start: [broken\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	testenv.WaitFor(t, "the refused reload in the log", func() bool { return strings.Contains(p.logText(), "reload refused") })
	if got := p.must(http.StatusOK, "GET", "/v1/flows", nil)["version"]; got != v2 {
		t.Fatalf("a broken directory replaced the flows: version %v", got)
	}
	if !strings.Contains(p.logText(), "f.yaml:3") {
		t.Errorf("the refused reload does not name the file and line:\n%s", p.logText())
	}
	p.stop()
}

// TestReload_SIGHUPWhileStarting: a SIGHUP sent as soon as the server has
// said anything (here its first log line, before it listens) is not lost and
// does not end it: the reload runs once the server is up.
func TestReload_SIGHUPWhileStarting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	flows := t.TempDir()
	writeFile(t, filepath.Join(flows, "f.yaml"), "flows:\n  f:\n    start: a\n    nodes:\n      a: {type: hangup}\n")
	p := &node{t: t, name: "callctx", bin: buildCallctx(t),
		args:        []string{"--sip", "127.0.0.1:0", "--data", t.TempDir(), "--flows", flows},
		atFirstLine: func(p *os.Process) { p.Signal(syscall.SIGHUP) }}
	p.start() // fails if the SIGHUP ended the process
	testenv.WaitFor(t, "the flows loaded a second time", func() bool {
		return strings.Count(p.logText(), `"msg":"flows loaded"`) >= 2
	})
	p.stop() // fails unless the exit after the reload is clean
}

// TestReload_holidays: a calendar's .ics file is read again on SIGHUP, as the
// flows are: a holiday taken out of it opens the day, and a file broken by
// an edit is refused while the calendar in force stays.
func TestReload_holidays(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	flows := t.TempDir()
	writeFile(t, filepath.Join(flows, "hours.yaml"), `
calendars:
  support:
    tz: Europe/Berlin
    weekly: {mon-sat: "09:00-13:00"}
    exceptions:
      - {name: public-holiday, ics: holidays/berlin.ics}
`)
	event := func(date, summary string) string {
		return "BEGIN:VEVENT\r\nUID:" + date + "@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:" + date + "\r\nSUMMARY:" + summary + "\r\nEND:VEVENT\r\n"
	}
	ics := func(events ...string) string {
		return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + strings.Join(events, "") + "END:VCALENDAR\r\n"
	}
	if err := os.MkdirAll(filepath.Join(flows, "holidays"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(flows, "holidays", "berlin.ics")
	writeFile(t, file, ics(event("20261003", "Tag der Deutschen Einheit"), event("20261225", "Weihnachten")))
	p := startBinary(t, t.TempDir(), flows)
	const at = "/v1/calendars/support?at=2026-10-03T10:00:00%2B02:00"
	if c := p.must(http.StatusOK, "GET", at, nil); c["state"] != "closed" || c["holiday"] != "Tag der Deutschen Einheit" {
		t.Fatalf("calendar %v", c)
	}
	v1 := p.must(http.StatusOK, "GET", "/v1/calendars", nil)["version"]

	writeFile(t, file, ics(event("20261225", "Weihnachten")))
	p.cmd.Process.Signal(syscall.SIGHUP)
	testenv.WaitFor(t, "the reload", func() bool { return p.must(http.StatusOK, "GET", "/v1/calendars", nil)["version"] != v1 })
	if c := p.must(http.StatusOK, "GET", at, nil); c["state"] != "open" || c["reason"] != "open: weekly hours sat 09:00-13:00" {
		t.Fatalf("after the reload: %v", c)
	}

	v2 := p.must(http.StatusOK, "GET", "/v1/calendars", nil)["version"]
	writeFile(t, file, "not a calendar")
	p.cmd.Process.Signal(syscall.SIGHUP)
	testenv.WaitFor(t, "the refused reload in the log", func() bool { return strings.Contains(p.logText(), "reload refused") })
	if got := p.must(http.StatusOK, "GET", "/v1/calendars", nil)["version"]; got != v2 {
		t.Fatalf("a broken .ics replaced the calendars: version %v", got)
	}
	if !strings.Contains(p.logText(), "holidays/berlin.ics: not an iCalendar file") {
		t.Errorf("the refused reload does not name the file:\n%s", p.logText())
	}
	p.stop()
}

// TestServe_brokenFlowsRefused: the server does not start on a broken flows
// directory, and says where it is broken.
func TestServe_brokenFlowsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCallctx(t)
	flows := t.TempDir()
	writeFile(t, filepath.Join(flows, "bad.yaml"), "triggers:\n  t:\n    when: {var: ivr.x, op: nope}\n")
	out, err := exec.Command(bin, "serve", "--http", "127.0.0.1:0", "--sip", "127.0.0.1:0", "--data", t.TempDir(), "--flows", flows).CombinedOutput()
	if err == nil {
		t.Fatal("callctx started with a broken flows directory")
	}
	if !strings.Contains(string(out), "bad.yaml:3:24: /triggers/t/when/op: op must be one of") {
		t.Fatalf("output does not name the problem:\n%s", out)
	}
}
