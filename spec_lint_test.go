package callctx_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/kittest"
)

// spectralIssue is one finding of `spectral lint -f json`.
type spectralIssue struct {
	Code     string   `json:"code"`
	Message  string   `json:"message"`
	Path     []string `json:"path"`
	Severity int      `json:"severity"` // 0 error, 1 warn, 2 info, 3 hint
}

// lint runs Spectral with the repository's ruleset over a file.
func lint(t *testing.T, file string) []spectralIssue {
	t.Helper()
	root := kittest.Root(t)
	cmd := exec.Command(kittest.Bin(t, "spectral"), "lint", file,
		"--ruleset", filepath.Join(root, ".spectral.yaml"), "--format", "json", "--quiet", "--fail-severity", "hint")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run spectral: %v", err)
	}
	var issues []spectralIssue
	if err := json.Unmarshal(stdout.Bytes(), &issues); err != nil {
		t.Fatalf("spectral did not print JSON (%v): %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
	}
	return issues
}

// TestSpectral_OpenAPI lints openapi.yaml: every operation has an
// operationId, a summary, a description, examples, an explicit auth
// decision and its error responses as problem+json.
func TestSpectral_OpenAPI(t *testing.T) {
	issues := lint(t, "openapi.yaml")
	for _, is := range issues {
		t.Errorf("openapi.yaml: %s at %s: %s", is.Code, strings.Join(is.Path, "."), is.Message)
	}
}

// TestSpectral_RulesetCatches checks that each of callctx's own rules fires
// on a spec written to break it, so a rule that silently matches nothing
// cannot pass for a check.
func TestSpectral_RulesetCatches(t *testing.T) {
	issues := lint(t, filepath.Join("testdata", "spectral", "violations.yaml"))
	got := map[string]int{}
	for _, is := range issues {
		got[is.Code]++
	}
	want := map[string]int{
		"callctx-operation-summary":  1,
		"callctx-operation-auth":     1,
		"callctx-request-examples":   1,
		"callctx-response-examples":  1,
		"callctx-parameter-examples": 1,
		"callctx-secured-errors":     2, // 401 and 403
		"callctx-body-errors":        2, // 413 and 415; 400 and 422 are there
		"callctx-not-found":          1,
		"callctx-problem-json":       1,
	}
	var codes []string
	for code := range want {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, code := range codes {
		if got[code] != want[code] {
			t.Errorf("%s reported %d times, want %d", code, got[code], want[code])
		}
	}
	for code, n := range got {
		if _, ok := want[code]; !ok {
			t.Errorf("unexpected finding %s (%d times)", code, n)
		}
	}
}
