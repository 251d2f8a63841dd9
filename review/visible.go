package review

import (
	"strings"

	"github.com/toolgate/toolgate"
)

// visibleLines is Visible for each line of s: its line breaks are kept,
// as the message's own, and everything else in a line is made visible.
func visibleLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = toolgate.Visible(l)
	}
	return strings.Join(lines, "\n")
}
