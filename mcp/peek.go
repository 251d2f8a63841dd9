package mcp

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// maxPeekDepth is the deepest nesting peekMessage walks; a deeper line is
// declined and takes the full json.Unmarshal path (which enforces
// encoding/json's own limit of 10000).
const maxPeekDepth = 1000

// peekMessage reads the routing fields of one JSON-RPC line without
// decoding the rest of it: it walks the top-level object, checks nested
// values for validity while skipping them, and decodes only the values of
// the keys encoding/json would map to message's fields.
//
// When ok is true, m is exactly what json.Unmarshal(line, &m) gives and that
// call would succeed (Result and Error alias line). ok is false for
// anything peekMessage is not sure about: invalid JSON, a top level that is
// not an object, a non-ASCII top-level key (encoding/json folds some
// non-ASCII runes onto ASCII names), a method that is not a string or
// null, an id encoding/json cannot decode, nesting deeper than
// maxPeekDepth. The caller then decodes the line with json.Unmarshal.
func peekMessage(line []byte) (m message, ok bool) {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return message{}, false
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		i++
	} else {
		for {
			if i >= len(line) || line[i] != '"' {
				return message{}, false
			}
			start := i
			var escaped bool
			if i, escaped = skipString(line, i); i < 0 {
				return message{}, false
			}
			f, known := classifyKey(line[start:i], escaped)
			if !known {
				return message{}, false
			}
			i = skipSpace(line, i)
			if i >= len(line) || line[i] != ':' {
				return message{}, false
			}
			start = skipSpace(line, i+1)
			if i = skipValue(line, start, 2); i < 0 {
				return message{}, false
			}
			if !m.set(f, line[start:i]) {
				return message{}, false
			}
			i = skipSpace(line, i)
			if i >= len(line) {
				return message{}, false
			}
			if line[i] == '}' {
				i++
				break
			}
			if line[i] != ',' {
				return message{}, false
			}
			i = skipSpace(line, i+1)
		}
	}
	if skipSpace(line, i) != len(line) {
		return message{}, false
	}
	return m, true
}

// messageField is the message field a top-level key maps to.
type messageField int

const (
	fieldNone messageField = iota
	fieldMethod
	fieldID
	fieldResult
	fieldError
)

// classifyKey maps a quoted top-level key to the field encoding/json
// decodes its value into: names match case-insensitively. known is false
// for a key that is not pure ASCII once unescaped (Unicode folding could
// map it onto a field name) or that does not decode.
func classifyKey(quoted []byte, escaped bool) (f messageField, known bool) {
	key := quoted[1 : len(quoted)-1]
	if escaped {
		var s string
		if err := json.Unmarshal(quoted, &s); err != nil {
			return fieldNone, false
		}
		key = []byte(s)
	}
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return fieldNone, false
		}
	}
	switch {
	case asciiEqualFold(key, "method"):
		return fieldMethod, true
	case asciiEqualFold(key, "id"):
		return fieldID, true
	case asciiEqualFold(key, "result"):
		return fieldResult, true
	case asciiEqualFold(key, "error"):
		return fieldError, true
	}
	return fieldNone, true
}

// asciiEqualFold reports whether key equals the lower-case ASCII name,
// ignoring the case of ASCII letters.
func asciiEqualFold(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// set stores a top-level value, valid JSON, as json.Unmarshal would into
// field f; false when json.Unmarshal would fail on it. A later duplicate
// key overrides an earlier one, and null leaves Method unchanged, as in
// encoding/json.
func (m *message) set(f messageField, raw []byte) bool {
	switch f {
	case fieldMethod:
		switch raw[0] {
		case 'n':
			return true
		case '"':
			s, ok := decodeString(raw)
			m.Method = s
			return ok
		}
		return false
	case fieldID:
		switch c := raw[0]; {
		case c == 'n':
			m.ID = nil
		case c == 't' || c == 'f':
			m.ID = c == 't'
		case c == '"':
			s, ok := decodeString(raw)
			if !ok {
				return false
			}
			m.ID = s
		case c == '-' || '0' <= c && c <= '9':
			n, err := strconv.ParseFloat(string(raw), 64)
			if err != nil {
				return false // out of range: json.Unmarshal fails too
			}
			m.ID = n
		default:
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				return false
			}
			m.ID = v
		}
	case fieldResult:
		m.Result = raw
	case fieldError:
		m.Error = raw
	}
	return true
}

// decodeString decodes a valid quoted JSON string.
func decodeString(quoted []byte) (string, bool) {
	s := quoted[1 : len(quoted)-1]
	plain := utf8.Valid(s)
	for _, c := range s {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(s), true
	}
	var v string
	if err := json.Unmarshal(quoted, &v); err != nil {
		return "", false
	}
	return v, true
}

// skipSpace returns the index of the first non-whitespace byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue checks the JSON value starting at b[i] and returns the index
// just past it, or -1 if it is invalid or nested deeper than maxPeekDepth.
// depth is the nesting depth of a container starting at b[i].
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		i, _ = skipString(b, i)
		return i
	case c == '{':
		return skipObject(b, i, depth)
	case c == '[':
		return skipArray(b, i, depth)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || '0' <= c && c <= '9':
		return skipNumber(b, i)
	}
	return -1
}

// skipObject checks the object starting at b[i] ('{').
func skipObject(b []byte, i, depth int) int {
	if depth > maxPeekDepth {
		return -1
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		if i, _ = skipString(b, i); i < 0 {
			return -1
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return -1
		}
		if i = skipValue(b, skipSpace(b, i+1), depth+1); i < 0 {
			return -1
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case '}':
			return i + 1
		case ',':
			i = skipSpace(b, i+1)
		default:
			return -1
		}
	}
}

// skipArray checks the array starting at b[i] ('[').
func skipArray(b []byte, i, depth int) int {
	if depth > maxPeekDepth {
		return -1
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for {
		if i = skipValue(b, i, depth+1); i < 0 {
			return -1
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case ']':
			return i + 1
		case ',':
			i = skipSpace(b, i+1)
		default:
			return -1
		}
	}
}

// skipString checks the string starting at b[i] ('"') as encoding/json's
// scanner does (no control characters, valid escapes; bytes are not
// checked for UTF-8) and returns the index just past its closing quote, or
// -1; escaped tells whether it holds a backslash escape.
func skipString(b []byte, i int) (end int, escaped bool) {
	i++
	for i < len(b) {
		// Eight bytes at a time up to the first quote, backslash or
		// control character (the lowest flagged byte is exact).
		for i+8 <= len(b) {
			v := binary.LittleEndian.Uint64(b[i:])
			q, bs := v^(swarOnes*'"'), v^(swarOnes*'\\')
			special := ((q-swarOnes)&^q | (bs-swarOnes)&^bs | (v-swarOnes*0x20)&^v) & (swarOnes * 0x80)
			if special != 0 {
				i += bits.TrailingZeros64(special) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, escaped
		case c < 0x20:
			return -1, false
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return -1, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return -1, false
				}
				for _, h := range b[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1, false
					}
				}
				i += 6
			default:
				return -1, false
			}
		default:
			i++
		}
	}
	return -1, false
}

// swarOnes has a one in each byte, for testing eight bytes at once.
const swarOnes = 0x0101010101010101

// skipLiteral checks that b[i:] starts with lit.
func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// skipNumber checks the number starting at b[i] against JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

// skipDigits returns the index of the first non-digit at or after i.
func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
