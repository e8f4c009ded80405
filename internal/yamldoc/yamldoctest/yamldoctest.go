// Package yamldoctest checks the errors of a directory of YAML files in
// tests: the flows directory and the triggers in it report theirs as
// yamldoc.Errors, each with a file and a line.
package yamldoctest

import (
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/yamldoc"
)

// MustErrors returns err's errors as text with dir's prefix cut from the
// file names, one an element. The test fails when err is not
// yamldoc.Errors, or an error has no line or a file outside dir.
func MustErrors(tb testing.TB, err error, dir string) []string {
	tb.Helper()
	list := yamldoc.AsErrors(err)
	if list == nil {
		tb.Fatalf("error %T %v, want yamldoc.Errors", err, err)
	}
	got := make([]string, len(list))
	for i, e := range list {
		got[i] = strings.TrimPrefix(e.Error(), dir+"/")
		if e.Line < 1 || !strings.HasPrefix(e.File, dir+"/") {
			tb.Errorf("error without file and line: %#v", e)
		}
	}
	return got
}
