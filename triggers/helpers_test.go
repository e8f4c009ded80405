package triggers_test

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
	_ "time/tzdata" // the tests must not depend on the machine's zoneinfo

	"github.com/callctx/callctx/triggers"
)

// mustCompile compiles the YAML of a flows directory file held in memory.
func mustCompile(tb testing.TB, yaml string) *triggers.Set {
	tb.Helper()
	set, err := compile(yaml)
	if err != nil {
		tb.Fatalf("compile:\n%s\nerror:\n%v", yaml, err)
	}
	return set
}

func compile(yaml string) (*triggers.Set, error) {
	d, err := triggers.ParseFS(fstest.MapFS{"t.yaml": {Data: []byte(yaml)}})
	if err != nil {
		return nil, err
	}
	return triggers.Compile(d)
}

// mustTrigger compiles a single trigger "t" whose condition is the YAML flow
// mapping when.
func mustTrigger(tb testing.TB, when string) *triggers.Trigger {
	tb.Helper()
	set := mustCompile(tb, "triggers:\n  t:\n    when: "+strings.TrimSpace(when)+"\n")
	t, ok := set.Trigger("t")
	if !ok {
		tb.Fatal("trigger t missing")
	}
	return t
}

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}
