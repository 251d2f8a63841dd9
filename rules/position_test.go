package rules

import (
	"strings"
	"testing"
)

// TestErrorPositions checks that a CEL error inside every YAML scalar style
// points at the offending identifier ("bad") in the file.
func TestErrorPositions(t *testing.T) {
	cases := []struct {
		name, match string
		line, col   int
	}{
		{"plain", `match: tool.name == "x" && bad`, 4, 32},
		{"single-quoted", `match: 'tool.name == ''x'' && bad'`, 4, 35},
		{"double-quoted with escapes", `match: "tool.name == \"x\" && bad"`, 4, 35},
		{"double-quoted with unicode escape", `match: "tool.name == \"\u00e9\" && bad"`, 4, 40},
		{"plain over two lines", "match: tool.name == \"x\" &&\n      bad", 5, 7},
		{"literal block", "match: |\n      tool.name == \"x\" &&\n        bad", 6, 9},
		{"literal block with blank line", "match: |\n      tool.name == \"x\" &&\n\n        bad", 7, 9},
		{"folded block", "match: >\n      tool.name == \"x\"\n      && bad", 6, 10},
		{"multibyte before", `match: '"é" == tool.name && bad'`, 4, 33},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := "version: 1\nrules:\n  - name: r\n    " + tc.match + "\n    action: allow\n"
			_, err := Parse("p.yaml", []byte(data))
			if err == nil {
				t.Fatal("no error")
			}
			var want strings.Builder
			want.WriteString("p.yaml:")
			want.WriteString(itoa(tc.line) + ":" + itoa(tc.col) + ": rule \"r\": match: undeclared reference to 'bad'")
			if !strings.HasPrefix(err.Error(), want.String()) {
				t.Errorf("got  %v\nwant %s\nfile:\n%s", err, want.String(), data)
			}
		})
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
