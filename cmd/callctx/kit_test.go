package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	main "github.com/callctx/callctx/cmd/callctx"
	"github.com/callctx/callctx/internal/kittest"
	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
	"gopkg.in/yaml.v3"
)

// kitServer is a running callctx for the kit's end-to-end tests: the real
// Main on 127.0.0.1:0 over a temporary data directory, with the flows of
// postman/flows, an admin token named "postman" and a sessions:read token
// named "postman-readonly", and the SIP bridge on a free port.
type kitServer struct {
	URL       string
	Token     string // admin
	ReadToken string // sessions:read
	// OAuthUser and OAuthPassword get an access token for the admin token
	// from /oauth/token.
	OAuthUser, OAuthPassword string
	Main                     *main.Main
}

func secret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func startKitServer(t *testing.T) *kitServer {
	t.Helper()
	return startKitServerWith(t, nil)
}

// startKitServerWith is startKitServer with the configuration changed by
// change (nil: none) before the server starts.
func startKitServerWith(t *testing.T, change func(*main.Config)) *kitServer {
	t.Helper()
	s := &kitServer{Token: secret(t), ReadToken: secret(t), OAuthUser: "postman@example.com", OAuthPassword: secret(t)}
	// The automation of postman/flows is delivered to callctx itself, whose
	// address is known only once it listens, after the flows have loaded:
	// a pass-through on a free port stands in for it until then.
	var target atomic.Pointer[url.URL]
	self := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target.Load())
	}})
	t.Cleanup(self.Close)
	cfg := main.DefaultConfig()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Data.Dir = t.TempDir()
	cfg.Flows.Dir = filepath.Join(kittest.Root(t), "postman", "flows")
	cfg.SIP.Listen = "127.0.0.1:0"
	// An SBC that does not answer OPTIONS, for the console's SIP targets.
	cfg.SIP.Keepalive.Interval = main.Duration(500 * time.Millisecond)
	cfg.SIP.Keepalive.Timeout = main.Duration(300 * time.Millisecond)
	cfg.SIP.Keepalive.Targets = []string{"127.0.0.1:" + strconv.Itoa(testenv.FreeUDPPort(t))}
	cfg.SIP.Unrouted = "mode" // the Transfer folder's caller dials a number the table does not route
	cfg.Auth.Tokens = []main.TokenConfig{
		{Name: "postman", Token: s.Token, Scopes: []string{"admin"}, OAuth: &main.TokenOAuthConfig{Username: s.OAuthUser, Password: s.OAuthPassword}},
		{Name: "postman-readonly", Token: s.ReadToken, Scopes: []string{"sessions:read"}},
	}
	if change != nil {
		change(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s.Main = main.NewMain(cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	s.Main.Getenv = func(name string) (string, bool) {
		switch name {
		case "POSTMAN_CALLCTX_URL":
			return self.URL, true
		case "POSTMAN_CALLCTX_TOKEN":
			return s.Token, true
		}
		return "", false
	}
	if err := s.Main.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Main.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	s.URL = "http://" + s.Main.HTTPAddr()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	target.Store(u)
	return s
}

// sippCaller is sipp placing the call of postman/sipp/caller.xml: callctx
// answers and holds it until it is transferred over REST.
type sippCaller struct {
	done chan error
	out  *bytes.Buffer
	dir  string
}

// startCaller starts sipp against the server's SIP bridge and waits until
// its call is active, so that the held call exists before a client looks.
func startCaller(t *testing.T, srv *kitServer, dir string) *sippCaller {
	t.Helper()
	sipp := sipptest.Path(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cmd := exec.CommandContext(ctx, sipp, srv.Main.SIPAddr(), "-sf", filepath.Join(kittest.Root(t), "postman", "sipp", "caller.xml"),
		"-m", "1", "-i", "127.0.0.1", "-p", "0", "-nostdin", "-timeout", "150s", "-timeout_error", "-trace_err", "-trace_logs")
	cmd.Dir = dir
	c := &sippCaller{done: make(chan error, 1), out: &bytes.Buffer{}, dir: dir}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start sipp: %v", err)
	}
	go func() {
		c.done <- cmd.Wait()
		cancel()
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	svc := srv.Main.Service()
	if !testenv.Poll(20*time.Second, func() bool {
		page, err := svc.ListCalls(context.Background(), session.ListOptions{State: session.FilterActive})
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range page.Items {
			if call.SIPCallID != "" {
				return true
			}
		}
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("sipp ended before its call came in: %v\n%s", err, c.out)
		default:
		}
		return false
	}) {
		t.Fatalf("sipp's call did not come in within 20s\n%s", c.out)
	}
	return c
}

// wait fails the test unless sipp's call went through its whole scenario
// (the transfer's REFER checked, NOTIFYs answered, BYE received).
func (c *sippCaller) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		if err != nil {
			logs, _ := filepath.Glob(filepath.Join(c.dir, "*errors.log"))
			var errs []byte
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				errs = append(errs, b...)
			}
			t.Errorf("sipp: %v\n%s\n%s", err, c.out, errs)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("sipp's call did not finish within 30s of the run: no transfer reached it?\n%s", c.out)
	}
}

