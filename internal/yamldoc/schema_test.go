package yamldoc_test

import (
	"os"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/yamldoc"
)

func mustSchema(tb testing.TB) *yamldoc.Schema {
	tb.Helper()
	data, err := os.ReadFile("testdata/person.schema.json")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := yamldoc.CompileSchema("https://example.test/person.schema.json", data)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestSchema_Validate(t *testing.T) {
	s := mustSchema(t)
	cases := []struct {
		name, src string
		want      []string
	}{
		{"OK", "name: Jane\nphone: \"+4930123456\"\ntags: {vip: true}\n", nil},
		{"MissingRequired", "phone: \"+4930123456\"\n", []string{`f.yaml:1:1: missing field "name"`}},
		{"EmptyFileIsAnObject", "", []string{`f.yaml:1:1: missing field "name"`}},
		{"UnknownFields", "name: Jane\nnmae: x\nemail: y\n", []string{
			`f.yaml:2:1: /nmae: unknown field "nmae"; allowed here: age, name, phone, retired, tags`,
			`f.yaml:3:1: /email: unknown field "email"; allowed here: age, name, phone, retired, tags`,
		}},
		{"PatternMessage", "name: Jane\nphone: \"030 123\"\n", []string{`f.yaml:2:1: /phone: a phone number in E.164 form, e.g. +4930123456`}},
		{"ErrorMessage", "name: Jane\nage: 1.5\n", []string{`f.yaml:2:1: /age: age is a whole number of years`}},
		{"Type", "name: [Jane]\n", []string{`f.yaml:1:1: /name: expected string, but got array`}},
		{"FalseSchema", "name: Jane\nretired: true\n", []string{`f.yaml:2:1: /retired: field not allowed here`}},
		{"PropertyNames", "name: Jane\ntags:\n  ok: true\n  Not OK/x: true\n", []string{
			`f.yaml:4:3: /tags/Not OK~1x: invalid name: does not match pattern '^[a-z]+$'`,
		}},
		{"Nested", "name: Jane\ntags:\n  vip: \"yes\"\n", []string{`f.yaml:3:3: /tags/vip: expected boolean, but got string`}},
		{"NotAnObject", "- Jane\n", []string{`f.yaml:1:1: expected object, but got array`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := mustParse(t, tc.src)
			var got []string
			for _, e := range s.Validate(d) {
				got = append(got, e.Error())
			}
			if g, w := strings.Join(got, "\n"), strings.Join(tc.want, "\n"); g != w {
				t.Fatalf("Validate:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

func TestCompileSchema_errors(t *testing.T) {
	for name, src := range map[string]string{
		"NotJSON":       `{"type": `,
		"BadMetaSchema": `{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": 12}`,
	} {
		if _, err := yamldoc.CompileSchema("https://example.test/"+name, []byte(src)); err == nil {
			t.Errorf("%s: CompileSchema succeeded", name)
		}
	}
}
