package triggers_test

import (
	"os"
	"path/filepath"
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

// parseDefs reads the triggers and calendars sections of a flows-directory
// file, in the order written, without the file format's schema (package
// flow checks that): what triggers.Compile sees of a file. Calendars import
// files from testdata.
func parseDefs(file string, data []byte) (triggers.Defs, error) {
	doc, err := yamldoc.Parse(file, data)
	if err != nil {
		return triggers.Defs{}, err
	}
	root, _ := doc.Value.(map[string]any)
	section := func(name string) []yamldoc.Def {
		m, _ := root[name].(map[string]any)
		var defs []yamldoc.Def
		for k, v := range m {
			defs = append(defs, yamldoc.Def{Name: k, Doc: doc, Pointer: "/" + name + "/" + yamldoc.EscapePointer(k), Value: v})
		}
		slices.SortFunc(defs, func(a, b yamldoc.Def) int { return a.Pos().Line - b.Pos().Line })
		return defs
	}
	return triggers.Defs{
		Triggers:  section("triggers"),
		Calendars: section("calendars"),
		ReadFile:  func(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) },
	}, nil
}

// parseDirDefs reads the definitions of every file in dir, by file name.
func parseDirDefs(dir string) (triggers.Defs, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return triggers.Defs{}, err
	}
	var all triggers.Defs
	for _, e := range entries {
		data, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return triggers.Defs{}, err
		}
		d, err := parseDefs(dir+"/"+e.Name(), data)
		if err != nil {
			return triggers.Defs{}, err
		}
		all.Triggers = append(all.Triggers, d.Triggers...)
		all.Calendars = append(all.Calendars, d.Calendars...)
		all.ReadFile = d.ReadFile
	}
	return all, nil
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
