package rules

import (
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// source is a rules file's bytes with its line starts, to turn positions
// inside a YAML scalar's value into file line:column (both 1-based; columns
// count characters, as yaml.v3 does).
type source struct {
	data  []byte
	lines []int // byte offset of each line's start
}

func newSource(data []byte) *source {
	s := &source{data: data, lines: []int{0}}
	for i, b := range data {
		if b == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

// offset returns the byte offset of a yaml.v3 position, or -1.
func (s *source) offset(line, col int) int {
	if line < 1 || line > len(s.lines) {
		return -1
	}
	off := s.lines[line-1]
	for c := 1; c < col && off < len(s.data) && s.data[off] != '\n'; c++ {
		_, n := utf8.DecodeRune(s.data[off:])
		off += n
	}
	return off
}

// position returns the 1-based line and character column of a byte offset.
func (s *source) position(off int) (int, int) {
	lo, hi := 0, len(s.lines)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if s.lines[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo + 1, utf8.RuneCount(s.data[s.lines[lo]:min(off, len(s.data))]) + 1
}

// locate maps a CEL location (1-based line, 0-based column counted in
// characters, as cel-go reports them) inside scalar n's value to the file
// position it came from. Literal block scalars map exactly; plain, folded and
// quoted scalars are aligned character by character with the raw text
// (escapes, quotes and folded line breaks skipped). If alignment fails it
// falls back to the scalar's own position.
func (s *source) locate(n *yaml.Node, celLine, celCol int) (int, int) {
	if celLine < 1 {
		return n.Line, n.Column
	}
	// Offset of the location within the decoded value.
	target := 0
	v := n.Value
	for l := 1; l < celLine; l++ {
		nl := strings.IndexByte(v[target:], '\n')
		if nl < 0 {
			return n.Line, n.Column
		}
		target += nl + 1
	}
	for c := 0; c < celCol && target < len(v) && v[target] != '\n'; c++ {
		_, sz := utf8.DecodeRuneInString(v[target:])
		target += sz
	}

	start := s.offset(n.Line, n.Column)
	if start < 0 {
		return n.Line, n.Column
	}
	if n.Style&yaml.LiteralStyle != 0 {
		return s.locateLiteral(n, celLine, celCol)
	}
	j := start
	switch {
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		j++ // opening quote
	case n.Style&yaml.FoldedStyle != 0:
		nl := strings.IndexByte(string(s.data[j:]), '\n')
		if nl < 0 {
			return n.Line, n.Column
		}
		j += nl + 1
	}
	dq := n.Style&yaml.DoubleQuotedStyle != 0
	sq := n.Style&yaml.SingleQuotedStyle != 0
	raw := s.data
	for i := 0; i < target; {
		if j >= len(raw) {
			return n.Line, n.Column
		}
		vc, rc := v[i], raw[j]
		switch {
		case dq && rc == '\\':
			if j+1 < len(raw) && (raw[j+1] == '\n' || raw[j+1] == '\r') { // escaped line break: nothing in the value
				j += 2
				for j < len(raw) && (raw[j] == ' ' || raw[j] == '\t' || raw[j] == '\n' || raw[j] == '\r') {
					j++
				}
				continue
			}
			j += escapeLen(raw[j:])
			_, sz := utf8.DecodeRuneInString(v[i:])
			i += sz
		case sq && rc == '\'' && j+1 < len(raw) && raw[j+1] == '\'':
			i, j = i+1, j+2
		case vc == rc:
			i, j = i+1, j+1
		case isYAMLSpace(rc):
			if isYAMLSpace(vc) { // a folded line break became a space
				i++
			}
			j++
		default:
			return n.Line, n.Column
		}
	}
	for j < len(raw) && isYAMLSpace(raw[j]) && (target >= len(v) || !isYAMLSpace(v[target])) {
		j++
	}
	return s.position(j)
}

func (s *source) locateLiteral(n *yaml.Node, celLine, celCol int) (int, int) {
	line := n.Line + celLine // the header ("|") is on n.Line
	if line > len(s.lines) {
		return n.Line, n.Column
	}
	// Indentation: that of the first non-blank content line.
	indent := -1
	for l := n.Line + 1; l <= len(s.lines) && indent < 0; l++ {
		off := s.lines[l-1]
		k := 0
		for off+k < len(s.data) && s.data[off+k] == ' ' {
			k++
		}
		if off+k < len(s.data) && s.data[off+k] != '\n' && s.data[off+k] != '\r' {
			indent = k
		}
	}
	if indent < 0 {
		return n.Line, n.Column
	}
	return line, indent + celCol + 1
}

func isYAMLSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// escapeLen is the raw length of a double-quoted YAML escape at b[0]=='\\'.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 1
	}
	switch b[1] {
	case 'x':
		return min(4, len(b))
	case 'u':
		return min(6, len(b))
	case 'U':
		return min(10, len(b))
	}
	return 2
}
