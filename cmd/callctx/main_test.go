package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
	"github.com/callctx/callctx/session/redis"
)

func TestMain(m *testing.M) {
	// The Redis client library logs through one logger per process (serve sets it); the
	// tests kill Redis on purpose, so its dial failures would only be noise here.
	redis.LogTo(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// testConfig is the default configuration with HTTP and SIP on free
// loopback ports and dir as the data directory.
func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.Data.Dir = dir
	return cfg
}

// MustOpenMain starts callctx with cfg; the caller closes it.
func MustOpenMain(tb testing.TB, cfg Config) *Main {
	tb.Helper()
	m := NewMain(cfg, nil)
	if err := m.Open(); err != nil {
		tb.Fatal(err)
	}
	return m
}

func post(tb testing.TB, url, body string) (int, []byte) {
	tb.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func getJSON(tb testing.TB, url string, v any) int {
	tb.Helper()
	res, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	if v != nil {
		json.NewDecoder(res.Body).Decode(v)
	}
	return res.StatusCode
}

// TestMain_Restart: write, stop, start again on the same data, read back.
func TestMain_Restart(t *testing.T) {
	dir := t.TempDir()
	m := MustOpenMain(t, testConfig(dir))
	base := "http://" + m.HTTPAddr()
	status, body := post(t, base+"/v1/calls", `{"id":"restart-1","from":"+4930","to":"+4940"}`)
	if status != 201 {
		t.Fatalf("%d %s", status, body)
	}
	if status, body := post(t, base+"/v1/sessions/restart-1", `{"ivr.email":"a@b.c","ivr.premium":true}`); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m = MustOpenMain(t, testConfig(dir))
	defer m.Close()
	var sess struct {
		Version   int
		Variables map[string]any
	}
	getJSON(t, "http://"+m.HTTPAddr()+"/v1/sessions/restart-1", &sess)
	if sess.Version != 2 || sess.Variables["ivr.email"] != "a@b.c" || sess.Variables["ivr.premium"] != true {
		t.Fatalf("after restart: %+v", sess)
	}
}

// TestMain_SecondInstance: a second callctx on the same data says so.
func TestMain_SecondInstance(t *testing.T) {
	dir := t.TempDir()
	m := MustOpenMain(t, testConfig(dir))
	defer m.Close()
	second := NewMain(testConfig(dir), nil)
	err := second.Open()
	if !errors.Is(err, bolt.ErrInUse) || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("second instance: %v", err)
	}
}

// TestMain_GracefulShutdown: writes in flight when shutdown starts finish;
// every acknowledged write is on disk afterwards and the file is sound.
func TestMain_GracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	m := MustOpenMain(t, testConfig(dir))
	base := "http://" + m.HTTPAddr()
	if status, body := post(t, base+"/v1/calls", `{"id":"g","from":"a","to":"b"}`); status != 201 {
		t.Fatalf("%d %s", status, body)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	ctx, stop := context.WithCancel(context.Background())
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 15; i++ {
				name := fmt.Sprintf("app.w%d_%d", w, i)
				res, err := client.Post(base+"/v1/sessions/g", "application/json", bytes.NewReader([]byte(`{"`+name+`":1}`)))
				if err != nil {
					return // the server has gone: not acknowledged
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == 200 {
					mu.Lock()
					acked[name] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	closed := make(chan error)
	go func() { closed <- m.Close() }()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	stop()
	wg.Wait()

	bolttest.MustCheck(t, dir)
	st := bolttest.MustOpenDir(t, dir, bolt.Options{})
	sess, err := st.Session(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	for name := range acked {
		if _, ok := sess.Variables[name]; !ok {
			t.Errorf("acknowledged write %s is missing", name)
		}
	}
	t.Logf("%d writes acknowledged before shutdown", len(acked))
}

func TestRun_Version(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "callctx ") {
		t.Fatalf("version printed %q", out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, io.Discard, io.Discard); err == nil {
		t.Fatal("an unknown command did not fail")
	}
}

// TestMain_RetentionSweep: the background sweep removes an ended session
// once the retention period has passed, and not before.
func TestMain_RetentionSweep(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Retention = RetentionConfig{Period: Duration(1500 * time.Millisecond), SweepInterval: Duration(50 * time.Millisecond)}
	m := MustOpenMain(t, cfg)
	defer m.Close()
	base := "http://" + m.HTTPAddr()
	post(t, base+"/v1/calls", `{"id":"old","from":"a","to":"b"}`)
	post(t, base+"/v1/calls", `{"id":"live","from":"a","to":"b"}`)
	ended := time.Now()
	post(t, base+"/v1/calls/old/end", `{}`)
	for {
		status := getJSON(t, base+"/v1/sessions/old", nil)
		age := time.Since(ended)
		if status == 404 {
			if age < 1500*time.Millisecond {
				t.Fatalf("swept %v after the end, before the retention period", age)
			}
			break
		}
		if age > 15*time.Second {
			t.Fatal("not swept 15s after the end")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status := getJSON(t, base+"/v1/sessions/live", nil); status != 200 {
		t.Fatalf("the active call was swept: %d", status)
	}
}
