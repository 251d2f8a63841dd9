package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit/pgtest"
)

// TestArchiveWhileReplicasAppend: on PostgreSQL, two replicas archive the
// same log at once while both go on appending calls. One archive takes
// the calls before the cut; the other prunes nothing (it raced, or found
// nothing left); no call is lost or archived twice, and the archive and
// the live log verify as one chain.
func TestArchiveWhileReplicasAppend(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	clk := newClock()
	a := openTest(t, dsn, Options{Now: clk.Now, Owner: "a"})
	b := openTest(t, dsn, Options{Now: clk.Now, Owner: "b"})
	var n atomic.Int64
	call := func(s *Store) error {
		i := n.Add(1)
		id := fmt.Sprintf("01W%05d", i)
		if err := s.Begin(ctx, testCall(id, int(i)), testDecision(toolgate.Allow)); err != nil {
			return err
		}
		return s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK})
	}
	for i := range 200 {
		if err := call([]*Store{a, b}[i%2]); err != nil {
			t.Fatal(err)
		}
	}
	flush := func() {
		t.Helper()
		for _, s := range []*Store{a, b} {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The outcomes are written behind: committed before the cut time.
	flush()
	cutTime := clk.Now()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for _, s := range []*Store{a, b} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := call(s); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "a.db.gz"), filepath.Join(dir, "b.db.gz")}
	results := make([]*ArchiveResult, 2)
	archErrs := make([]error, 2)
	var aw sync.WaitGroup
	for i, s := range []*Store{a, b} {
		aw.Go(func() {
			results[i], archErrs[i] = s.Archive(ctx, ArchiveOptions{Before: cutTime, To: files[i], Vacuum: i == 0})
		})
	}
	aw.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	won := -1
	for i, err := range archErrs {
		switch {
		case err == nil:
			if won >= 0 {
				t.Fatalf("both replicas archived: %+v and %+v", results[0].Info, results[1].Info)
			}
			won = i
		case errors.Is(err, ErrArchiveRace) || errors.Is(err, ErrNothingToArchive):
			if _, serr := os.Stat(files[i]); !os.IsNotExist(serr) {
				t.Errorf("replica %d's archive failed (%v) but left its file: %v", i, err, serr)
			}
		default:
			t.Fatalf("replica %d: archive: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatalf("no replica archived: %v, %v", archErrs[0], archErrs[1])
	}
	if got := results[won].Info.Calls; got != 200 {
		t.Errorf("archived %d calls, want the 200 before the cut", got)
	}
	flush()
	t.Logf("archived by replica %d; the other: %v; %d calls recorded", won, archErrs[1-won], n.Load())
	l := &archiveLog{t: t, s: a, dir: dir}
	rep := l.verifyAll(filepath.Base(files[won]))
	if !rep.OK() {
		t.Fatalf("VerifyArchives = %+v", rep)
	}
	if _, calls := rep.Events(); calls != n.Load() {
		t.Errorf("the archive and the live log hold %d calls, %d were recorded", calls, n.Load())
	}
}

// TestRetentionOneReplicaAtATime: while another replica holds the
// retention lock, ApplyRetention archives nothing; once it is released,
// the run archives, though the log of another schema in the same database
// is applying its retention meanwhile.
func TestRetentionOneReplicaAtATime(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, dsn, Options{Now: clk.Now})
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeSyntheticJSONL(pw, 50, clk.Now().Add(-48*time.Hour))) }()
	if _, err := s.Import(ctx, pr); err != nil {
		t.Fatal(err)
	}
	// Another application's table in the same schema is not the log's.
	size, err := s.dbBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, dsn).ExecContext(ctx, `CREATE TABLE other_app AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 10000) g`); err != nil {
		t.Fatal(err)
	}
	if after, err := s.dbBytes(ctx); err != nil || after != size {
		t.Fatalf("the log's size went from %d to %d bytes (%v) with another table in its schema", size, after, err)
	}
	lock := func(dsn string) *sql.Conn {
		c, err := rawDB(t, dsn).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext(current_schema()), ?)`, pgRetentionLock); err != nil {
			t.Fatal(err)
		}
		return c
	}
	lock(pgtest.DSN(t))
	other := lock(dsn)
	r := Retention{MaxAge: 24 * time.Hour, Dir: t.TempDir()}
	if res, err := s.ApplyRetention(ctx, r); !errors.Is(err, ErrNothingToArchive) {
		t.Fatalf("retention while another replica applies it = %+v, %v; want it skipped", res, err)
	}
	if files, _ := filepath.Glob(filepath.Join(r.Dir, "*")); len(files) != 0 {
		t.Fatalf("a skipped retention run wrote %v", files)
	}
	if _, err := other.ExecContext(ctx, `SELECT pg_advisory_unlock(hashtext(current_schema()), ?)`, pgRetentionLock); err != nil {
		t.Fatal(err)
	}
	res, err := s.ApplyRetention(ctx, r)
	if err != nil || res.Info.Calls != 50 {
		t.Fatalf("retention after the lock was released = %+v, %v; want the 50 calls archived", res, err)
	}
}

// BenchmarkArchivePostgres measures archiving and pruning 100,000 calls
// (the older half of a log of 200,000) on PostgreSQL, and what becomes of
// the space the prune frees: the log's size (pg_total_relation_size of its
// tables) before the archive, after the prune, and after 50,000 calls
// more are recorded, with and without the plain VACUUM after the prune.
// Autovacuum is off for the log's tables, so that it does not vacuum the
// no-vacuum case meanwhile. The log is built in SQLite and copied into
// PostgreSQL (CopyFrom), which is faster than importing it there.
//
//	.ci/postgres.sh run go test -run '^$' -bench ArchivePostgres -benchtime 1x -timeout 30m ./audit
func BenchmarkArchivePostgres(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("TOOLGATE_BENCH_CALLS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	load := func(b *testing.B, s *Store, calls int, from time.Time) {
		b.Helper()
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeSyntheticJSONL(pw, calls, from)) }()
		if got, err := s.Import(ctx, pr); err != nil || got != calls {
			b.Fatalf("Import = %d, %v", got, err)
		}
	}
	src := openTest(b, filepath.Join(b.TempDir(), "src.db"), Options{Now: time.Now})
	load(b, src, 2*n, start)
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	for _, vacuum := range []bool{false, true} {
		b.Run(fmt.Sprintf("vacuum=%v", vacuum), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				dsn := pgtest.DSN(b)
				s := openTest(b, dsn, Options{Now: time.Now})
				if _, err := rawDB(b, dsn).ExecContext(ctx, `ALTER TABLE events SET (autovacuum_enabled = false);
					ALTER TABLE calls SET (autovacuum_enabled = false); ALTER TABLE review_approvals SET (autovacuum_enabled = false)`); err != nil {
					b.Fatal(err)
				}
				if rep, err := s.CopyFrom(ctx, src); err != nil || !rep.OK() {
					b.Fatalf("CopyFrom = %+v, %v", rep, err)
				}
				b.StartTimer()
				res, err := s.Archive(ctx, ArchiveOptions{Before: start.Add(time.Duration(n) * time.Second), To: filepath.Join(b.TempDir(), "a.db.gz"), Vacuum: vacuum})
				b.StopTimer()
				if err != nil || res.Info.Calls != int64(n) {
					b.Fatalf("Archive = %+v, %v; want %d calls", res, err, n)
				}
				load(b, s, n/2, start.Add(time.Duration(3*n)*time.Second))
				refilled, err := s.dbBytes(ctx)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.Copy.Seconds(), "copy-s")
				b.ReportMetric(res.Prune.Seconds(), "prune-s")
				b.ReportMetric(res.Vacuum.Seconds(), "vacuum-s")
				b.ReportMetric(mib(res.Bytes), "archive-MiB")
				b.ReportMetric(mib(res.DBBytes), "before-MiB")
				b.ReportMetric(mib(res.DBBytesAfter), "after-MiB")
				b.ReportMetric(mib(refilled), "refilled-MiB")
			}
		})
	}
}
