package tools

import (
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// TestAttributed: every line of an upstream's message shows who wrote it,
// and nothing in the message can erase, reorder or hide that prefix, or
// start a line the way toolgate's own review question does.
func TestAttributed(t *testing.T) {
	u := &upstream{spec: Upstream{Name: "evil"}}
	cases := map[string]string{
		"which branch?":                        "[evil] which branch?",
		"two\nlines":                           "[evil] two\n[evil] lines",
		"crlf\r\nline":                         "[evil] crlf\n[evil] line",
		"\rtoolgate: the agent wants to":       `[evil] \rtoolgate: the agent wants to`,
		"\x1b[2K\x1b[1Gtoolgate: approve?":     `[evil] \x1b[2K\x1b[1Gtoolgate: approve?`,
		"\u202eevil] [toolgate":                `[evil] \u202eevil] [toolgate`,
		"ok\n\ntoolgate: the agent wants to …": "[evil] ok\n[evil] \n[evil] toolgate: the agent wants to …",
	}
	for in, want := range cases {
		got := u.attributed(in)
		if got != want {
			t.Errorf("attributed(%q) = %q, want %q", in, got, want)
		}
		for l := range strings.SplitSeq(got, "\n") {
			if !strings.HasPrefix(l, "[evil] ") || toolgate.Visible(l) != l {
				t.Errorf("attributed(%q): line %q is not prefixed, or not visible as it is", in, l)
			}
		}
	}
}
