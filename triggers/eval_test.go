package triggers_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/triggers"
)

// v builds the variables of a case: the value under test is ivr.v.
func v(x any) triggers.Map { return triggers.Map{"ivr.v": x} }

var none = triggers.Map{}

// cust holds a JSON object, for paths into a variable's value.
var cust = triggers.Map{
	"ivr.c": map[string]any{"tier": "gold", "address": map[string]any{"city": "Berlin"}, "orders": []any{"A-1", nil}},
	"ivr.s": `{"tier":"gold"}`,
}

// nowUTC is 08:30 UTC on a Monday in winter: 09:30 in Berlin (CET, +01:00).
const nowUTC = "2025-03-10T08:30:00Z"

type evalCase struct {
	when string
	vars triggers.Map
	want bool
	now  string // default nowUTC
}

// TestTrigger_Eval runs every operator through the real loader, with the
// typing edge cases docs/triggers.md promises. Each case also checks that
// Explain reaches the same result, and that the negated operator gives the
// opposite one.
func TestTrigger_Eval(t *testing.T) {
	groups := map[string][]evalCase{
		"eq/text": {
			{`{var: ivr.v, op: eq, value: gold}`, v("gold"), true, ""},
			{`{var: ivr.v, op: eq, value: gold}`, v("silver"), false, ""},
			{`{var: ivr.v, op: eq, value: gold}`, v("Gold"), false, ""},
			{`{var: ivr.v, op: eq, value: gold, ignore_case: true}`, v("GOLD"), true, ""},
			{`{var: ivr.v, op: eq, value: gold}`, v(" gold "), false, ""},
			{`{var: ivr.v, op: eq, value: gold, trim: true}`, v(" gold\t"), true, ""},
			{`{var: ivr.v, op: eq, value: " gold ", trim: true}`, v("gold"), true, ""},
			{`{var: ivr.v, op: eq, value: ""}`, v(""), true, ""},
			{`{var: ivr.v, op: eq, value: gold}`, none, false, ""},
			{`{var: ivr.v, op: eq, value: straße, ignore_case: true}`, v("STRAßE"), true, ""},
		},
		"eq/numbers": {
			{`{var: ivr.v, op: eq, value: 42}`, v(42.0), true, ""},
			{`{var: ivr.v, op: eq, value: 42}`, v(json.Number("42.0")), true, ""},
			{`{var: ivr.v, op: eq, value: 42}`, v("42"), true, ""},
			{`{var: ivr.v, op: eq, value: 42}`, v("4.2e1"), true, ""},
			{`{var: ivr.v, op: eq, value: 42}`, v(42), true, ""},
			{`{var: ivr.v, op: eq, value: 42}`, v(int64(42)), true, ""},
			{`{var: ivr.v, op: eq, value: 42}`, v(43.0), false, ""},
			{`{var: ivr.v, op: eq, value: "42.0"}`, v("42"), true, ""},
			{`{var: ivr.v, op: eq, value: 42}`, v("042"), false, ""},
			{`{var: ivr.v, op: eq, value: 42}`, v(" 42"), false, ""},
			{`{var: ivr.v, op: eq, value: 42, trim: true}`, v(" 42"), true, ""},
			{`{var: ivr.v, op: eq, value: 42}`, v("+42"), false, ""},
			{`{var: ivr.v, op: eq, value: "007"}`, v(7.0), false, ""},
			{`{var: ivr.v, op: eq, value: "007"}`, v("007"), true, ""},
			{`{var: ivr.v, op: eq, value: 0}`, v(json.Number("-0.0")), true, ""},
			{`{var: ivr.v, op: eq, value: 0.1}`, v(0.1), true, ""},
			{`{var: ivr.v, op: eq, value: "12345678901234567890"}`, v(json.Number("12345678901234567891")), false, ""},
			{`{var: ivr.v, op: eq, value: "12345678901234567891"}`, v(json.Number("12345678901234567891")), true, ""},
			{`{var: ivr.v, op: eq, value: 1}`, v(true), false, ""},
			{`{var: ivr.v, op: eq, value: 1}`, v("one"), false, ""},
		},
		"evaluable": {
			{`{var: ivr.v, op: evaluable}`, v("gold"), true, ""},
			{`{var: ivr.v, op: evaluable}`, v(""), true, ""},
			{`{var: ivr.v, op: evaluable}`, v(false), true, ""},
			{`{var: ivr.v, op: evaluable}`, v(0.0), true, ""},
			{`{var: ivr.v, op: evaluable}`, v([]any{}), true, ""},
			{`{var: ivr.v, op: evaluable}`, v(nil), false, ""},
			{`{var: ivr.v, op: evaluable}`, none, false, ""},
			// A path into the JSON value of a variable.
			{`{var: ivr.c.tier, op: evaluable}`, cust, true, ""},
			{`{var: ivr.c.address.city, op: evaluable}`, cust, true, ""},
			{`{var: ivr.c.address.zip, op: evaluable}`, cust, false, ""},
			{`{var: ivr.c.orders.0, op: evaluable}`, cust, true, ""},
			{`{var: ivr.c.orders.1, op: evaluable}`, cust, false, ""},  // null
			{`{var: ivr.c.orders.2, op: evaluable}`, cust, false, ""},  // out of range
			{`{var: ivr.c.orders.00, op: evaluable}`, cust, false, ""}, // not an index
			{`{var: ivr.c.tier.x, op: evaluable}`, cust, false, ""},    // into a string
			{`{var: ivr.s.tier, op: evaluable}`, cust, false, ""},      // JSON text is not parsed
			// The variable of the exact name wins over a path.
			{`{var: ivr.c.tier, op: evaluable}`, triggers.Map{"ivr.c": map[string]any{"tier": "gold"}, "ivr.c.tier": nil}, false, ""},
		},
		"eq/booleans": {
			{`{var: ivr.v, op: eq, value: true}`, v(true), true, ""},
			{`{var: ivr.v, op: eq, value: true}`, v(false), false, ""},
			{`{var: ivr.v, op: eq, value: true}`, v("true"), true, ""},
			{`{var: ivr.v, op: eq, value: false}`, v("false"), true, ""},
			{`{var: ivr.v, op: eq, value: true}`, v("TRUE"), false, ""},
			{`{var: ivr.v, op: eq, value: true, ignore_case: true}`, v("TRUE"), true, ""},
			{`{var: ivr.v, op: eq, value: true, trim: true}`, v(" true "), true, ""},
			{`{var: ivr.v, op: eq, value: true}`, v("yes"), false, ""},
			{`{var: ivr.v, op: eq, value: true}`, v("1"), false, ""},
			{`{var: ivr.v, op: eq, value: true}`, v(1.0), false, ""},
			{`{var: ivr.v, op: eq, value: "true"}`, v(true), true, ""},
			{`{var: ivr.v, op: eq, value: "true"}`, v("true"), true, ""},
			{`{var: ivr.v, op: eq, value: true}`, none, false, ""},
		},
		"eq/null-arrays-objects": {
			{`{var: ivr.v, op: eq, value: null}`, v(nil), true, ""},
			{`{var: ivr.v, op: eq, value: null}`, none, false, ""},
			{`{var: ivr.v, op: eq, value: ""}`, v(nil), false, ""},
			{`{var: ivr.v, op: eq, value: [a, b]}`, v([]any{"a", "b"}), true, ""},
			{`{var: ivr.v, op: eq, value: [a, b]}`, v([]any{"b", "a"}), false, ""},
			{`{var: ivr.v, op: eq, value: [a, b]}`, v([]any{"a"}), false, ""},
			{`{var: ivr.v, op: eq, value: [1, "2"]}`, v([]any{"1", 2.0}), true, ""},
			{`{var: ivr.v, op: eq, value: [A], ignore_case: true}`, v([]any{"a"}), true, ""},
			{`{var: ivr.v, op: eq, value: [1]}`, v(1.0), false, ""},
			{`{var: ivr.v, op: eq, value: []}`, v(""), false, ""},
			{`{var: ivr.v, op: eq, value: {a: 1, b: [true]}}`, v(map[string]any{"a": "1", "b": []any{"true"}}), true, ""},
			{`{var: ivr.v, op: eq, value: {a: 1}}`, v(map[string]any{"a": 1.0, "b": 2.0}), false, ""},
			{`{var: ivr.v, op: eq, value: {a: 1}}`, v(map[string]any{"b": 1.0}), false, ""},
			{`{var: ivr.v, op: eq, value: {}}`, v(nil), false, ""},
		},
		"order": {
			{`{var: ivr.v, op: gt, value: 9}`, v(10.0), true, ""},
			{`{var: ivr.v, op: gt, value: 9}`, v("10"), true, ""},
			{`{var: ivr.v, op: gt, value: "9"}`, v("10"), true, ""},
			{`{var: ivr.v, op: gt, value: 10}`, v(10.0), false, ""},
			{`{var: ivr.v, op: ge, value: 10}`, v(json.Number("10")), true, ""},
			{`{var: ivr.v, op: lt, value: 10}`, v(9.99), true, ""},
			{`{var: ivr.v, op: le, value: 1.5}`, v("1.50"), true, ""},
			{`{var: ivr.v, op: lt, value: -1}`, v(json.Number("-1e400")), true, ""},
			{`{var: ivr.v, op: gt, value: 1e308}`, v(json.Number("1e400")), true, ""},
			{`{var: ivr.v, op: gt, value: "12345678901234567890"}`, v(json.Number("12345678901234567891")), true, ""},
			{`{var: ivr.v, op: gt, value: 0.001}`, v(json.Number("0.0011")), true, ""},
			{`{var: ivr.v, op: lt, value: 0.001}`, v(json.Number("0.00099")), true, ""},
			{`{var: ivr.v, op: gt, value: a}`, v("b"), true, ""},
			{`{var: ivr.v, op: gt, value: a}`, v("B"), false, ""},
			{`{var: ivr.v, op: gt, value: a, ignore_case: true}`, v("B"), true, ""},
			{`{var: ivr.v, op: gt, value: "5"}`, v("007"), false, ""},
			{`{var: ivr.v, op: lt, value: abc}`, v(5.0), true, ""},
			{`{var: ivr.v, op: gt, value: 1}`, v(true), false, ""},
			{`{var: ivr.v, op: lt, value: 1}`, v(true), false, ""},
			{`{var: ivr.v, op: gt, value: 1}`, v([]any{2.0}), false, ""},
			{`{var: ivr.v, op: gt, value: 1}`, v(nil), false, ""},
			{`{var: ivr.v, op: gt, value: 1}`, none, false, ""},
			{`{var: ivr.v, op: le, value: 1}`, none, false, ""},
		},
		"regex": {
			{`{var: ivr.v, op: regex, value: "^[A-Z]{2}[0-9]{5}$"}`, v("AB12345"), true, ""},
			{`{var: ivr.v, op: regex, value: "^[A-Z]{2}[0-9]{5}$"}`, v("ab12345"), false, ""},
			{`{var: ivr.v, op: regex, value: "^[A-Z]{2}[0-9]{5}$", ignore_case: true}`, v("ab12345"), true, ""},
			{`{var: ivr.v, op: regex, value: "AB"}`, v("xxAByy"), true, ""},
			{`{var: ivr.v, op: regex, value: "^123"}`, v(12345.0), true, ""},
			{`{var: ivr.v, op: regex, value: "^1\\.5$"}`, v(json.Number("1.5")), true, ""},
			{`{var: ivr.v, op: regex, value: "true"}`, v(true), false, ""},
			{`{var: ivr.v, op: regex, value: "^a$", trim: true}`, v(" a "), true, ""},
			{`{var: ivr.v, op: regex, value: "."}`, none, false, ""},
		},
		"like": {
			{`{var: ivr.v, op: like, value: "hello%"}`, v("hello world"), true, ""},
			{`{var: ivr.v, op: like, value: "%world"}`, v("hello world"), true, ""},
			{`{var: ivr.v, op: like, value: "hello"}`, v("hello world"), false, ""},
			{`{var: ivr.v, op: like, value: "h_llo"}`, v("hallo"), true, ""},
			{`{var: ivr.v, op: like, value: "h_llo"}`, v("hllo"), false, ""},
			{`{var: ivr.v, op: like, value: "h_llo"}`, v("hällo"), true, ""},
			{`{var: ivr.v, op: like, value: "100\\%"}`, v("100%"), true, ""},
			{`{var: ivr.v, op: like, value: "100\\%"}`, v("1000"), false, ""},
			{`{var: ivr.v, op: like, value: "a\\_b"}`, v("a_b"), true, ""},
			{`{var: ivr.v, op: like, value: "a\\_b"}`, v("axb"), false, ""},
			{`{var: ivr.v, op: like, value: "a.c"}`, v("abc"), false, ""},
			{`{var: ivr.v, op: like, value: "Hello"}`, v("hello"), false, ""},
			{`{var: ivr.v, op: like, value: "Hello", ignore_case: true}`, v("hello"), true, ""},
			{`{var: ivr.v, op: like, value: "a%b"}`, v("a\nb"), true, ""},
			{`{var: ivr.v, op: like, value: "42"}`, v("42.0"), false, ""},
			{`{var: ivr.v, op: like, value: "4%"}`, v(42.0), true, ""},
			{`{var: ivr.v, op: like, value: "%"}`, none, false, ""},
		},
		"contains": {
			{`{var: ivr.v, op: contains, value: ell}`, v("hello"), true, ""},
			{`{var: ivr.v, op: contains, value: ELL}`, v("hello"), false, ""},
			{`{var: ivr.v, op: contains, value: ELL, ignore_case: true}`, v("hello"), true, ""},
			{`{var: ivr.v, op: contains, value: k, ignore_case: true}`, v("\u212a"), true, ""}, // Kelvin sign folds to k
			{`{var: ivr.v, op: contains, value: ""}`, v("x"), true, ""},
			{`{var: ivr.v, op: contains, value: vip}`, v([]any{"gold", "vip"}), true, ""},
			{`{var: ivr.v, op: contains, value: vip}`, v([]any{"gold vip"}), false, ""},
			{`{var: ivr.v, op: contains, value: "2"}`, v([]any{1.0, 2.0}), true, ""},
			{`{var: ivr.v, op: contains, value: true}`, v([]any{"true"}), true, ""},
			{`{var: ivr.v, op: contains, value: VIP, ignore_case: true}`, v([]any{"vip"}), true, ""},
			{`{var: ivr.v, op: contains, value: 49}`, v("+4930123"), true, ""},
			{`{var: ivr.v, op: contains, value: "23"}`, v(1234.0), true, ""},
			{`{var: ivr.v, op: contains, value: vip}`, v(map[string]any{"vip": true}), false, ""},
			{`{var: ivr.v, op: contains, value: t}`, v(true), false, ""},
			{`{var: ivr.v, op: contains, value: x}`, none, false, ""},
		},
		"starts_with/ends_with": {
			{`{var: ivr.v, op: starts_with, value: "+49"}`, v("+4930123456"), true, ""},
			{`{var: ivr.v, op: starts_with, value: "+49"}`, v("+4330123456"), false, ""},
			{`{var: ivr.v, op: starts_with, value: 49}`, v(4930.0), true, ""},
			{`{var: ivr.v, op: starts_with, value: he}`, v("Hello"), false, ""},
			{`{var: ivr.v, op: starts_with, value: he, ignore_case: true}`, v("Hello"), true, ""},
			{`{var: ivr.v, op: starts_with, value: hello, ignore_case: true}`, v("He"), false, ""},
			{`{var: ivr.v, op: starts_with, value: a}`, v([]any{"a"}), false, ""},
			{`{var: ivr.v, op: ends_with, value: .de}`, v("a@b.de"), true, ""},
			{`{var: ivr.v, op: ends_with, value: .de}`, v("a@b.de "), false, ""},
			{`{var: ivr.v, op: ends_with, value: .de, trim: true}`, v("a@b.de "), true, ""},
			{`{var: ivr.v, op: ends_with, value: .DE, ignore_case: true}`, v("a@b.de"), true, ""},
			{`{var: ivr.v, op: ends_with, value: äÖ, ignore_case: true}`, v("xÄö"), true, ""},
			{`{var: ivr.v, op: ends_with, value: long-suffix, ignore_case: true}`, v("x"), false, ""},
			{`{var: ivr.v, op: ends_with, value: e}`, v(true), false, ""},
			{`{var: ivr.v, op: ends_with, value: x}`, none, false, ""},
		},
		"in": {
			{`{var: ivr.v, op: in, value: [a, b, c]}`, v("b"), true, ""},
			{`{var: ivr.v, op: in, value: [a, b, c]}`, v("d"), false, ""},
			{`{var: ivr.v, op: in, value: [a, b, c]}`, v("B"), false, ""},
			{`{var: ivr.v, op: in, value: [a, b, c], ignore_case: true}`, v("B"), true, ""},
			{`{var: ivr.v, op: in, value: ["1", "2"]}`, v(2.0), true, ""},
			{`{var: ivr.v, op: in, value: [1, 2]}`, v("2.0"), true, ""},
			{`{var: ivr.v, op: in, value: ["true"]}`, v(true), true, ""},
			{`{var: ivr.v, op: in, value: [[a]]}`, v([]any{"a"}), true, ""},
			{`{var: ivr.v, op: in, value: []}`, v("a"), false, ""},
			{`{var: ivr.v, op: in, value: [a]}`, none, false, ""},
			// ten plain strings: compiled into a set; the numbers and booleans stay a list
			{`{var: ivr.v, op: in, value: [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, 7, true]}`, v("s7"), true, ""},
			{`{var: ivr.v, op: in, value: [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, 7, true]}`, v("7.0"), true, ""},
			{`{var: ivr.v, op: in, value: [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, 7, true]}`, v("true"), true, ""},
			{`{var: ivr.v, op: in, value: [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, 7, true]}`, v("s10"), false, ""},
			{`{var: ivr.v, op: in, value: [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, 7, true], trim: true}`, v(" s3 "), true, ""},
			{`{var: ivr.v, op: in, value: [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, 7, true]}`, v(7.0), true, ""},
		},
		"set": {
			{`{var: ivr.v, op: set}`, v("x"), true, ""},
			{`{var: ivr.v, op: set}`, v(""), true, ""},
			{`{var: ivr.v, op: set}`, v(nil), true, ""},
			{`{var: ivr.v, op: set}`, v(false), true, ""},
			{`{var: ivr.v, op: set}`, none, false, ""},
		},
		"empty": {
			{`{var: ivr.v, op: empty}`, none, true, ""},
			{`{var: ivr.v, op: empty}`, v(nil), true, ""},
			{`{var: ivr.v, op: empty}`, v(""), true, ""},
			{`{var: ivr.v, op: empty}`, v([]any{}), true, ""},
			{`{var: ivr.v, op: empty}`, v(map[string]any{}), true, ""},
			{`{var: ivr.v, op: empty}`, v("  "), false, ""},
			{`{var: ivr.v, op: empty, trim: true}`, v("  "), true, ""},
			{`{var: ivr.v, op: empty}`, v("a"), false, ""},
			{`{var: ivr.v, op: empty}`, v(0.0), false, ""},
			{`{var: ivr.v, op: empty}`, v(false), false, ""},
			{`{var: ivr.v, op: empty}`, v([]any{nil}), false, ""},
		},
		"null": {
			{`{var: ivr.v, op: "null"}`, v(nil), true, ""},
			{`{var: ivr.v, op: "null"}`, none, true, ""},
			{`{var: ivr.v, op: "null"}`, v(""), false, ""},
			{`{var: ivr.v, op: "null"}`, v(0.0), false, ""},
			{`{var: ivr.v, op: "null"}`, v("null"), false, ""},
			{`{var: ivr.v, op: null}`, v(nil), true, ""}, // unquoted: YAML null, read as the op "null"
			{`{var: ivr.v, op: null}`, v(1.0), false, ""},
		},
		"before/after now": {
			{`{op: after, value: "09:00", tz: Europe/Berlin}`, none, true, ""},
			{`{op: before, value: "09:00", tz: Europe/Berlin}`, none, false, ""},
			{`{op: after, value: "09:00"}`, none, false, ""},
			{`{op: before, value: "09:00"}`, none, true, ""},
			{`{op: after, value: "09:00", tz: Europe/Berlin}`, none, true, "2025-03-10T08:00:00Z"},
			{`{op: before, value: "09:00", tz: Europe/Berlin}`, none, false, "2025-03-10T08:00:00Z"},
			{`{op: before, value: "09:00", tz: Europe/Berlin}`, none, true, "2025-03-10T07:59:59.999Z"},
			{`{op: after, value: "09:00", tz: Europe/Berlin}`, none, true, "2025-07-10T07:30:00Z"}, // 09:30 CEST
			{`{op: after, value: "09:31", tz: Europe/Berlin}`, none, false, "2025-07-10T07:30:00Z"},
			{`{op: before, value: "2025-03-11"}`, none, true, ""},
			{`{op: after, value: "2025-03-10"}`, none, true, ""},
			{`{op: before, value: "2025-03-10"}`, none, false, ""},
			{`{op: after, value: "2025-03-11", tz: Europe/Berlin}`, none, true, "2025-03-10T23:30:00Z"},
			{`{op: after, value: "2025-03-11"}`, none, false, "2025-03-10T23:30:00Z"},
			{`{op: after, value: "22:00", tz: America/New_York}`, none, true, "2025-03-11T02:30:00Z"}, // 22:30 EDT
		},
		"before/after var": {
			{`{var: ivr.v, op: before, value: "09:00", tz: Europe/Berlin}`, v("2025-03-10T07:00:00Z"), true, ""},
			{`{var: ivr.v, op: after, value: "09:00", tz: Europe/Berlin}`, v("2025-03-10T09:00:00+01:00"), true, ""},
			{`{var: ivr.v, op: before, value: "09:00", tz: Europe/Berlin}`, v("2025-03-10T09:00:00+01:00"), false, ""},
			{`{var: ivr.v, op: before, value: "09:00", trim: true}`, v(" 2025-03-10T07:00:00Z "), true, ""},
			{`{var: ivr.v, op: after, value: "2025-03-10"}`, v("2025-03-10T00:00:00.000001Z"), true, ""},
			{`{var: ivr.v, op: before, value: "2025-03-10"}`, v("2025-03-09"), true, ""},
			{`{var: ivr.v, op: after, value: "2025-03-10"}`, v("2025-03-10"), true, ""},
			{`{var: ivr.v, op: before, value: "09:00"}`, v("2025-03-09"), false, ""},
			{`{var: ivr.v, op: after, value: "09:00"}`, v("2025-03-09"), false, ""},
			{`{var: ivr.v, op: before, value: "09:00"}`, v("garbage"), false, ""},
			{`{var: ivr.v, op: after, value: "09:00"}`, v("garbage"), false, ""},
			{`{var: ivr.v, op: after, value: "09:00"}`, v(1741600000.0), false, ""},
			{`{var: ivr.v, op: before, value: "09:00"}`, none, false, ""},
			{`{var: ivr.v, op: after, value: "09:00"}`, none, false, ""},
		},
		"combine": {
			{`{all: []}`, none, true, ""},
			{`{any: []}`, none, false, ""},
			{`{all: [{var: ivr.a, op: set}, {var: ivr.b, op: set}]}`, triggers.Map{"ivr.a": 1.0, "ivr.b": 1.0}, true, ""},
			{`{all: [{var: ivr.a, op: set}, {var: ivr.b, op: set}]}`, triggers.Map{"ivr.a": 1.0}, false, ""},
			{`{any: [{var: ivr.a, op: set}, {var: ivr.b, op: set}]}`, triggers.Map{"ivr.b": 1.0}, true, ""},
			{`{any: [{var: ivr.a, op: set}, {var: ivr.b, op: set}]}`, none, false, ""},
			{`{not: {var: ivr.a, op: set}}`, none, true, ""},
			{`{not: {not: {var: ivr.a, op: set}}}`, none, false, ""},
			{`{any: [{all: [{var: ivr.a, op: eq, value: 1}, {not: {var: ivr.b, op: set}}]}, {var: ivr.c, op: set}]}`, triggers.Map{"ivr.a": "1"}, true, ""},
		},
	}
	for group, cases := range groups {
		t.Run(group, func(t *testing.T) {
			for _, tc := range cases {
				now := nowUTC
				if tc.now != "" {
					now = tc.now
				}
				name := fmt.Sprintf("%s/%v@%s", tc.when, map[string]any(tc.vars), now)
				t.Run(name, func(t *testing.T) {
					tr := mustTrigger(t, tc.when)
					at := mustTime(t, now)
					if got := tr.Eval(tc.vars, at); got != tc.want {
						t.Fatalf("Eval=%v, want %v", got, tc.want)
					}
					if got := tr.Explain(tc.vars, at).Result; got != tc.want {
						t.Fatalf("Explain().Result=%v, want %v", got, tc.want)
					}
					if neg, ok := negated(tc.when); ok {
						if got := mustTrigger(t, neg).Eval(tc.vars, at); got != !tc.want {
							t.Fatalf("negated %s: Eval=%v, want %v", neg, got, !tc.want)
						}
					}
				})
			}
		})
	}
}

