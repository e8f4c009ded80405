// Package kittest finds the tools the integrator's kit tests run: node and
// the npm packages that scripts/ensure-kit-deps.sh installs from
// package-lock.json. A missing tool fails the test with what to run; it is
// never a reason to skip.
package kittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Root returns the repository's root directory: the nearest parent of the
// working directory holding go.mod.
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("kittest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Node returns the path of node.
func Node(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		tb.Fatal("node is not installed; the kit's tests need Node.js 20 or newer (see scripts/ensure-kit-deps.sh)")
	}
	return p
}

// Bin returns the path of an npm package's command, such as newman or
// spectral.
func Bin(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(Root(tb), "node_modules", ".bin", name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("%s is not installed: run `make deps` (scripts/ensure-kit-deps.sh runs npm ci)", name)
	}
	return p
}

// Package returns the directory of an installed npm package.
func Package(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(Root(tb), "node_modules", name)
	if _, err := os.Stat(filepath.Join(p, "package.json")); err != nil {
		tb.Fatalf("the npm package %s is not installed: run `make deps` (scripts/ensure-kit-deps.sh runs npm ci)", name)
	}
	return p
}

// Sipp returns the path of sipp (Debian's sip-tester, which
// scripts/ensure-sipp.sh installs).
func Sipp(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		tb.Fatal("sipp is not installed: run `make deps` (scripts/ensure-sipp.sh installs Debian's sip-tester)")
	}
	return p
}

// OutputDir returns test-output/<name> under the root, created empty: the
// place for what a test keeps after it ends (reports, screenshots). It is
// ignored by git.
func OutputDir(tb testing.TB, name string) string {
	tb.Helper()
	dir := filepath.Join(Root(tb), "test-output", name)
	if err := os.RemoveAll(dir); err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}
