package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

// TestMigrateSchema13 opens a log written at schema 13 (testdata: the
// fixture calls imported, then allowed, denied, reviewed, pending and
// old-layout calls; schema13.jsonl and schema13.stats.json are what that
// build listed and counted) and checks that the slim calls table it is
// migrated to lists, counts and verifies the same calls, and takes new ones.
func TestMigrateSchema13(t *testing.T) {
	ctx := context.Background()
	path := schema13Copy(t)
	s := openTest(t, path, Options{})
	recs, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Seq = 0
	}
	var got bytes.Buffer
	if err := WriteJSONL(&got, func(yield func(*Record, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/schema13.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("records after migration differ:\n got %s\nwant %s", got.String(), want)
	}
	st, err := s.Stats(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	wantStats, err := os.ReadFile("testdata/schema13.stats.json")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.MarshalIndent(st, "", " "); string(b) != string(wantStats) {
		t.Errorf("stats after migration:\n got %s\nwant %s", b, wantStats)
	}
	for _, f := range []Filter{{Tool: "write_file"}, {Session: "sess-1"}, {User: "alice"}, {Kind: "resource"}, {Rule: "r-review", Action: "review"}} {
		n := 0
		for _, r := range recs {
			e := r.Entry
			if (f.Tool == "" || e.Tool == f.Tool) && (f.Session == "" || e.Session == f.Session) && (f.User == "" || e.Principal.User == f.User) &&
				(f.Kind == "" || e.KindName() == f.Kind) && (f.Rule == "" || e.Rule == f.Rule) && (f.Action == "" || string(e.Action) == f.Action) {
				n++
			}
		}
		if got, err := s.List(ctx, f); err != nil || len(got) != n || n == 0 {
			t.Errorf("List(%+v) = %d calls, %v; want %d", f, len(got), err, n)
		}
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify after migration = %+v, %v", rep, err)
	}
	// Only the call whose decision event lacks its arguments keeps a copy.
	var kept []string
	rows, err := rawDB(t, path).Query(`SELECT id FROM calls WHERE args IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		kept = append(kept, id)
	}
	rows.Close()
	if len(kept) != 1 || kept[0] != "01OLD" {
		t.Errorf("rows keeping their args after migration: %v; want [01OLD]", kept)
	}
	old, err := s.Get(ctx, "01OLD")
	if err != nil || !bytes.Contains(old.Args, []byte("/tmp/f5")) {
		t.Fatalf("old-layout call's args after migration = %+v, %v", old, err)
	}
	// The pending review carries on: its message, its verdict, its outcome.
	ps, err := s.PendingReviews(ctx)
	if err != nil || len(ps) != 2 || ps[1].Call.ID != "01M4" || ps[1].SlackTS != "1.5" {
		t.Fatalf("pending reviews after migration = %+v, %v", ps, err)
	}
	if err := s.Resolve(ctx, "01M4", toolgate.Verdict{Approved: true, Reviewer: "U-bob", Channel: "slack"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, "01M4", toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx, testCall("01NEW", 9), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Get(ctx, "01M4"); err != nil || r.Status != toolgate.StatusOK || r.Review == nil || r.Review.Reviewer != "U-bob" {
		t.Fatalf("01M4 after its verdict = %+v, %v", r, err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() || rep.Calls != int64(len(recs)+1) {
		t.Fatalf("Verify after new calls = %+v, %v", rep, err)
	}
}

// TestReadOnlyOpenWaitsForMigration: a reader (a CLI command) that opens
// the log while a writer (serve starting) has yet to migrate it waits for
// the migration instead of failing; with no writer it says to migrate.
func TestReadOnlyOpenWaitsForMigration(t *testing.T) {
	path := schema13Copy(t)
	ctx := context.Background()
	if _, err := Open(ctx, path, Options{ReadOnly: true, BusyTimeout: 50 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "migrate it") {
		t.Fatalf("read-only open of an unmigrated log: %v, want the advice to migrate it", err)
	}
	opened := make(chan error, 1)
	go func() {
		r, err := Open(ctx, path, Options{ReadOnly: true, BusyTimeout: 10 * time.Second})
		if err == nil {
			err = r.Close()
		}
		opened <- err
	}()
	time.Sleep(100 * time.Millisecond) // the reader has seen schema 13 by now
	openTest(t, path, Options{})       // the writer migrates
	if err := <-opened; err != nil {
		t.Fatalf("read-only open during the migration: %v", err)
	}
}

// schema13Copy is a copy of the schema-13 fixture log, to migrate.
func schema13Copy(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("testdata/schema13.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
