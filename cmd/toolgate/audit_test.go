package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/toolgate/toolgate/audit"
)

const auditFixture = "../../testdata/audit"

// auditDB imports the fixture log into a fresh DB and returns its path.
func auditDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "audit.db")
	if _, _, err := runAuditCmd(t, mapEnv{}, "import", "--db", path, filepath.Join(auditFixture, "calls.jsonl")); err != nil {
		t.Fatal(err)
	}
	return path
}

func runAuditCmd(t *testing.T, env mapEnv, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runAudit(t.Context(), args, env, &out, &errb)
	return out.String(), errb.String(), err
}

func TestAuditDBPath(t *testing.T) {
	cases := []struct {
		flag string
		env  mapEnv
		want string
	}{
		{"/x.db", mapEnv{"TOOLGATE_AUDIT_DB": "/y.db"}, "/x.db"},
		{"", mapEnv{"TOOLGATE_AUDIT_DB": "/y.db", "XDG_STATE_HOME": "/s"}, "/y.db"},
		{"", mapEnv{"XDG_STATE_HOME": "/s", "HOME": "/h"}, "/s/toolgate/audit.db"},
		{"", mapEnv{"HOME": "/h"}, "/h/.local/state/toolgate/audit.db"},
	}
	for _, tc := range cases {
		if got, err := dbPath(tc.flag, tc.env); err != nil || got != tc.want {
			t.Errorf("dbPath(%q, %v) = %q, %v; want %q", tc.flag, tc.env, got, err, tc.want)
		}
	}
	if _, err := dbPath("", mapEnv{}); !errors.Is(err, errUsage) {
		t.Errorf("no env: %v, want errUsage", err)
	}
}

