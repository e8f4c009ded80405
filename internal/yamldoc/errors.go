package yamldoc

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in one file, at one place.
type Error struct {
	File    string // the file's name as the caller gave it
	Line    int    // 1-based; 0 when the YAML parser could not say
	Column  int    // 1-based; 0 when unknown
	Pointer string // JSON pointer (RFC 6901) of the field, "" for the whole document
	Message string
}

// Error formats the problem as "file:line:column: pointer: message", the shape
// editors and CI logs turn into links.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Pointer != "" {
		b.WriteString(e.Pointer)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is a list of problems, usually from several files. Loaders collect
// every problem they can find instead of stopping at the first one.
type Errors []*Error

// Error joins the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Sort orders the problems by file, line, column, pointer and message, and
// drops exact duplicates.
func (es Errors) Sort() Errors {
	slices.SortFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Pointer, b.Pointer),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.CompactFunc(es, func(a, b *Error) bool { return *a == *b })
}

// Err returns nil for an empty list and the sorted list otherwise, so that a
// loader can end with `return result, errs.Err()`.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es.Sort()
}

// AsErrors extracts the positioned problems from err: an Errors list, a single
// *Error, or any error wrapping them. It returns nil when err carries none.
func AsErrors(err error) Errors {
	var list Errors
	if errors.As(err, &list) {
		return list
	}
	var one *Error
	if errors.As(err, &one) {
		return Errors{one}
	}
	return nil
}
