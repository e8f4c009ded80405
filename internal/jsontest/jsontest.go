// Package jsontest checks JSON as a strict client reads it, for the
// oracles of fuzz tests. It is written apart from session.CheckJSON, the
// product's check, so that each can catch the other out.
package jsontest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Strict reports why a strict JSON reader would refuse b: Python's json
// with UTF-8, a browser's TextDecoder in fatal mode. b must be valid JSON,
// UTF-8, free of lone UTF-16 surrogate escapes, and its numbers must fit a
// 64-bit float.
func Strict(b []byte) error {
	if !json.Valid(b) {
		return errors.New("not valid JSON")
	}
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8")
	}
	// In valid JSON a backslash only starts an escape inside a string.
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++
		if b[i] != 'u' {
			continue
		}
		r := hex4(b[i+1 : i+5])
		i += 4
		if !utf16.IsSurrogate(r) {
			continue
		}
		if r >= 0xDC00 || i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
			return fmt.Errorf("lone surrogate \\u%04x", r)
		}
		if low := hex4(b[i+3 : i+7]); low < 0xDC00 || low > 0xDFFF {
			return fmt.Errorf("lone surrogate \\u%04x", r)
		}
		i += 6
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n, ok := tok.(json.Number); ok {
			if f, _ := strconv.ParseFloat(string(n), 64); math.IsInf(f, 0) {
				return fmt.Errorf("number %s is beyond a 64-bit float", n)
			}
		}
	}
}

func hex4(h []byte) rune {
	v, _ := strconv.ParseUint(string(h), 16, 32)
	return rune(v)
}
