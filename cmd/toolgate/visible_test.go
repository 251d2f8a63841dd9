package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
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
		// Private use and unassigned code points.
		{"\ue000\U0010FFFD", `\ue000\U0010fffd`},
		// Invalid UTF-8: each bad byte, by value.
		{"bad\xff\xc3(\x9b", `bad\xff\xc3(\x9b`},
	} {
		if got := visible(tc.in); got != tc.want {
			t.Errorf("visible(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVisibleCellsAndJSON(t *testing.T) {
	if got, want := visibleCells("a\tb", "c\nd", "e"), `a\tb`+"\t"+`c\nd`+"\te"; got != want {
		t.Errorf("visibleCells = %q, want %q", got, want)
	}
	raw := []byte("{\"a\":\"x\u202ey\",\"b\":[1,\"\\u001b\"]}")
	want := "{\n\t  \"a\": \"x\\u202ey\",\n\t  \"b\": [\n\t    1,\n\t    \"\\u001b\"\n\t  ]\n\t}"
	if got := visibleJSON(raw, "\t"); got != want {
		t.Errorf("visibleJSON = %q, want %q", got, want)
	}
	// Not JSON: one line, escaped whole, so it cannot forge the next row.
	if got, want := visibleJSON([]byte("x\naction:\tallow"), "\t"), `x\naction:\tallow`; got != want {
		t.Errorf("visibleJSON of non-JSON = %q, want %q", got, want)
	}
}

// FuzzVisible checks visible's invariants: its output is valid UTF-8 of
// printable runes only; printable input is unchanged; it is idempotent;
// and, for input without quotes or backslashes, it is a Go string
// literal's body that unquotes back to the input (nothing is lost).
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
		got := visible(s)
		if !utf8.ValidString(got) {
			t.Fatalf("visible(%q) = %q: invalid UTF-8", s, got)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) {
				t.Fatalf("visible(%q) = %q: holds %U", s, got, r)
			}
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) && got != s {
			t.Fatalf("visible(%q) = %q: printable text changed", s, got)
		}
		if again := visible(got); again != got {
			t.Fatalf("visible is not idempotent: %q, then %q", got, again)
		}
		if !strings.ContainsAny(s, `"\`) {
			if back, err := strconv.Unquote(`"` + got + `"`); err != nil || back != s {
				t.Fatalf("visible(%q) = %q unquotes to %q, %v", s, got, back, err)
			}
		}
	})
}

// terminalSafe fails unless out holds only printable runes and newlines.
func terminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s: output is not valid UTF-8:\n%q", what, out)
	}
	for _, r := range out {
		if r != '\n' && !unicode.IsPrint(r) {
			t.Errorf("%s: output holds %U, which a terminal acts on or hides:\n%q", what, r, out)
			return
		}
	}
}

// TestCLIShowsStoredControlsEscaped stores a call whose every
// agent-influenced text holds terminal controls, and runs each command that
// prints it for people: nothing it prints acts on the terminal.
func TestCLIShowsStoredControlsEscaped(t *testing.T) {
	const evil = "\x1b[8m\r\u202e\u009b\x7f\n\t" // the store keeps no invalid UTF-8
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := audit.Open(t.Context(), path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := toolgate.Call{
		ID: "01EVIL", Server: "srv" + evil, Tool: "tool" + evil, Name: "name" + evil,
		Args:      map[string]any{"k" + evil: "v" + evil},
		Client:    toolgate.Peer{Name: "client" + evil, Version: "1" + evil},
		Model:     toolgate.Peer{Name: "model" + evil, Version: "2" + evil},
		SessionID: "session" + evil,
		Principal: toolgate.Principal{User: "user" + evil, Groups: []string{"group" + evil}},
		Time:      time.Now(),
	}
	d := toolgate.Decision{Action: toolgate.Review, Rule: "rule" + evil, Reason: "reason" + evil, Version: "v1" + evil, Sandbox: "sb" + evil}
	if err := st.Begin(t.Context(), c, d); err != nil {
		t.Fatal(err)
	}
	st.Close()
	env := mapEnv{"TOOLGATE_AUDIT_DB": path}
	for _, args := range [][]string{{"list"}, {"tail"}, {"show", "01EVIL"}, {"stats"}} {
		out, _, err := runAuditCmd(t, env, args...)
		if err != nil {
			t.Fatalf("audit %v: %v", args, err)
		}
		terminalSafe(t, "audit "+strings.Join(args, " "), out)
		if !strings.Contains(out, `\x1b[8m\r\u202e\u009b\x7f\n\t`) {
			t.Errorf("audit %v does not show the controls escaped:\n%s", args, out)
		}
	}
	out, _, err := runReviewCmd(t, env, "list")
	if err != nil {
		t.Fatal(err)
	}
	terminalSafe(t, "review list", out)
}
