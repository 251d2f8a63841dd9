package toolgate

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Visible returns s as a terminal or a chat message should show it to a
// reviewer: every rune
// that a terminal would act on rather than print, or that hides or
// reorders the text around it, is written as its Go escape, so that the
// reviewer sees it instead of its effect. That is C0 controls and DEL
// (ESC, CR, LF and TAB included: "\x1b", "\r", "\n", "\t"), C1 controls
// ("\u009b"), bidi controls ("\u202e", "\u2066", "\u200f", "\u061c"),
// other invisible format characters (zero-width ones, tag characters,
// "\ufeff"), separators other than ASCII space, and unassigned and
// private-use code points: everything unicode.IsPrint refuses; and what
// it accepts but shows as nothing or a blank (Shown), such as the
// Hangul fillers, the braille blank and variation selectors. Each byte
// of invalid UTF-8 becomes "\xNN". Printable text, backslashes and
// quotes included, is unchanged, so Visible(Visible(s)) == Visible(s).
//
// Every string shown to a reviewer that came from the agent, its client,
// an upstream, a rule or another reviewer goes through Visible: in the
// CLI's tables, Slack messages, elicitation questions and the web UI's
// pages alike, such a
// string cannot redraw, reorder or hide what the reviewer decides on. JSON
// output writes such runes as \u escapes (audit.NewJSONEncoder), which
// readers of JSON decode.
func Visible(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r == utf8.RuneError || !Shown(r) })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for s = s[i:]; s != ""; {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case Shown(r):
			b.WriteString(s[:n])
		default:
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\n', '\u202e', '\U000e0041'
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[n:]
	}
	return b.String()
}

// Shown reports whether a terminal or a page shows r as a glyph of its
// own: printable, and not one of the runes Unicode says to render as
// nothing (default-ignorable: the Hangul fillers U+115F, U+1160, U+3164,
// U+FFA0, the combining grapheme joiner) or a variation selector, nor the
// braille blank U+2800, which shows as a space that is not one.
func Shown(r rune) bool {
	return unicode.IsPrint(r) && r != 0x2800 &&
		!unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) && !unicode.Is(unicode.Variation_Selector, r)
}

// VisibleLines is Visible for each line of s: its line breaks are kept, as
// the text's own (a JSON document's indentation, a message's lines), and
// everything else in a line is made visible.
func VisibleLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Visible(l)
	}
	return strings.Join(lines, "\n")
}
