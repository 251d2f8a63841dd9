package mcp

import (
	"bufio"
	"encoding/json"
	"errors"
	"strconv"
)

// lineTooLongError is readLine's error for a line longer than its limit:
// what the whole line said of itself, read as it went past.
type lineTooLongError struct {
	id       any  // its top-level "id" (string or int64), nil if none or another type
	response bool // it has a top-level "result" or "error" and no "method"
}

func (*lineTooLongError) Error() string { return "line too long" }

// readLine reads one line, newline included. A line of more than max
// bytes (its newline not counted) is read to its end and dropped, so one
// oversized message costs max bytes of memory, not its size, and the next
// line is read whole: it returns the line's first max bytes and a
// *lineTooLongError, with the id found in all of it.
func readLine(r *bufio.Reader, max int64) ([]byte, error) {
	var line []byte
	var over *topLevel
	for {
		chunk, err := r.ReadSlice('\n')
		switch {
		case over != nil:
			over.feed(chunk)
		case int64(len(chunk)) > max+1-int64(len(line)) || int64(len(chunk)) == max+1-int64(len(line)) && chunk[len(chunk)-1] != '\n':
			over = &topLevel{}
			over.feed(line)
			over.feed(chunk)
			line = append(line, chunk[:max-int64(len(line))]...)
		default:
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if over != nil && err == nil {
			return line, over.result()
		}
		return line, err
	}
}

// topLevel reads a JSON object's top-level keys as its bytes go past,
// keeping only the "id" value (at most maxIDBytes) and which of "method",
// "result" and "error" appear: an oversized message's refusal needs no
// more, and its memory stays bounded. A repeated "id" counts last, as
// encoding/json reads it. Input that is not an object finds nothing.
type topLevel struct {
	depth      int
	inStr, esc bool
	wantKey    bool   // at depth 1, the next string is a key
	isKey      bool   // the string being read is a depth-1 key
	key        []byte // that key, up to maxIDBytes
	lastKey    string // the last depth-1 key
	inVal      bool   // reading lastKey's value
	val        []byte // that value, up to maxIDBytes+1
	id         []byte
	keys       map[string]bool
}

const maxIDBytes = 64

func (t *topLevel) feed(b []byte) {
	for _, c := range b {
		// A value is kept without the whitespace around its tokens,
		// which JSON ignores, and to one byte past maxIDBytes and its end.
		if t.inVal && len(t.val) <= maxIDBytes+1 && (t.inStr || !isJSONSpace(c)) {
			t.val = append(t.val, c)
		}
		if t.inStr {
			switch {
			case t.esc:
				t.esc = false
			case c == '\\':
				t.esc = true
			case c == '"':
				t.inStr = false
				if t.isKey {
					t.lastKey, t.isKey = string(t.key), false
				}
			case t.isKey && len(t.key) < maxIDBytes:
				t.key = append(t.key, c)
			}
			continue
		}
		switch c {
		case '"':
			t.inStr, t.isKey, t.wantKey = true, t.depth == 1 && t.wantKey, false
			t.key = t.key[:0]
		case '{', '[':
			t.wantKey = t.depth == 0 && c == '{'
			t.depth++
		case '}', ']':
			if t.depth--; t.depth == 0 {
				t.endValue()
			}
		case ':':
			if t.depth == 1 {
				t.inVal, t.val = true, t.val[:0]
			}
		case ',':
			if t.depth == 1 {
				t.endValue()
				t.wantKey = true
			}
		}
	}
}

// endValue ends the depth-1 value being read, whose bytes end with the
// ',' or '}' that ended it.
func (t *topLevel) endValue() {
	if !t.inVal {
		return
	}
	t.inVal = false
	if t.keys == nil {
		t.keys = map[string]bool{}
	}
	t.keys[t.lastKey] = true
	if t.lastKey == "id" {
		t.id = nil
		if v := t.val[:len(t.val)-1]; len(v) <= maxIDBytes {
			t.id = append([]byte(nil), v...)
		}
	}
}

func (t *topLevel) result() *lineTooLongError {
	e := &lineTooLongError{response: !t.keys["method"] && (t.keys["result"] || t.keys["error"])}
	var s string
	if json.Unmarshal(t.id, &s) == nil {
		e.id = s
	} else if n, err := strconv.ParseInt(string(t.id), 10, 64); err == nil {
		e.id = n
	}
	return e
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
