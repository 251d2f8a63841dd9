package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
)

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
// terminalSafe fails unless out holds only printable runes and newlines.
func terminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s: output is not valid UTF-8:\n%q", what, out)
	}
	for _, r := range out {
		if r != '\n' && !toolgate.Shown(r) {
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