// negated rewrites a comparison with a positive operator to its negative
// twin, to check that every negation is exact.
func negated(when string) (string, bool) {
	if !strings.HasPrefix(when, "{var:") {
		return "", false // only single comparisons
	}
	for pos, neg := range map[string]string{
		"op: eq,": "op: ne,", "op: contains,": "op: not_contains,", "op: starts_with,": "op: not_starts_with,",
		"op: ends_with,": "op: not_ends_with,", "op: in,": "op: not_in,", "op: set}": "op: not_set}",
		"op: empty}": "op: not_empty}", `op: "null"}`: "op: not_null}", "op: empty,": "op: not_empty,",
		"op: evaluable}": "op: not_evaluable}",
	} {
		if i := strings.Index(when, pos); i >= 0 {
			return when[:i] + neg + when[i+len(pos):], true
		}
	}
	return "", false
}

func TestTrigger_Eval_references(t *testing.T) {
	set := mustCompile(t, `
triggers:
  has-email:
    when: {var: ivr.email, op: not_empty}
  premium:
    when:
      all:
        - trigger: has-email
        - {var: ivr.premium, op: eq, value: true}
  not-premium:
    when: {not: {trigger: premium}}
`)
	cases := []struct {
		vars             triggers.Map
		premium, regular bool
	}{
		{triggers.Map{"ivr.email": "a@b.c", "ivr.premium": true}, true, false},
		{triggers.Map{"ivr.email": "a@b.c", "ivr.premium": false}, false, true},
		{triggers.Map{"ivr.email": "", "ivr.premium": true}, false, true},
		{triggers.Map{}, false, true},
	}
	now := time.Now()
	for _, tc := range cases {
		p, _ := set.Trigger("premium")
		r, _ := set.Trigger("not-premium")
		if got := p.Eval(tc.vars, now); got != tc.premium {
			t.Errorf("premium(%v)=%v, want %v", tc.vars, got, tc.premium)
		}
		if got := r.Eval(tc.vars, now); got != tc.regular {
			t.Errorf("not-premium(%v)=%v, want %v", tc.vars, got, tc.regular)
		}
	}
	p, _ := set.Trigger("not-premium")
	if got, want := fmt.Sprint(p.Vars()), "[ivr.email ivr.premium]"; got != want {
		t.Errorf("Vars()=%s, want %s", got, want)
	}
	// evaluable reads the variables its name is a path into, too.
	ev := mustCompile(t, `triggers: {x: {when: {var: ivr.c.address.city, op: evaluable}}}`)
	x, _ := ev.Trigger("x")
	if got, want := fmt.Sprint(x.Vars()), "[ivr.c ivr.c.address ivr.c.address.city]"; got != want {
		t.Errorf("evaluable Vars()=%s, want %s", got, want)
	}
	if p.UsesClock() {
		t.Error("UsesClock()=true for a trigger without before/after")
	}
	if got, want := set.Len(), 3; got != want {
		t.Errorf("Len()=%d, want %d", got, want)
	}
	var names []string
	for _, tr := range set.All() {
		names = append(names, tr.Name)
	}
	if got, want := fmt.Sprint(names), "[has-email not-premium premium]"; got != want {
		t.Errorf("All()=%s, want %s", got, want)
	}
}

func TestTrigger_UsesClock(t *testing.T) {
	set := mustCompile(t, `
triggers:
  office-hours:
    when: {all: [{op: after, value: "09:00", tz: Europe/Berlin}, {op: before, value: "17:00", tz: Europe/Berlin}]}
  open-and-known:
    when: {all: [{trigger: office-hours}, {var: ivr.email, op: set}]}
  callback-due:
    when: {var: ivr.callback_at, op: before, value: "2025-01-01"}
`)
	for name, want := range map[string]bool{"office-hours": true, "open-and-known": true, "callback-due": false} {
		tr, _ := set.Trigger(name)
		if got := tr.UsesClock(); got != want {
			t.Errorf("%s.UsesClock()=%v, want %v", name, got, want)
		}
	}
}

func TestSet_nil(t *testing.T) {
	var s *triggers.Set
	if _, ok := s.Trigger("x"); ok {
		t.Error("nil set has a trigger")
	}
	if s.Len() != 0 || s.All() != nil {
		t.Error("nil set is not empty")
	}
}