// run runs a command with a deadline, streaming nothing; it returns the
// combined output and the error.
func run(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish within %v: %w", name, timeout, err)
	}
	return out.Bytes(), err
}

// newmanReport is the part of newman's JSON report the test reads.
type newmanReport struct {
	Run struct {
		Stats map[string]struct {
			Total  int `json:"total"`
			Failed int `json:"failed"`
		} `json:"stats"`
		Executions []struct {
			Item struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"item"`
		} `json:"executions"`
		Failures []struct {
			Error struct {
				Name    string `json:"name"`
				Message string `json:"message"`
				Test    string `json:"test"`
			} `json:"error"`
			Source struct {
				Name string `json:"name"`
			} `json:"source"`
		} `json:"failures"`
	} `json:"run"`
}

// TestPostmanCollection runs postman/callctx.postman_collection.json with
// newman against a real callctx. Any failed assertion fails the test; the
// newman report is kept in test-output/newman.
func TestPostmanCollection(t *testing.T) {
	t.Parallel()
	root := kittest.Root(t)
	newman := kittest.Bin(t, "newman")
	srv := startKitServer(t)
	out := kittest.OutputDir(t, "newman")
	report := filepath.Join(out, "report.json")
	caller := startCaller(t, srv, filepath.Join(out, "sipp")) // for the Transfer folder

	output, err := run(t, 2*time.Minute, root, []string{"NO_COLOR=1"}, newman, "run",
		filepath.Join("postman", "callctx.postman_collection.json"),
		"--environment", filepath.Join("postman", "local.postman_environment.json"),
		"--env-var", "baseUrl="+srv.URL,
		"--env-var", "token="+srv.Token,
		"--env-var", "readToken="+srv.ReadToken,
		"--env-var", "oauthUser="+srv.OAuthUser,
		"--env-var", "oauthPassword="+srv.OAuthPassword,
		"--env-var", "actor=postman",
		"--reporters", "cli,json", "--reporter-json-export", report,
		"--timeout-request", "10000",
		"--color", "off", "--disable-unicode",
	)
	if werr := os.WriteFile(filepath.Join(out, "newman.txt"), output, 0o644); werr != nil {
		t.Error(werr)
	}
	var rep newmanReport
	b, rerr := os.ReadFile(report)
	if rerr == nil {
		rerr = json.Unmarshal(b, &rep)
	}
	for _, f := range rep.Run.Failures {
		t.Errorf("%s: %s: %s", f.Source.Name, f.Error.Test, f.Error.Message)
	}
	caller.wait(t)
	if err != nil {
		t.Fatalf("newman: %v\n%s", err, output)
	}
	if rerr != nil {
		t.Fatalf("newman report %s: %v", report, rerr)
	}

	// The run did what the collection holds: every request sent, every
	// assertion passed, none left out. (Requests a script sends with
	// pm.sendRequest count as executions of its item too.)
	requests := collectionRequests(t, root)
	ran := map[string]bool{}
	for _, e := range rep.Run.Executions {
		ran[e.Item.ID] = true
	}
	for _, r := range requests {
		if !ran[r.ID] {
			t.Errorf("newman did not run %s / %s", r.Folder, r.Name)
		}
	}
	stats := rep.Run.Stats
	if got, min := stats["assertions"].Total, 2*len(requests); got < min {
		t.Errorf("newman checked %d assertions, want at least %d (two per request)", got, min)
	}
	for _, k := range []string{"requests", "assertions", "testScripts", "prerequestScripts"} {
		if stats[k].Failed != 0 {
			t.Errorf("%s failed: %d", k, stats[k].Failed)
		}
	}
	t.Logf("newman: %d requests of the collection, %d assertions; report in %s", len(ran), stats["assertions"].Total, out)
}

// postmanItem is a request or a folder of the collection.
type postmanItem struct {
	ID    string        `json:"id"`
	Name  string        `json:"name"`
	Item  []postmanItem `json:"item"`
	Event []struct {
		Listen string `json:"listen"`
		Script struct {
			Exec []string `json:"exec"`
		} `json:"script"`
	} `json:"event"`
	Request *struct {
		Method string `json:"method"`
		URL    struct {
			Path []string `json:"path"`
		} `json:"url"`
	} `json:"request"`
}

// postmanRequest is one request of the collection, with its folder.
type postmanRequest struct {
	ID, Folder, Name, Method, Path, Tests string
}

func collectionRequests(t *testing.T, root string) []postmanRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "postman", "callctx.postman_collection.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Info struct {
			Schema string `json:"schema"`
		} `json:"info"`
		Item []postmanItem `json:"item"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("collection: %v", err)
	}
	if got, want := c.Info.Schema, "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"; got != want {
		t.Fatalf("collection schema %q, want %q", got, want)
	}
	var out []postmanRequest
	var walk func(folder string, items []postmanItem)
	walk = func(folder string, items []postmanItem) {
		for _, it := range items {
			if it.Request == nil {
				walk(it.Name, it.Item)
				continue
			}
			r := postmanRequest{ID: it.ID, Folder: folder, Name: it.Name, Method: it.Request.Method, Path: "/" + strings.Join(it.Request.URL.Path, "/")}
			for _, e := range it.Event {
				if e.Listen == "test" {
					r.Tests += strings.Join(e.Script.Exec, "\n")
				}
			}
			out = append(out, r)
		}
	}
	walk("", c.Item)
	return out
}

// TestPostmanCollection_Shape checks the collection without running it:
// the folders the kit promises, a status assertion and more in every
// request, and a request for every operation of openapi.yaml.
func TestPostmanCollection_Shape(t *testing.T) {
	root := kittest.Root(t)
	requests := collectionRequests(t, root)

	folders := map[string]bool{}
	for _, r := range requests {
		folders[r.Folder] = true
	}
	for _, f := range []string{"Calls", "Sessions", "Triggers and flows", "Transfer", "babelforce-compatible"} {
		if !folders[f] {
			t.Errorf("no folder %q", f)
		}
	}

	ids := map[string]bool{}
	for _, r := range requests {
		if r.ID == "" || ids[r.ID] {
			t.Errorf("%s / %s: its id %q is empty or not unique", r.Folder, r.Name, r.ID)
		}
		ids[r.ID] = true
	}

	pmTest := regexp.MustCompile(`pm\.test\(`)
	for _, r := range requests {
		if !strings.Contains(r.Tests, "pm.response.to.have.status(") {
			t.Errorf("%s / %s: no status assertion", r.Folder, r.Name)
		}
		if n := len(pmTest.FindAllString(r.Tests, -1)); n < 2 {
			t.Errorf("%s / %s: %d pm.test, want the status and at least one on shape or values", r.Folder, r.Name, n)
		}
	}

	// Every operation of the spec is exercised by some request.
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	b, err := os.ReadFile(filepath.Join(root, "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	var missing []string
	for path, item := range spec.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "patch", "delete":
			default:
				continue
			}
			covered := false
			for _, r := range requests {
				if strings.EqualFold(r.Method, method) && pathMatches(path, r.Path) {
					covered = true
					break
				}
			}
			if !covered {
				missing = append(missing, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("openapi.yaml operations no request of the collection exercises (add them to postman/callctx.postman_collection.json):\n%s", strings.Join(missing, "\n"))
	}
}

// pathMatches reports whether a request path (with {{variables}}) fits an
// OpenAPI path template.
func pathMatches(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if strings.HasPrefix(ts[i], "{") || ts[i] == ps[i] {
			continue
		}
		return false
	}
	return true
}

// consoleShots are the screenshots the console test takes, one per view.
var consoleShots = []string{"console-calls.png", "console-call.png", "console-wallboard.png", "console-flows.png", "console-routing.png", "console-calendar.png"}

// TestConsole_Browser opens the console in headless Chromium (Debian's
// chromium, driven by playwright-core) against a real callctx with real
// calls, and checks what a person sees in each view (testdata/console.mjs
// says what): the call list live, whole numbers at 1280 px, a thousand calls
// paged, sorted and filtered without polling; a call's session, its flow's
// diagram with the path it took (as recorded), the explanation of each
// switch on hover and the versions a reload kept; the wallboard's figures
// against GET /v1/stats; the flows, routing table and calendars drawn; a
// SIP call's transfer. A screenshot of each view is kept in
// test-output/console/; with UPDATE_DOCS=1 they are copied to docs/ too.
func TestConsole_Browser(t *testing.T) {
	t.Parallel()
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		testenv.Missing(t, chromium)
	}
	root := kittest.Root(t)
	kittest.Package(t, "playwright-core")
	node := kittest.Node(t)
	// A copy of postman/flows, which the script changes to see a reload.
	flows := filepath.Join(t.TempDir(), "flows")
	if err := os.CopyFS(flows, os.DirFS(filepath.Join(root, "postman", "flows"))); err != nil {
		t.Fatal(err)
	}
	srv := startKitServerWith(t, func(cfg *main.Config) { cfg.Flows.Dir = flows })
	stop := reloadOnRequest(t, srv, flows)
	defer stop()
	out := kittest.OutputDir(t, "console")
	caller := startCaller(t, srv, filepath.Join(out, "sipp")) // its call is transferred from the console test

	output, err := run(t, 3*time.Minute, root, []string{
		"CALLCTX_URL=" + srv.URL,
		"CALLCTX_TOKEN=" + srv.Token,
		"CALLCTX_READ_TOKEN=" + srv.ReadToken,
		"FLOWS_DIR=" + flows,
		"SHOTS=" + out,
	}, node, filepath.Join("cmd", "callctx", "testdata", "console.mjs"))
	caller.wait(t)
	if err != nil {
		t.Fatalf("console test: %v\n%s", err, output)
	}
	for _, name := range consoleShots {
		shot := filepath.Join(out, name)
		png, err := os.ReadFile(shot)
		if err != nil {
			t.Fatalf("no screenshot: %v\n%s", err, output)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10<<10 {
			t.Fatalf("screenshot %s is not a plausible PNG (%d bytes)", shot, len(png))
		}
		if os.Getenv("UPDATE_DOCS") == "1" {
			if err := os.WriteFile(filepath.Join(root, "docs", name), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("console screenshots in %s\n%s", out, output)
}

// reloadOnRequest reloads the server's flows each time the console test
// asks, as a designer's SIGHUP would: it writes .reload into the flows
// directory, and finds .reloaded there once the reload is done (holding
// the error, if any).
func reloadOnRequest(t *testing.T, srv *kitServer, dir string) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if err := os.Remove(filepath.Join(dir, ".reload")); err != nil {
				continue
			}
			msg := "ok"
			if err := srv.Main.Reload(); err != nil {
				msg = err.Error()
			}
			if err := os.WriteFile(filepath.Join(dir, ".reloaded"), []byte(msg), 0o644); err != nil {
				t.Error(err)
			}
		}
	}()
	return func() { close(done); <-finished }
}
