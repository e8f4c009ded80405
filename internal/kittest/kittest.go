// Package kittest finds the tools the integrator's kit tests run: node and
// the npm packages that scripts/ensure-kit-deps.sh installs from
// package-lock.json. A missing tool ends the test as testenv.Missing says:
// a skip naming make test, a failure when CI is set.
package kittest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/callctx/callctx/internal/testenv"
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
	return testenv.LookPath(tb, "node")
}

// Bin returns the path of an npm package's command, such as newman or
// spectral.
func Bin(tb testing.TB, name string) string {
	tb.Helper()
	Node(tb) // every npm command here runs on node
	p := filepath.Join(Root(tb), "node_modules", ".bin", name)
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(tb, "the npm package providing "+name)
	}
	return p
}

// Package returns the directory of an installed npm package.
func Package(tb testing.TB, name string) string {
	tb.Helper()
	Node(tb)
	p := filepath.Join(Root(tb), "node_modules", name)
	if _, err := os.Stat(filepath.Join(p, "package.json")); err != nil {
		testenv.Missing(tb, "the npm package "+name)
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
