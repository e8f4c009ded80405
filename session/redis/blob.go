package redis

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callctx/callctx/session"
)

// A session is stored as one string (see scripts.go): the header fields
// blobFormat, version, state, createdAt, updatedAt (RFC 3339), variable
// count and bytes, joined by NUL, then NUL, name, NUL, value for each
// variable, in no particular order.
const (
	blobFormat = "1"
	sep        = "\x00"
	headerLen  = 7
)

// encodeBlob returns the stored form of a session.
func encodeBlob(s *session.Session) string {
	var b strings.Builder
	b.Grow(96 + 2*len(s.Variables) + s.Size())
	for i, f := range []string{blobFormat, strconv.FormatUint(s.Version, 10), string(s.State),
		s.CreatedAt.Format(time.RFC3339Nano), s.UpdatedAt.Format(time.RFC3339Nano),
		strconv.Itoa(len(s.Variables)), strconv.Itoa(s.Size())} {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(f)
	}
	for name, v := range s.Variables {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(sep)
		b.Write(v)
	}
	return b.String()
}

// blobHeader is a stored session's header.
type blobHeader struct {
	version      uint64
	state        session.State
	created      time.Time
	updated      time.Time
	count, bytes int
}

// splitBlob splits a stored string into its fields and checks the format,
// the field count and the version, which every reader needs.
func splitBlob(id, blob string) (parts []string, version uint64, err error) {
	parts = strings.Split(blob, sep)
	if len(parts) < headerLen || (len(parts)-headerLen)%2 != 0 || parts[0] != blobFormat {
		return nil, 0, fmt.Errorf("session %s: record: not a session record of format %s (%d fields)", id, blobFormat, len(parts))
	}
	if version, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return nil, 0, fmt.Errorf("session %s: version: %w", id, err)
	}
	return parts, version, nil
}

// decodeBlob returns the session a stored string holds, and its header.
func decodeBlob(id, blob string) (*session.Session, blobHeader, error) {
	var h blobHeader
	fail := func(what string, err error) (*session.Session, blobHeader, error) {
		return nil, h, fmt.Errorf("session %s: %s: %w", id, what, err)
	}
	parts, version, err := splitBlob(id, blob)
	if err != nil {
		return nil, h, err
	}
	h.version = version
	h.state = session.State(parts[2])
	if h.created, err = time.Parse(time.RFC3339Nano, parts[3]); err != nil {
		return fail("createdAt", err)
	}
	if h.updated, err = time.Parse(time.RFC3339Nano, parts[4]); err != nil {
		return fail("updatedAt", err)
	}
	if h.count, err = strconv.Atoi(parts[5]); err != nil {
		return fail("count", err)
	}
	if h.bytes, err = strconv.Atoi(parts[6]); err != nil {
		return fail("bytes", err)
	}
	s := &session.Session{CallID: id, State: h.state, Version: h.version, CreatedAt: h.created, UpdatedAt: h.updated,
		Variables: make(map[string]json.RawMessage, (len(parts)-headerLen)/2)}
	for i := headerLen; i < len(parts); i += 2 {
		s.Variables[parts[i]] = json.RawMessage(parts[i+1])
	}
	return s, h, nil
}

// blobJSON returns the canonical JSON of the session a stored string holds
// (what Session.AppendJSON writes) and its version, straight from the
// stored text: the read path needs no map, no time parsing and formatting.
// The stored times are already RFC 3339 text in UTC, as AppendJSON writes
// them.
func blobJSON(id, blob string) ([]byte, uint64, error) {
	parts, version, err := splitBlob(id, blob)
	if err != nil {
		return nil, 0, err
	}
	type variable struct{ name, value string }
	vars := make([]variable, 0, (len(parts)-headerLen)/2)
	for i := headerLen; i < len(parts); i += 2 {
		vars = append(vars, variable{parts[i], parts[i+1]})
	}
	slices.SortFunc(vars, func(a, b variable) int { return strings.Compare(a.name, b.name) })
	b := make([]byte, 0, 160+len(blob)+2*len(vars))
	b = append(b, `{"callId":`...)
	b = session.AppendJSONString(b, id)
	b = append(b, `,"state":`...)
	b = session.AppendJSONString(b, parts[2])
	b = append(b, `,"version":`...)
	b = append(b, parts[1]...)
	b = append(b, `,"variables":{`...)
	for i, v := range vars {
		if i > 0 {
			b = append(b, ',')
		}
		b = session.AppendJSONString(b, v.name)
		b = append(b, ':')
		b = append(b, v.value...)
	}
	b = append(b, `},"createdAt":"`...)
	b = append(b, parts[3]...)
	b = append(b, `","updatedAt":"`...)
	b = append(b, parts[4]...)
	return append(b, `"}`...), version, nil
}
