package triggers_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the machine's zoneinfo

	"github.com/callctx/callctx/internal/yamldoc"
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
	defs, err := parseDefs("t.yaml", []byte(yaml))
	if err != nil {
		return nil, err
	}
	return triggers.Compile(defs)
}

// parseDefs reads the triggers section of a flows-directory file, in the
// order written, without the file format's schema (package flow checks
// that): what triggers.Compile sees of a file.
func parseDefs(file string, data []byte) ([]yamldoc.Def, error) {
	doc, err := yamldoc.Parse(file, data)
	if err != nil {
		return nil, err
	}
	root, _ := doc.Value.(map[string]any)
	section, _ := root["triggers"].(map[string]any)
	var defs []yamldoc.Def
	for name, v := range section {
		defs = append(defs, yamldoc.Def{Name: name, Doc: doc, Pointer: "/triggers/" + yamldoc.EscapePointer(name), Value: v})
	}
	slices.SortFunc(defs, func(a, b yamldoc.Def) int { return a.Pos().Line - b.Pos().Line })
	return defs, nil
}

// parseDirDefs reads the triggers of every file in dir, by file name.
func parseDirDefs(dir string) ([]yamldoc.Def, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var defs []yamldoc.Def
	for _, e := range entries {
		data, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		d, err := parseDefs(dir+"/"+e.Name(), data)
		if err != nil {
			return nil, err
		}
		defs = append(defs, d...)
	}
	return defs, nil
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