func TestAuditList(t *testing.T) {
	path := auditDB(t)
	env := mapEnv{"TOOLGATE_AUDIT_DB": path}
	out, _, err := runAuditCmd(t, env, "list", "--tool", "write_file", "--action", "review")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[1], "U-alice") {
		t.Fatalf("list:\n%s", out)
	}
	out, _, err = runAuditCmd(t, env, "list", "--output", "json", "--model", "gpt-x", "--since", "2026-03-01T10:05:00Z", "--until", "2026-03-01T10:08:00Z")
	if err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 1 || recs[0].Model.Name != "gpt-x" {
		t.Fatalf("list json = %s (%v)", out, err)
	}
	out, _, err = runAuditCmd(t, env, "list", "--output", "json", "--server", "nope")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty list json = %q, %v", out, err)
	}
	for _, bad := range [][]string{
		{"list", "--action", "maybe"}, {"list", "--since", "yesterday"}, {"list", "--output", "xml"}, {"list", "extra"},
		{"show"}, {"frobnicate"}, {"replay"},
	} {
		if _, _, err := runAuditCmd(t, env, bad...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

func TestAuditShowTailExport(t *testing.T) {
	path := auditDB(t)
	env := mapEnv{"TOOLGATE_AUDIT_DB": path}
	out, _, err := runAuditCmd(t, env, "show", "01JNQX0008AAAAAAAAAAAAAAAA")
	if err != nil || !strings.Contains(out, "confidence:") || !strings.Contains(out, "0.1") || !strings.Contains(out, "via timeout") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	out, _, err = runAuditCmd(t, env, "show", "--output", "json", "01JNQX0003AAAAAAAAAAAAAAAA")
	var r audit.Record
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || r.Review == nil || r.Review.Reviewer != "U-alice" {
		t.Fatalf("show json: %v\n%s", err, out)
	}
	if _, _, err := runAuditCmd(t, env, "show", "01NOPE"); err == nil || !strings.Contains(err.Error(), "no call 01NOPE") {
		t.Fatalf("show unknown: %v", err)
	}
	out, _, err = runAuditCmd(t, env, "tail", "-n", "3")
	if err != nil || strings.Count(out, "\n") != 4 || !strings.Contains(out, "01JNQX0012") || strings.Contains(out, "01JNQX0009") {
		t.Fatalf("tail: %v\n%s", err, out)
	}
	out, _, err = runAuditCmd(t, env, "export", "--format", "csv", "--session", "s-2")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.HasPrefix(out, "id,received_at") {
		t.Fatalf("export csv: %v\n%s", err, out)
	}
	out, _, err = runAuditCmd(t, env, "export")
	if err != nil || strings.Count(out, "\n") != 12 {
		t.Fatalf("export jsonl: %v\n%s", err, out)
	}
}

func TestAuditTailFollow(t *testing.T) {
	path := auditDB(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var errb bytes.Buffer
	done := make(chan error, 1)
	w := &notifyWriter{ch: make(chan struct{}, 100)}
	go func() {
		done <- runAudit(ctx, []string{"tail", "-f", "-n", "1", "--interval", "10ms", "--db", path, "--output", "json"}, mapEnv{}, w, &errb)
	}()
	for !strings.Contains(w.String(), "01JNQX0012") { // the last fixture call: tail is running
		<-w.ch
	}
	// Record another call while tail follows: it must be printed.
	st, err := audit.Open(ctx, path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := `{"id":"01JNQX0099AAAAAAAAAAAAAAAA","received_at":"2026-03-02T00:00:00Z","server":"fs","tool":"new_tool","action":"allow","status":"started","args":{}}`
	if _, err := st.Import(ctx, strings.NewReader(rec)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for !strings.Contains(w.String(), "new_tool") {
		<-w.ch
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(w.String(), "\n"); n != 2 {
		t.Fatalf("tail -f printed %d lines:\n%s", n, w.String())
	}
}

// notifyWriter is a buffer, safe for one writer and one reader, that
// signals each write.
type notifyWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	n, err := w.buf.Write(p)
	w.mu.Unlock()
	w.ch <- struct{}{}
	return n, err
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestAuditStats(t *testing.T) {
	env := mapEnv{"TOOLGATE_AUDIT_DB": auditDB(t)}
	out, _, err := runAuditCmd(t, env, "stats")
	if err != nil || !strings.Contains(out, "calls:") || !strings.Contains(out, "p50 30s") || !strings.Contains(out, "review-writes") {
		t.Fatalf("stats: %v\n%s", err, out)
	}
	out, _, err = runAuditCmd(t, env, "stats", "--output", "json", "--tool", "run_command")
	var s audit.Stats
	if err != nil || json.Unmarshal([]byte(out), &s) != nil || s.Calls != 2 || s.Deny != 2 {
		t.Fatalf("stats json: %v\n%s", err, out)
	}
}

func TestAuditVerify(t *testing.T) {
	path := auditDB(t)
	env := mapEnv{"TOOLGATE_AUDIT_DB": path}
	out, _, err := runAuditCmd(t, env, "verify")
	// 20 events of the calls, and the 7 contexts they name.
	if err != nil || !strings.HasPrefix(out, "OK: 27 events and 12 calls") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE calls SET review_channel = 'forged' WHERE id = '01JNQX0004AAAAAAAAAAAAAAAA'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, _, err = runAuditCmd(t, env, "verify")
	if !errors.Is(err, errFailed) || !strings.Contains(out, "BROKEN: first bad link: call 01JNQX0004AAAAAAAAAAAAAAAA") ||
		!strings.Contains(out, "review_channel") {
		t.Fatalf("verify tampered: %v\n%s", err, out)
	}
	out, _, err = runAuditCmd(t, env, "verify", "--output", "json")
	if !errors.Is(err, errFailed) || !strings.Contains(out, `"ok": false`) {
		t.Fatalf("verify json: %v\n%s", err, out)
	}
}

// TestAuditVerifyContextTamper: a context event rewritten in place (the
// fields of every decision that names it) fails verify.
func TestAuditVerifyContextTamper(t *testing.T) {
	path := auditDB(t)
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP TRIGGER events_no_update; UPDATE events SET body = replace(body, '"srv":"', '"srv":"x')
		WHERE seq = (SELECT min(seq) FROM events WHERE kind = 'context')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, _, err := runAuditCmd(t, mapEnv{"TOOLGATE_AUDIT_DB": path}, "verify")
	if !errors.Is(err, errFailed) || !strings.Contains(out, "hash mismatch") {
		t.Fatalf("verify of a rewritten context: %v\n%s", err, out)
	}
}

func TestAuditReplay(t *testing.T) {
	env := mapEnv{"TOOLGATE_AUDIT_DB": auditDB(t)}
	newRules := filepath.Join(auditFixture, "rules-new.yaml")
	out, errOut, err := runAuditCmd(t, env, "replay", "--rules", newRules)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "12 calls") || !strings.Contains(out, "7 would change") ||
		!strings.Contains(out, "review (review-writes)  ->  allow (allow-tmp-writes)") || errOut != "" {
		t.Fatalf("replay:\n%s\nstderr: %q", out, errOut)
	}
	if _, _, err := runAuditCmd(t, env, "replay", "--rules", newRules, "--fail-on-change"); !errors.Is(err, errFailed) {
		t.Fatalf("--fail-on-change with changes: %v", err)
	}
	if _, _, err := runAuditCmd(t, env, "replay", "--rules", filepath.Join(auditFixture, "rules-old.yaml"), "--fail-on-change"); err != nil {
		t.Fatalf("--fail-on-change without changes: %v", err)
	}
	out, _, err = runAuditCmd(t, env, "replay", "--rules", newRules, "--tool", "run_command", "--output", "json")
	var rep audit.ReplayReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.Total != 2 || rep.Changed != 2 || rep.Changes[0].NewRule != "review-shell" {
		t.Fatalf("replay json: %v\n%s", err, out)
	}
	if _, _, err := runAuditCmd(t, env, "replay", "--rules", "/nonexistent.yaml"); err == nil {
		t.Fatal("replay with a missing rule file succeeded")
	}
}

// hostileRecord is one call whose agent- and upstream-chosen strings are
// a spreadsheet formula, raw controls and bidi controls: what an agent or
// an upstream can put in the log.
const hostileRecord = `{"client":{"name":"=cmd|' /C calc'!A0","version":"@SUM(1+1)"},` +
	`"model":{"name":"-2+3","version":"+1"},"session":"s-h","server":"ws",` +
	`"id":"01JNQXH001AAAAAAAAAAAAAAAA","received_at":"2026-03-01T10:01:00Z",` +
	`"tool":"=cmd|calc","name":"ws__\u0000nul\u001besc[2J\u202egnp.exe","args":{"p":"a\u202eb\u2066c\u0085d\u200be"},` +
	`"action":"deny","status":"refused","rule":"r","reason":"\tlook\r\u061c"}` + "\n"

// TestAuditExportHostile: CSV cells cannot start a formula nor carry a raw
// control or bidi byte, and the JSON outputs write bidi and other
// invisible runes as \u escapes that decode to the recorded value.
func TestAuditExportHostile(t *testing.T) {
	dir := t.TempDir()
	fixture := filepath.Join(dir, "h.jsonl")
	if err := os.WriteFile(fixture, []byte(hostileRecord), 0o600); err != nil {
		t.Fatal(err)
	}
	env := mapEnv{"TOOLGATE_AUDIT_DB": filepath.Join(dir, "audit.db")}
	if _, _, err := runAuditCmd(t, env, "import", fixture); err != nil {
		t.Fatal(err)
	}
	// rawBad is a byte sequence no output may hold: C0 controls but the
	// line breaks a format uses, DEL, and the UTF-8 of C1, bidi and
	// zero-width runes.
	rawBad := func(out string) string {
		for _, r := range out {
			if (r < 0x20 && r != '\n' && r != '\r') || r == 0x7f || (r >= 0x80 && r <= 0x9f) ||
				(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200b || r == 0x061c {
				return fmt.Sprintf("%U", r)
			}
		}
		return ""
	}

	out, _, err := runAuditCmd(t, env, "export", "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	if r := rawBad(out); r != "" {
		t.Errorf("export csv holds a raw %s:\n%q", r, out)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("export csv: %v, %d rows\n%s", err, len(rows), out)
	}
	cell := map[string]string{}
	for i, h := range rows[0] {
		cell[h] = rows[1][i]
		if c := rows[1][i]; c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			t.Errorf("csv %s = %q starts a formula", h, c)
		}
	}
	for col, want := range map[string]string{
		"tool": `'=cmd|calc`, "client_name": `'=cmd|' /C calc'!A0`, "client_version": `'@SUM(1+1)`,
		"model_name": `'-2+3`, "model_version": `'+1`, "name": `ws__\x00nul\x1besc[2J\u202egnp.exe`,
		"reason": `\tlook\r\u061c`, "args": `{"p":"a\u202eb\u2066c\u0085d\u200be"}`,
	} {
		if cell[col] != want {
			t.Errorf("csv %s = %q, want %q", col, cell[col], want)
		}
	}

	wantArgs := map[string]any{"p": "a\u202eb\u2066c\u0085d\u200be"}
	check := func(what, out string, recs []audit.Record) {
		t.Helper()
		if r := rawBad(out); r != "" {
			t.Errorf("%s holds a raw %s:\n%q", what, r, out)
		}
		if len(recs) != 1 {
			t.Fatalf("%s: %d records\n%s", what, len(recs), out)
		}
		var args map[string]any
		if err := json.Unmarshal(recs[0].Args, &args); err != nil || !reflect.DeepEqual(args, wantArgs) {
			t.Errorf("%s: args decode to %q (%v), want %q", what, args, err, wantArgs)
		}
		if n := recs[0].Name; n != "ws__\x00nul\x1besc[2J\u202egnp.exe" {
			t.Errorf("%s: name decodes to %q", what, n)
		}
	}
	var recs []audit.Record
	for _, args := range [][]string{{"export"}, {"tail", "--output", "json"}} {
		out, _, err = runAuditCmd(t, env, args...)
		if err != nil {
			t.Fatal(err)
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		check(strings.Join(args, " "), out, []audit.Record{r})
	}
	out, _, err = runAuditCmd(t, env, "list", "--output", "json")
	if err != nil || json.Unmarshal([]byte(out), &recs) != nil {
		t.Fatalf("list json: %v\n%s", err, out)
	}
	check("list --output json", out, recs)
	out, _, err = runAuditCmd(t, env, "show", "--output", "json", "01JNQXH001AAAAAAAAAAAAAAAA")
	recs = []audit.Record{{}}
	if err != nil || json.Unmarshal([]byte(out), &recs[0]) != nil {
		t.Fatalf("show json: %v\n%s", err, out)
	}
	check("show --output json", out, recs)
}

// TestAuditShowArchived: show finds a call that was archived out of the
// log when given the archive directory, and without it says where to look.
func TestAuditShowArchived(t *testing.T) {
	path := auditDB(t)
	env := mapEnv{"TOOLGATE_AUDIT_DB": path}
	dir := filepath.Join(t.TempDir(), "archives")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runAuditCmd(t, env, "archive", "--before", "2026-03-01T10:03:30Z", "--to", filepath.Join(dir, "a.db.gz")); err != nil {
		t.Fatal(err)
	}
	const id = "01JNQX0002AAAAAAAAAAAAAAAA" // archived
	_, _, err := runAuditCmd(t, env, "show", id)
	if err == nil || !strings.Contains(err.Error(), "--archive") {
		t.Fatalf("show of an archived call without --archive: %v, want a pointer to --archive", err)
	}
	for _, args := range [][]string{{"show", id, "--archive", dir}, {"show", "--archive", dir, id}} {
		out, _, err := runAuditCmd(t, env, args...)
		if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "deny-env") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	// A call still in the log is shown from it.
	if out, _, err := runAuditCmd(t, env, "show", "01JNQX0008AAAAAAAAAAAAAAAA", "--archive", dir); err != nil || !strings.Contains(out, "via timeout") {
		t.Errorf("show of a live call with --archive: %v\n%s", err, out)
	}
	if _, _, err := runAuditCmd(t, env, "show", "01NOPE", "--archive", dir); err == nil || !strings.Contains(err.Error(), "nor in its archives") {
		t.Errorf("show unknown with --archive: %v", err)
	}
}

// TestAuditReplayMasked: a replay says how many calls it evaluated on
// redaction masks rather than the values, and marks the changed ones: the
// fixture's 01JNQX0010 (a token masked whole) and a call whose path is a
// described mask.
func TestAuditReplayMasked(t *testing.T) {
	path := auditDB(t)
	env := mapEnv{"TOOLGATE_AUDIT_DB": path}
	masked := filepath.Join(t.TempDir(), "masked.jsonl")
	rec := `{"client":{"name":"claude-code"},"session":"s-m","server":"workspace","annotations":{},` +
		`"id":"01JNQXM001AAAAAAAAAAAAAAAA","received_at":"2026-03-01T11:00:00Z","tool":"write_file","name":"ws__write_file",` +
		`"args":{"path":"[REDACTED 12 chars — not shown]"},"action":"deny","status":"refused","rule":"deny-secret-paths"}` + "\n"
	if err := os.WriteFile(masked, []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runAuditCmd(t, env, "import", masked); err != nil {
		t.Fatal(err)
	}
	newRules := filepath.Join(auditFixture, "rules-new.yaml")
	out, _, err := runAuditCmd(t, env, "replay", "--rules", newRules, "--show", "0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "2 of the calls were evaluated on masked values") {
		t.Errorf("replay text does not count the masked call:\n%s", out)
	}
	isMasked := func(id string) bool { return id == "01JNQXM001AAAAAAAAAAAAAAAA" || id == "01JNQX0010AAAAAAAAAAAAAAAA" }
	marked := 0
	for _, l := range strings.Split(out, "\n") {
		for _, f := range strings.Fields(l) { // a changed call's row names its id
			if strings.HasPrefix(f, "01JNQX") && isMasked(f) != strings.Contains(l, "[masked]") {
				t.Errorf("replay text row marks the masked calls wrongly: %q", l)
			}
		}
		if strings.HasSuffix(l, "[masked]") {
			marked++
		}
	}
	if marked != 2 {
		t.Errorf("replay text marks %d changed calls [masked], want 2:\n%s", marked, out)
	}
	out, _, err = runAuditCmd(t, env, "replay", "--rules", newRules, "--output", "json")
	var rep audit.ReplayReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("replay json: %v\n%s", err, out)
	}
	if rep.Masked != 2 {
		t.Errorf("replay json masked = %d, want 2", rep.Masked)
	}
	for _, ch := range rep.Changes {
		if ch.Masked != isMasked(ch.ID) {
			t.Errorf("change %s masked = %v", ch.ID, ch.Masked)
		}
	}
}
