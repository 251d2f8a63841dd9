package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/audit/pgtest"
)

// writeCallsJSONL writes finished calls from to to (indexes; call i is
// made i seconds after start), in the export format, through
// audit.WriteJSONL; the call at index pending is a review still waiting.
func writeCallsJSONL(t *testing.T, path string, from, to, pending int, start time.Time) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs := func(yield func(*audit.Record, error) bool) {
		for i := from; i < to; i++ {
			at := start.Add(time.Duration(i) * time.Second)
			r := &audit.Record{Entry: audit.Entry{
				ID: "c" + strconv.Itoa(i), ReceivedAt: at, DecidedAt: at,
				Client: toolgate.Peer{Name: "claude-code", Version: "2.0.1"}, Session: "s-" + strconv.Itoa(i%50),
				Server: "workspace", Tool: "read_file", Name: "ws__read_file",
				Args:         json.RawMessage(`{"path":"/src/f` + strconv.Itoa(i%1000) + `.go"}`),
				RulesVersion: "sha256:v1", Action: toolgate.Allow, Rule: "allow-reads",
			}, Status: toolgate.StatusOK, Outcome: &toolgate.Outcome{Status: toolgate.StatusOK, Duration: time.Millisecond, ResultSize: 120, FinishedAt: at}}
			if i == pending {
				r.Action, r.Rule, r.Status, r.Outcome = toolgate.Review, "review-reads", toolgate.StatusPending, nil
			}
			if !yield(r, nil) {
				return
			}
		}
	}
	if err := audit.WriteJSONL(f, recs); err != nil {
		t.Fatal(err)
	}
}

