package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestGoneLogRefusesWrites: while the audit DB or its WAL at the configured
// path is not the file the Store opened, every decision write fails with
// ErrGone (so the gate refuses the call) and nothing is recorded; once the
// original file is back at its path, writes resume.
func TestGoneLogRefusesWrites(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// hide makes the path name something else, and returns how to
		// put the original back (nil: it cannot come back).
		hide func(t *testing.T, path string) (restore func())
		want string // a format for the path
	}{
		{"db moved away and back", func(t *testing.T, path string) func() {
			return moveAway(t, path)
		}, "(%s does not exist)"},
		{"wal moved away and back", func(t *testing.T, path string) func() {
			return moveAway(t, path+walSuffix)
		}, "(its write-ahead log: %s-wal does not exist)"},
		{"db deleted", func(t *testing.T, path string) func() {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return nil
		}, "(%s does not exist)"},
		{"db replaced by a copy", func(t *testing.T, path string) func() {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".new", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
			return nil
		}, "(%s is another file than the one opened)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			s := openTest(t, path, Options{})
			if err := s.Begin(ctx, testCall("01BEFORE", 1), testDecision(toolgate.Review)); err != nil {
				t.Fatal(err)
			}

			restore := tc.hide(t, path)
			err := s.Begin(ctx, testCall("01GONE", 2), testDecision(toolgate.Allow))
			if !errors.Is(err, ErrGone) {
				t.Fatalf("Begin with the log %s: err = %v, want ErrGone", tc.name, err)
			}
			for _, want := range []string{"audit log " + path + " was deleted or replaced while toolgate was running; calls are refused until it is back", fmt.Sprintf(tc.want, path)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Begin error %q lacks %q", err, want)
				}
			}
			if err := s.Resolve(ctx, "01BEFORE", toolgate.Verdict{Approved: true, Reviewer: "U1", Channel: "slack"}); !errors.Is(err, ErrGone) {
				t.Errorf("Resolve with the log %s: err = %v, want ErrGone", tc.name, err)
			}
			if restore == nil {
				return
			}

			restore()
			if err := s.Begin(ctx, testCall("01BACK", 3), testDecision(toolgate.Allow)); err != nil {
				t.Fatalf("Begin with the log back: %v", err)
			}
			if _, err := s.Get(ctx, "01GONE"); !errors.Is(err, ErrNotFound) {
				t.Errorf("the refused Begin left a row (err %v)", err)
			}
			if r, err := s.Get(ctx, "01BEFORE"); err != nil || r.Status != toolgate.StatusPending {
				t.Errorf("the refused Resolve changed the call: %+v, %v", r, err)
			}
			if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
				t.Errorf("Verify: %v %+v", err, rep.Problems)
			}
		})
	}
}

// TestGoneLogAncestorMoved: a directory above the log's, renamed, takes
// the log from its path with no event in the log's own directory: the
// checks stat again at least every fullCheckEvery, so writes are refused
// soon after, and resume once it is back.
func TestGoneLogAncestorMoved(t *testing.T) {
	ctx := context.Background()
	top := t.TempDir()
	path := filepath.Join(top, "a", "state", "audit.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path, Options{})
	if err := s.Begin(ctx, testCall("01ANC0", 0), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	restore := moveAway(t, filepath.Join(top, "a"))
	deadline := time.Now().Add(20 * time.Second)
	for i := 1; ; i++ {
		err := s.Begin(ctx, testCall(fmt.Sprintf("01ANC%d", i), i), testDecision(toolgate.Allow))
		if errors.Is(err, ErrGone) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("Begin %d with the log's parent moved away: %v; want ErrGone", i, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	restore()
	// The calls spooled before the check saw the move are imported once
	// the writer retries; appends are refused until then.
	for i := 100; ; i++ {
		err := s.Begin(ctx, testCall(fmt.Sprintf("01ANC%d", i), i), testDecision(toolgate.Allow))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Begin with the log back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Errorf("Verify: %v %+v", err, rep.Problems)
	}
}

// moveAway renames path aside and returns how to move it back.
func moveAway(t *testing.T, path string) func() {
	t.Helper()
	if err := os.Rename(path, path+".aside"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Rename(path+".aside", path); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkLiveFilesCheck is the cost the liveness check adds to each
// decision and commit: a read of the watch that finds nothing, mostly (a
// stat of the DB and of its WAL where there is no watch).
func BenchmarkLiveFilesCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.db")
	s := openTest(b, path, Options{})
	if s.files.wal == nil {
		b.Fatal("no WAL remembered")
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.files.check(path); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGoneLogImportBacksOff: a spooled record whose import keeps failing
// (the log deleted under it) is retried later after each failure, not in a
// loop: a second of it makes a handful of attempts, each logged, where
// retrying at once made thousands and flooded the log.
func TestGoneLogImportBacksOff(t *testing.T) {
	if onPostgres() {
		t.Skip("the spool is SQLite's")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	logs := &toolgatetest.SyncBuffer{}
	s := openTest(t, path, Options{importDelay: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err := s.Begin(ctx, testCall("01SPOOLED", 1), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	failures := func() int { return strings.Count(logs.String(), "audit: write behind failed") }
	toolgatetest.Eventually(t, "the import failing", func() bool { return failures() > 0 })
	time.Sleep(time.Second)
	if n := failures(); n > 20 {
		t.Fatalf("%d failed imports within about a second of the log's deletion, want a handful", n)
	}
}
