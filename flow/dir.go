package flow

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/callctx/callctx/internal/yamldoc"
)

// The sections a flows directory file may hold that map names to
// definitions; a name is defined once in the whole directory, whatever the
// section.
const (
	SectionCalendars   = "calendars"
	SectionTriggers    = "triggers"
	SectionAutomations = "automations"
	SectionFlows       = "flows"
)

var sections = []string{SectionCalendars, SectionTriggers, SectionAutomations, SectionFlows}

// SectionRouting is the section that holds the routing table (see
// Routing); one file of a directory may have it.
const SectionRouting = "routing"

// Schema is the JSON Schema (draft 2020-12) of a flows directory file, the
// same bytes as flow/flows.schema.json in the repository. It covers the
// whole file, conditions included, so that editors complete every field from
// one schema; package triggers checks conditions again when it compiles them.
//
//go:embed flows.schema.json
var Schema []byte

// SchemaURL is the $id of Schema.
const SchemaURL = "https://github.com/callctx/callctx/blob/main/flow/flows.schema.json"

// compiledSchema compiles Schema once; it is a constant of the program, not
// configuration.
var compiledSchema = sync.OnceValues(func() (*yamldoc.Schema, error) {
	return yamldoc.CompileSchema(SchemaURL, Schema)
})

// MaxFileSize is the largest flows directory file read.
const MaxFileSize = 4 << 20

// Dir is a parsed flows directory: every *.yaml and *.yml file at its top
// level decoded, checked against Schema, and every name known to be defined
// once. Compile takes its definitions from a Dir: the triggers for package
// triggers, the automations and flows for itself.
type Dir struct {
	docs    []*yamldoc.Doc
	defs    []Def
	idx     map[string]int
	routing *yamldoc.Def
	fsys    fs.FS
	display func(string) string
	imports []string // "name\x00digest" of each file read by ReadFile
}

// Def is one named definition in a flows directory and the section it is
// written in.
type Def struct {
	Section string // SectionTriggers, SectionAutomations or SectionFlows
	yamldoc.Def
}

// ParseDir parses the flows directory at dir. Problems in the files come back
// together as a yamldoc.Errors list naming file, line and field, with the
// Dir of what could be read, so that Compile can find the problems of its
// stages too; a directory that cannot be read is an ordinary error wrapping
// the fs error and no Dir (test with errors.Is(err, fs.ErrNotExist) to treat
// an absent directory as empty).
func ParseDir(dir string) (*Dir, error) {
	return parse(os.DirFS(dir), func(name string) string { return filepath.Join(dir, name) })
}

// ParseFS parses a flows directory held in fsys (its root), as ParseDir;
// errors name the files as fsys does.
func ParseFS(fsys fs.FS) (*Dir, error) {
	return parse(fsys, func(name string) string { return name })
}

func parse(fsys fs.FS, display func(string) string) (*Dir, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // "open .": the directory is named here
		}
		return nil, &fs.PathError{Op: "read flows directory", Path: display("."), Err: err}
	}
	d := &Dir{idx: map[string]int{}, fsys: fsys, display: display}
	var errs yamldoc.Errors
	for _, e := range entries {
		name := e.Name()
		ext := path.Ext(name)
		if strings.HasPrefix(name, ".") || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		info, err := fs.Stat(fsys, name) // follows symbolic links
		if err != nil {
			errs = append(errs, &yamldoc.Error{File: display(name), Message: "cannot read: " + errText(err)})
			continue
		}
		if info.IsDir() {
			continue
		}
		if info.Size() > MaxFileSize {
			errs = append(errs, &yamldoc.Error{File: display(name),
				Message: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)})
			continue
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, &yamldoc.Error{File: display(name), Message: "cannot read: " + errText(err)})
			continue
		}
		doc, problems, err := parseFile(display(name), data)
		if err != nil {
			return nil, err
		}
		errs = append(errs, problems...)
		if doc != nil {
			d.add(doc, &errs)
		}
	}
	return d, errs.Err()
}

// errText is the message of err without the path or URL an *fs.PathError
// or *url.Error repeats: the caller names the file or field itself.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// ParseFile decodes one flows directory file and checks it against Schema.
// The error, if any, is a yamldoc.Errors list.
func ParseFile(file string, data []byte) (*yamldoc.Doc, error) {
	doc, problems, err := parseFile(file, data)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, problems.Sort()
	}
	return doc, nil
}

