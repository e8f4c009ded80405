package yamldoc

import "fmt"

// Def is one named definition in a document: a member of a mapping of names
// to definitions, such as /triggers/premium. Loaders that compile such
// sections report problems through it, so that every message names the file,
// line and field.
type Def struct {
	Name    string
	Doc     *Doc   // the file it is written in
	Pointer string // its JSON pointer in the file, e.g. /triggers/premium
	Value   any    // the definition as a JSON value
}

// Pos returns where the definition's name is written.
func (d Def) Pos() Pos { return d.Doc.Pos(d.Pointer) }

// Location returns "file:line" of the definition.
func (d Def) Location() string {
	return fmt.Sprintf("%s:%d", d.Doc.File, d.Pos().Line)
}

// Errorf returns a problem at the field sub (a JSON pointer relative to the
// definition, "" for the definition itself).
func (d Def) Errorf(sub, format string, args ...any) *Error {
	return d.Doc.Errorf(d.Pointer+sub, format, args...)
}
