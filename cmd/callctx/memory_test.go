package main_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestServe_MemoryLimit: memory.limit holds a server with 10,000 active calls, each with
// the call's variables and five of a CRM's, to its limit plus what the runtime does not
// count (the executable's and the bbolt file's pages): with a limit of 32 MiB it stays
// under 120 MB of resident memory (about 90 MB on the development machine), where without
// one it takes about 190 MB (docs/performance.md, "Memory").
func TestServe_MemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary with 10,000 calls")
	}
	const calls, limitMB = 10000, 120
	dir := t.TempDir()
	n := startNode(t, buildCallctx(t), "callctx", fmt.Sprintf("data: {dir: %s}\nflows: {dir: %s}\nsip: {listen: \"\"}\nhttp: {access_log: false}\nmemory: {limit: %d}\n",
		dir, filepath.Join(dir, "no-flows"), 32<<20))
	idle := rssKB(t, n)
	createCalls(t, n.URL, "mem", calls)
	rss := rssKB(t, n)
	t.Logf("RSS idle %d KB, with %d active calls %d KB: %.0f bytes per call", idle, calls, rss, float64(rss-idle)*1024/calls)
	if rss > limitMB*1024 {
		t.Errorf("RSS with %d active calls is %.1f MB, want < %d MB", calls, float64(rss)/1024, limitMB)
	}
}

// createCalls creates count active calls prefix-0 … on the server at base, each seeded with
// five variables, from 16 clients.
func createCalls(t *testing.T, base, prefix string, count int) {
	t.Helper()
	const clients = 16
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := c; i < count; i += clients {
				body := fmt.Sprintf(`{"id":"%s-%d","from":"+4930%07d","to":"+4940555000","variables":{"ivr.email":"caller%d@example.com","ivr.premium":true,"ivr.language":"de","ivr.customerId":"C-%06d","ivr.reason":"order status"}}`, prefix, i, i, i, i)
				res, err := http.Post(base+"/v1/calls", "application/json", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				res.Body.Close()
				if res.StatusCode != http.StatusCreated {
					errs <- fmt.Errorf("POST /v1/calls: %d", res.StatusCode)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// rssKB returns the resident memory of n's process in KB, from /proc.
func rssKB(t *testing.T, n *node) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb
		}
	}
	t.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}
