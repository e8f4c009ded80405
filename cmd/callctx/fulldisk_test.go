package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/internal/testenv"
)

// TestMain_FullDisk runs callctx on a real file system that fills up (a
// small tmpfs). Writes are answered 507 problem+json with Retry-After, not
// 500; /readyz says the store is failing writes; the store write errors
// metric counts them; a SIP INVITE gets 503 with Retry-After, so that an
// SBC fails over. Once space is freed everything works again, and after a
// restart every acknowledged write is there.
func TestMain_FullDisk(t *testing.T) {
	dir := testenv.SmallFS(t, 24<<20)
	m := MustOpenMain(t, testConfig(dir))
	defer func() { m.Close() }()
	base := "http://" + m.HTTPAddr()

	value := strings.Repeat("x", 4000)
	acked := map[string]int{} // call/variable → the value acknowledged last
	var calls []string
	write := func(i int) (int, []byte, http.Header) {
		if i%10 == 0 {
			status, body := post(t, base+"/v1/calls", `{"from":"+4930","to":"+4940"}`)
			if status != http.StatusCreated {
				return status, body, nil
			}
			calls = append(calls, between(string(body), `"id":"`, `"`))
		}
		id, name := calls[len(calls)-1], fmt.Sprintf("ivr.v%d", i%10)
		res, err := http.Post(base+"/v1/sessions/"+id, "application/json", strings.NewReader(fmt.Sprintf(`{%q:"%d %s"}`, name, i, value)))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode == http.StatusOK {
			acked[id+"/"+name] = i
		}
		return res.StatusCode, body, res.Header
	}
	if status, body, _ := write(0); status != http.StatusOK {
		t.Fatalf("first write: %d %s", status, body)
	}
	filler := testenv.Fill(t, dir) // the disk fills up while callctx runs

	i, status := 1, 0
	var body []byte
	var header http.Header
	for ; i < 20000; i++ {
		if status, body, header = write(i); status != http.StatusOK {
			break
		}
	}
	if status != http.StatusInsufficientStorage || header.Get("Content-Type") != "application/problem+json" ||
		header.Get("Retry-After") == "" || !strings.Contains(string(body), "storage-full") {
		t.Fatalf("write %d on a full disk: %d %v %s; want 507 problem+json with Retry-After", i, status, header, body)
	}

	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.Contains(string(ready), "failing writes") {
		t.Fatalf("/readyz on a full disk: %d %s", res.StatusCode, ready)
	}
	if n := metricValue(t, base, `callctx_store_write_errors_total{code="storage_full",op="write"}`); n < 1 {
		t.Fatalf("callctx_store_write_errors_total for the full disk = %v", n)
	}
	// The log may still hold room for a record smaller than the one refused
	// (a new call's): new calls use it up, and then fail too.
	for j := 0; ; j++ {
		status, _ := post(t, base+"/v1/calls", `{"from":"+4930","to":"+4940"}`)
		if status == http.StatusInsufficientStorage {
			break
		}
		if status != http.StatusCreated || j == 1000 {
			t.Fatalf("new call %d on a full disk: %d", j, status)
		}
	}
	// The SBC's INVITE: 503 with Retry-After (sipp checks it), no call created.
	sipptest.Start(t, "uac_store_full.xml", m.SIPAddr(), 0).Wait(t)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for j := 0; j < 20; j++ {
		if status, body, _ := write(i + j); status != http.StatusOK {
			t.Fatalf("write after space was freed: %d %s", status, body)
		}
	}
	// bbolt, behind the log, catches up on its next try.
	testenv.WaitFor(t, "/readyz to say ready after space was freed", func() bool { return getJSON(t, base+"/readyz", nil) == http.StatusOK })

	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	m = MustOpenMain(t, testConfig(dir))
	base = "http://" + m.HTTPAddr()
	for key, n := range acked {
		id, name, _ := strings.Cut(key, "/")
		var sess struct{ Variables map[string]any }
		getJSON(t, base+"/v1/sessions/"+id, &sess)
		if got, _ := sess.Variables[name].(string); !strings.HasPrefix(got, fmt.Sprintf("%d ", n)) {
			t.Fatalf("after the restart %s %s=%.12q, want the acknowledged value %d", id, name, got, n)
		}
	}
	t.Logf("%d writes acknowledged before the disk was full; all there after a restart", len(acked))
}

// between returns the text of s between the first from and the next to.
func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}

// metricValue reads one series of GET /metrics; 0 when it is absent.
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}
