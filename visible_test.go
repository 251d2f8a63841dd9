package toolgate

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestVisible(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// Printable text is unchanged, backslashes and quotes included.
		{"", ""},
		{"claude-code 1.2", "claude-code 1.2"},
		{`C:\tmp\x1b "quoted" {"text":"hi"}`, `C:\tmp\x1b "quoted" {"text":"hi"}`},
		{"héllo wörld, 日本語, emoji 🙂, \uFFFD", "héllo wörld, 日本語, emoji 🙂, \uFFFD"},
		// C0 controls and DEL: the terminal would act on them.
		{"a\x1b[8mb", `a\x1b[8mb`},
		{"row\r\x1b[28C1s", `row\r\x1b[28C1s`},
		{"two\nlines\tand a tab", `two\nlines\tand a tab`},
		{"\x00\x07\x08\x0b\x0c\x7f", `\x00\a\b\v\f\x7f`},
		// C1 controls: CSI (U+009B) and NEL (U+0085) as UTF-8.
		{"\u009b2J\u0085", `\u009b2J\u0085`},
		// Bidi controls, which reorder what follows them.
		{"gpt\u202eevil\u202c", `gpt\u202eevil\u202c`},
		{"\u202a\u202b\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c", `\u202a\u202b\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c`},
		// Invisible format characters and separators other than ' '.
		{"rm\u200b-rf\ufeff\u2060\u00ad", `rm\u200b-rf\ufeff\u2060\u00ad`},
		{"tag\U000E0041\U000E007F", `tag\U000e0041\U000e007f`},
		{"nbsp\u00a0ls\u2028ps\u2029", `nbsp\u00a0ls\u2028ps\u2029`},
		// Runes a terminal shows as nothing or a blank that is not a space.
		{"a\u3164b\u115f\u1160\uffa0\u2800\u034f\ufe0f", `a\u3164b\u115f\u1160\uffa0\u2800\u034f\ufe0f`},
		// Private use and unassigned code points.
		{"\ue000\U0010FFFD", `\ue000\U0010fffd`},
		// Invalid UTF-8: each bad byte, by value.
		{"bad\xff\xc3(\x9b", `bad\xff\xc3(\x9b`},
	} {
		if got := Visible(tc.in); got != tc.want {
			t.Errorf("Visible(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzVisible(f *testing.F) {
	for _, s := range []string{
		"",
		"plain ascii",
		"claude-code\r\x1b[28C1s  up__echo\x1b[K\x1b[8m", // the reported row redraw
		"gpt\u202eevil\u2066",                            // bidi
		"\u009b\u0085\x7f",                               // C1, DEL
		"\xff\xfe\xc3",                                   // invalid UTF-8
		"zero\u200bwidth\U000E0041",                      // invisible
		"日本語 🙂 \uFFFD",                                   // printable, multi-byte
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Visible(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Visible(%q) = %q: invalid UTF-8", s, got)
		}
		for _, r := range got {
			if !Shown(r) {
				t.Fatalf("Visible(%q) = %q: holds %U", s, got, r)
			}
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !Shown(r) }) && got != s {
			t.Fatalf("Visible(%q) = %q: printable text changed", s, got)
		}
		if again := Visible(got); again != got {
			t.Fatalf("visible is not idempotent: %q, then %q", got, again)
		}
		if !strings.ContainsAny(s, `"\`) {
			if back, err := strconv.Unquote(`"` + got + `"`); err != nil || back != s {
				t.Fatalf("Visible(%q) = %q unquotes to %q, %v", s, got, back, err)
			}
		}
	})
}