// timed runs the binary, fails the test unless it exits 0, and logs how
// long it took.
func timed(t *testing.T, what string, args ...string) string {
	t.Helper()
	t0 := time.Now()
	out, ok := tgRun(t, args...)
	if !ok {
		t.Fatalf("%s: %s", what, out)
	}
	t.Logf("%s: %v", what, time.Since(t0).Round(10*time.Millisecond))
	return out
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestArchiveCLI builds a log of calls with `audit import` (100k; a
// million with TOOLGATE_LONG=1), then through the built binary: archives
// the oldest 30% and then up to 80% (held back by a pending review at
// 60%), checks the disk is reclaimed, verifies the archives and the live
// log as one chain (also against checkpoints signed before the cuts),
// replays across the cut, and shows a missing or altered archive
// reported.
func TestArchiveCLI(t *testing.T) {
	n := 100_000
	if os.Getenv("TOOLGATE_LONG") == "1" && !testing.Short() {
		n = 1_000_000
	}
	dir := t.TempDir()
	db, jsonl := filepath.Join(dir, "audit.db"), filepath.Join(dir, "calls.jsonl")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(frac float64) string {
		return start.Add(time.Duration(frac*float64(n)) * time.Second).Format(time.RFC3339)
	}
	pending := n * 6 / 10
	// Half the calls, a checkpoint, the other half: the checkpoint signs
	// an event the second archive moves out.
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	key, cps := filepath.Join(keys, "ckpt.key"), filepath.Join(keys, "cps.jsonl")
	timed(t, "keygen", "audit", "keygen", "--out", key)
	t0 := time.Now()
	for i, part := range [][2]int{{0, n / 2}, {n / 2, n}} {
		writeCallsJSONL(t, jsonl, part[0], part[1], pending, start)
		timed(t, "import", "audit", "import", "--db", db, jsonl)
		if i == 0 {
			timed(t, "checkpoint", "audit", "checkpoint", "--db", db, "--key", key, "--publish", cps)
		}
	}
	t.Logf("import: %.0f calls/s (with one checkpoint); DB %s", float64(n)/time.Since(t0).Seconds(), mib(fileSize(t, db)))

	a1, a2 := filepath.Join(dir, "a1.db.gz"), filepath.Join(dir, "a2.db.gz")
	out := timed(t, "archive 30%", "audit", "archive", "--db", db, "--before", at(0.3), "--to", a1)
	t.Logf("archive 30%%:\n%s", out)
	if want := "archived " + strconv.Itoa(n*3/10) + " calls"; !strings.HasPrefix(out, want) {
		t.Fatalf("archive 30%%: %s\nwant %q", out, want)
	}
	sizeBefore := fileSize(t, db)
	out = timed(t, "archive 80%", "audit", "archive", "--db", db, "--before", at(0.8), "--to", a2)
	t.Logf("archive 80%%:\n%s", out)
	if want := "archived " + strconv.Itoa(pending-n*3/10) + " calls"; !strings.HasPrefix(out, want) ||
		!strings.Contains(out, "held back: call c"+strconv.Itoa(pending)) {
		t.Fatalf("archive up to 80%%: %s\nwant %q, held back by the pending review", out, want)
	}
	sizeAfter := fileSize(t, db)
	t.Logf("DB %s -> %s; archives %s + %s", mib(sizeBefore), mib(sizeAfter), mib(fileSize(t, a1)), mib(fileSize(t, a2)))
	if sizeAfter > sizeBefore*6/10 {
		t.Errorf("DB file %d bytes after archiving 30%% of what it held, was %d: disk not reclaimed", sizeAfter, sizeBefore)
	}

	out = timed(t, "verify live", "audit", "verify", "--db", db)
	wantLive := regexp.MustCompile(`^OK: \d+ events and ` + strconv.Itoa(n-pending) + ` calls verified`)
	if !wantLive.MatchString(out) {
		t.Fatalf("verify of the live log after the cuts: %s", out)
	}
	out = timed(t, "verify --checkpoints --archive", "audit", "verify", "--db", db, "--checkpoints", cps, "--pubkey", key+".pub", "--archive", dir)
	if !strings.HasPrefix(out, "OK: 1 checkpoints") || !strings.Contains(out, "(with 2 archives)") || !strings.Contains(out, " and "+strconv.Itoa(n)+" calls verify") {
		t.Fatalf("verify --checkpoints --archive DIR: %s", out)
	}
	if out, ok := tgRun(t, "audit", "verify", "--db", db, "--checkpoints", cps, "--pubkey", key+".pub"); ok || !strings.Contains(out, "moved to an archive") {
		t.Fatalf("verify --checkpoints without the archives must fail: %s", out)
	}

	out = timed(t, "replay --archive", "audit", "replay", "--db", db, "--archive", a1, a2, "--rules", "../../testdata/audit/rules-new.yaml", "--output", "json")
	var rep audit.ReplayReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("replay output: %v\n%.500s", err, out)
	}
	if rep.Total != n {
		t.Fatalf("replay --archive replayed %d calls, want %d", rep.Total, n)
	}

	if n <= 100_000 { // each verifies the whole log again: the long run spares them
		out := timed(t, "verify --archive", "audit", "verify", "--db", db, "--archive", a2, a1)
		if !strings.HasPrefix(out, "OK: 2 archives") || !strings.Contains(out, " and "+strconv.Itoa(n)+" calls;") {
			t.Fatalf("verify --archive: %s", out)
		}
		if out, ok := tgRun(t, "audit", "verify", "--db", db, "--archive", a2); ok || !strings.Contains(out, "archive missing") {
			t.Fatalf("verify with the first archive missing: %s", out)
		}
	}
	// One byte of the compressed archive flipped.
	flipByte(t, a1)
	if out, ok := tgRun(t, "audit", "verify", "--db", db, "--archive", a1, a2); ok {
		t.Fatalf("verify with an altered archive passed: %s", out)
	}
}

// TestArchiveCLIPostgres: `audit archive` on a log in PostgreSQL writes
// the same archive file as on SQLite, and `audit verify --archive` checks
// it and the database as one chain; an altered archive, or a row or an
// event altered in the database, fails the verify.
func TestArchiveCLIPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	const n = 2000
	dir := t.TempDir()
	jsonl, arch := filepath.Join(dir, "calls.jsonl"), filepath.Join(dir, "a1.db.gz")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writeCallsJSONL(t, jsonl, 0, n, -1, start)
	timed(t, "import", "audit", "import", "--db", dsn, jsonl)
	out := timed(t, "archive", "audit", "archive", "--db", dsn, "--before", start.Add(n/2*time.Second).Format(time.RFC3339), "--to", arch)
	if want := "archived " + strconv.Itoa(n/2) + " calls"; !strings.HasPrefix(out, want) {
		t.Fatalf("archive: %s\nwant %q", out, want)
	}
	out = timed(t, "verify --archive", "audit", "verify", "--db", dsn, "--archive", arch)
	if !strings.HasPrefix(out, "OK: 1 archives") || !strings.Contains(out, " and "+strconv.Itoa(n)+" calls;") {
		t.Fatalf("verify --archive: %s", out)
	}
	if out, ok := tgRun(t, "audit", "verify", "--db", dsn); !ok || !strings.Contains(out, strconv.Itoa(n/2)+" calls") {
		t.Fatalf("verify of the live log: %s", out)
	}
	out = timed(t, "stats --archive", "audit", "stats", "--db", dsn, "--archive", arch, "--output", "json")
	var st audit.Report
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Calls != n {
		t.Fatalf("stats --archive counted %d calls, want %d (%v): %.500s", st.Calls, n, err, out)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tamper := func(what, sql, undo string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if out, ok := tgRun(t, "audit", "verify", "--db", dsn, "--archive", arch); ok {
			t.Errorf("verify --archive passed with %s: %s", what, out)
		}
		if _, err := conn.Exec(ctx, undo); err != nil {
			t.Fatalf("undo %s: %v", what, err)
		}
	}
	last := "c" + strconv.Itoa(n-1)
	tamper("a live row altered", `UPDATE calls SET received_at = received_at + 1 WHERE id = '`+last+`'`,
		`UPDATE calls SET received_at = received_at - 1 WHERE id = '`+last+`'`)
	tamper("a live event altered", `ALTER TABLE events DISABLE TRIGGER events_no_update;
		UPDATE events SET body = replace(body, 'allow-reads', 'allow-write') WHERE call_id = '`+last+`'`,
		`UPDATE events SET body = replace(body, 'allow-write', 'allow-reads') WHERE call_id = '`+last+`';
		ALTER TABLE events ENABLE TRIGGER events_no_update`)
	if out, ok := tgRun(t, "audit", "verify", "--db", dsn, "--archive", arch); !ok {
		t.Fatalf("verify after undoing the edits: %s", out)
	}
	flipByte(t, arch)
	if out, ok := tgRun(t, "audit", "verify", "--db", dsn, "--archive", arch); ok {
		t.Fatalf("verify with an altered archive passed: %s", out)
	}
}

// flipByte flips one bit of the byte in the middle of the file at path, as
// whoever can write an archive might.
func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