// parseFile decodes a file and checks it against Schema. It returns the
// document whenever its YAML could be read, with the schema's problems; an
// error only when the schema itself is broken.
func parseFile(file string, data []byte) (*yamldoc.Doc, yamldoc.Errors, error) {
	schema, err := compiledSchema()
	if err != nil {
		return nil, nil, fmt.Errorf("flows schema: %w", err)
	}
	doc, err := yamldoc.Parse(file, data)
	if err != nil {
		list := yamldoc.AsErrors(err)
		if list == nil {
			return nil, nil, err
		}
		return nil, list, nil
	}
	return doc, schema.Validate(doc), nil
}

// add records the definitions of a checked file, refusing names already
// defined.
func (d *Dir) add(doc *yamldoc.Doc, errs *yamldoc.Errors) {
	d.docs = append(d.docs, doc)
	root, _ := doc.Value.(map[string]any)
	var defs []Def
	for _, sec := range sections {
		m, _ := root[sec].(map[string]any)
		for name, v := range m {
			defs = append(defs, Def{Section: sec, Def: yamldoc.Def{Name: name, Doc: doc,
				Pointer: "/" + sec + "/" + yamldoc.EscapePointer(name), Value: v}})
		}
	}
	slices.SortFunc(defs, func(a, b Def) int {
		pa, pb := a.Pos(), b.Pos()
		if pa.Line != pb.Line {
			return pa.Line - pb.Line
		}
		return pa.Column - pb.Column
	})
	if _, ok := root[SectionRouting]; ok {
		def := yamldoc.Def{Name: SectionRouting, Doc: doc, Pointer: "/" + SectionRouting, Value: root[SectionRouting]}
		if d.routing != nil {
			*errs = append(*errs, def.Errorf("", "the routing table is already defined at %s:%d; a directory has one",
				d.routing.Doc.File, d.routing.Pos().Line))
		} else {
			d.routing = &def
		}
	}
	for _, def := range defs {
		if i, dup := d.idx[def.Name]; dup {
			first := d.defs[i]
			*errs = append(*errs, def.Errorf("", "name %q is already defined at %s:%d:%d (%s)",
				def.Name, first.Doc.File, first.Pos().Line, first.Pos().Column, first.Section))
			continue
		}
		d.idx[def.Name] = len(d.defs)
		d.defs = append(d.defs, def)
	}
}

// Defs returns the definitions of a section in the order they are written
// (files by name, then by line).
func (d *Dir) Defs(section string) []yamldoc.Def {
	var out []yamldoc.Def
	for _, def := range d.defs {
		if def.Section == section {
			out = append(out, def.Def)
		}
	}
	return out
}

// Lookup returns the definition called name, in whatever section.
func (d *Dir) Lookup(name string) (Def, bool) {
	i, ok := d.idx[name]
	if !ok {
		return Def{}, false
	}
	return d.defs[i], true
}

// Routing returns the routing section, if a file has one.
func (d *Dir) Routing() (yamldoc.Def, bool) {
	if d.routing == nil {
		return yamldoc.Def{}, false
	}
	return *d.routing, true
}

// ReadFile reads a file a definition imports (a calendar's .ics), by a
// slash-separated path relative to the directory; it may be in a
// subdirectory, not outside. Version covers the files read.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, fmt.Errorf("%q is not a path inside the flows directory (use a relative path such as holidays/de.ics)", name)
	}
	if d.fsys == nil {
		return nil, fs.ErrNotExist
	}
	info, err := fs.Stat(d.fsys, name)
	if err != nil {
		return nil, errors.New(errText(err))
	}
	if info.Size() > MaxFileSize {
		return nil, fmt.Errorf("the file is larger than %d bytes", MaxFileSize)
	}
	data, err := fs.ReadFile(d.fsys, name)
	if err != nil {
		return nil, errors.New(errText(err))
	}
	sum := sha256.Sum256(data)
	d.imports = append(d.imports, name+"\x00"+hex.EncodeToString(sum[:]))
	return data, nil
}

// Version returns a digest of the definitions in the directory and of the
// files read through ReadFile so far: it changes when a definition or an
// imported file does, not when a comment or the layout does.
func (d *Dir) Version() string {
	h := sha256.New()
	for _, doc := range d.docs {
		b, _ := json.Marshal(doc.Value) // decoded JSON always marshals; maps sort their keys
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(doc.File), len(b))
		h.Write(b)
	}
	for _, imp := range d.imports {
		fmt.Fprintf(h, "%s\x00", imp)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Files returns the names of the files parsed, in order.
func (d *Dir) Files() []string {
	out := make([]string, len(d.docs))
	for i, doc := range d.docs {
		out[i] = doc.File
	}
	return out
}
