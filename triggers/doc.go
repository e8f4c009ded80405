// Package triggers holds named conditions over session variables: their
// compilation from definitions, their evaluation and its explanation.
//
// # Definitions
//
// Triggers are written in the triggers section of the flows directory files;
// package flow owns that format (the files, their JSON Schema, names defined
// once) and hands Compile the definitions with their positions. Compile
// checks the conditions again, so that every problem is a yamldoc.Error
// naming file, line, column and the JSON pointer of the field.
//
// A trigger is {description?, when: condition}. A condition is a comparison
// {var, op, value, ignore_case?, trim?, tz?}, or {all: [...]}, {any: [...]},
// {not: condition}, or {trigger: name}; a cycle of trigger references is an
// error.
//
// # Typing rules
//
// Variables hold decoded JSON (nil, bool, string, float64 or json.Number,
// []any, map[string]any; int and int64 are accepted too). docs/triggers.md
// explains these rules with examples; in short:
//
//   - Missing variable: every positive comparison is false (eq, gt, ge, lt,
//     le, regex, like, contains, starts_with, ends_with, in, before, after);
//     set is false; empty and null are true.
//   - Negations: ne and every not_… operator is exactly the negation of its
//     positive twin, for every input including a missing variable.
//   - set: the variable exists, whatever its value (null and "" included).
//     null: missing or null. empty: missing, null, "", [] or {}.
//   - evaluable: var, read as a path if no variable has that name (the
//     longest variable that is a dot-prefix of it, then object keys and
//     array indexes into its JSON value), reaches a value other than null.
//   - Numeric strings are strings that are JSON number literals ("42",
//     "-1.5", "1e3"; not "007", "+49", " 1", "0x1F"). When both sides are
//     numbers or numeric strings, eq, ne, in and gt…le compare by value,
//     exactly for decimal literals (no float64 rounding).
//   - Booleans equal booleans and the strings "true" and "false" (any case
//     with ignore_case); nothing else. Two strings compare as text.
//   - eq otherwise: strings as text, null equals null, arrays element by
//     element and objects key by key with these same rules; any other mix is
//     not equal.
//   - gt, ge, lt, le otherwise: text order (byte-wise, or by lower-cased
//     runes with ignore_case) when both sides are strings or numbers (a
//     number's text is its JSON form); booleans, null, arrays and objects
//     are not ordered, so the comparison is false.
//   - contains: on an array, an element equal to the value (equality rules);
//     on a string or number, a substring of its text; otherwise false.
//     starts_with, ends_with, regex (RE2, unanchored) and like (%, _ and \
//     escapes; whole text) work on the text of strings and numbers only.
//   - ignore_case makes every text comparison case-insensitive (Unicode
//     simple folding; regex and like get (?i)). trim strips white space at
//     both ends of every string on both sides (not of regex/like patterns)
//     before anything else, including the numeric and boolean tests.
//   - before/after compare a time of day "HH:MM" or a date "YYYY-MM-DD" in
//     tz (an IANA zone, default UTC) with the variable, an RFC 3339 timestamp
//     (or a date, against a date), or with the time the caller passes when
//     there is no var. before is strictly earlier, after is at or later.
//
// # Evaluation
//
// Compile prepares everything once: regular expressions and like patterns
// compiled, time zones loaded, in lists turned into sets, references
// resolved. Trigger.Eval then reads only the variables, never the disk or
// the clock, and does not allocate for comparisons of strings, booleans and
// numbers compared by value. Trigger.Explain returns the same result with an
// Explanation of every condition.
package triggers
