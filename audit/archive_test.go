package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit/pgtest"
	"github.com/toolgate/toolgate/toolgatetest"
)

// writeSyntheticJSONL writes n records in the format Import reads: calls
// one second apart from start, each allowed and finished ok.
func writeSyntheticJSONL(w io.Writer, n int, start time.Time) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var line []byte
	for i := range n {
		at := start.Add(time.Duration(i) * time.Second)
		line = append(line[:0], `{"id":"c`...)
		line = strconv.AppendInt(line, int64(i), 10)
		line = append(line, `","received_at":"`...)
		line = at.AppendFormat(line, time.RFC3339Nano)
		line = append(line, `","decided_at":"`...)
		line = at.AppendFormat(line, time.RFC3339Nano)
		line = append(line, `","client":{"name":"claude-code","version":"2.0.1"},"session":"s-`...)
		line = strconv.AppendInt(line, int64(i%50), 10)
		line = append(line, `","server":"workspace","tool":"read_file","name":"ws__read_file","annotations":{},"args":{"path":"/src/f`...)
		line = strconv.AppendInt(line, int64(i%1000), 10)
		line = append(line, `.go"},"rules_version":"sha256:v1","action":"allow","rule":"allow-reads","status":"ok","outcome":{"status":"ok","duration":1500000,"result_size":120,"finished_at":"`...)
		line = at.AppendFormat(line, time.RFC3339Nano)
		line = append(line, "\"}}\n"...)
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// archiveLog is a store whose clock the test reads, with helpers for
// recording calls through the live API.
type archiveLog struct {
	t   *testing.T
	s   *Store
	clk *clock
	dir string
	n   int
}

func newArchiveLog(t *testing.T) *archiveLog {
	clk := newClock()
	dir := t.TempDir()
	loc := filepath.Join(dir, "audit.db")
	if onPostgres() {
		loc = pgtest.DSN(t)
	}
	return &archiveLog{t: t, s: openTest(t, loc, Options{Now: clk.Now}), clk: clk, dir: dir}
}

func (l *archiveLog) begin(id string, a toolgate.Action) {
	l.t.Helper()
	l.n++
	if err := l.s.Begin(context.Background(), testCall(id, l.n), testDecision(a)); err != nil {
		l.t.Fatal(err)
	}
}

func (l *archiveLog) finish(id string) {
	l.t.Helper()
	if err := l.s.Finish(context.Background(), id, toolgate.Outcome{Status: toolgate.StatusOK, ResultSize: 3}); err != nil {
		l.t.Fatal(err)
	}
}

// now is a time after everything recorded so far.
func (l *archiveLog) now() time.Time { return l.clk.Now() }

func (l *archiveLog) archive(before time.Time, name string) (*ArchiveResult, error) {
	return l.s.Archive(context.Background(), ArchiveOptions{Before: before, To: filepath.Join(l.dir, name)})
}

func (l *archiveLog) open(names ...string) []*Archived {
	l.t.Helper()
	var out []*Archived
	for _, n := range names {
		a, err := OpenArchive(context.Background(), filepath.Join(l.dir, n), l.t.TempDir())
		if err != nil {
			l.t.Fatal(err)
		}
		l.t.Cleanup(func() { a.Close() })
		out = append(out, a)
	}
	return out
}

func (l *archiveLog) verifyAll(names ...string) ArchiveReport {
	l.t.Helper()
	rep, err := VerifyArchives(context.Background(), l.s, l.open(names...))
	if err != nil {
		l.t.Fatal(err)
	}
	return rep
}

func (l *archiveLog) ids() []string {
	l.t.Helper()
	var ids []string
	for r, err := range l.s.Records(context.Background(), Filter{}) {
		if err != nil {
			l.t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

func mustOK(t *testing.T, what string, rep VerifyReport) {
	t.Helper()
	if !rep.OK() {
		t.Fatalf("%s: %v", what, rep.Problems)
	}
}

func TestArchiveMovesWholeFinishedCallsAndChainVerifies(t *testing.T) {
	ctx := context.Background()
	l := newArchiveLog(t)
	l.begin("a1", toolgate.Allow)
	l.finish("a1")
	l.begin("a2", toolgate.Deny)
	l.begin("p3", toolgate.Review) // pending: holds back the cut
	l.begin("a4", toolgate.Allow)
	l.finish("a4")
	cutTime := l.now()
	l.begin("a5", toolgate.Allow)
	l.finish("a5")

	res, err := l.archive(cutTime, "one.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	if res.Info.Calls != 2 || res.HeldBack == nil || res.HeldBack.CallID != "p3" || !strings.Contains(res.HeldBack.Why, "pending") {
		t.Fatalf("first archive = %+v, held back %+v; want a1, a2 archived and the cut held back by pending p3", res.Info, res.HeldBack)
	}
	if got := strings.Join(l.ids(), ","); got != "p3,a4,a5" {
		t.Fatalf("live calls after archive = %s, want p3,a4,a5", got)
	}
	rep, err := l.s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, "live Verify after the cut", rep)

	// The review ends after a5 was decided: p3's verdict follows a5's
	// decision, so p3 cannot move without a5, which was decided after
	// the cut time.
	if err := l.s.Resolve(ctx, "p3", toolgate.Verdict{Approved: false, Reviewer: "bob", Channel: "terminal"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.archive(cutTime, "two.db.gz"); !errors.Is(err, ErrNothingToArchive) {
		t.Fatalf("archive of p3 without a5: err = %v, want ErrNothingToArchive", err)
	}
	later := l.now()
	res2, err := l.archive(later, "two.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	if res2.Info.Calls != 3 || res2.HeldBack != nil || res2.Info.Start != res.Info.Head {
		t.Fatalf("second archive = %+v (held back %+v), want 3 calls starting at the first's head %+v", res2.Info, res2.HeldBack, res.Info.Head)
	}
	// Only the second cut's event is left: no call, no archive.
	if _, err := l.archive(l.now(), "three.db.gz"); !errors.Is(err, ErrNothingToArchive) {
		t.Fatalf("third archive: err = %v, want ErrNothingToArchive", err)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "three.db.gz")); !os.IsNotExist(err) {
		t.Errorf("an archive with nothing in it was written: %v", err)
	}

	all := l.verifyAll("two.db.gz", "one.db.gz") // any order
	if !all.OK() {
		t.Fatalf("VerifyArchives = %+v", all)
	}
	if ev, calls := all.Events(); calls != 5 || ev < 9 {
		t.Errorf("VerifyArchives checked %d events, %d calls; want every event and 5 calls", ev, calls)
	}

	t.Run("combined", func(t *testing.T) {
		c, err := OpenCombined(ctx, l.s, []string{filepath.Join(l.dir, "two.db.gz"), filepath.Join(l.dir, "one.db.gz")}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var ids []string
		for r, err := range c.Records(ctx, Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		if got := strings.Join(ids, ","); got != "a1,a2,p3,a4,a5" {
			t.Errorf("combined records = %s, want all five in order", got)
		}
		rep, err := c.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustOK(t, "Verify of the combined view", rep)
	})
	t.Run("missing archive", func(t *testing.T) {
		for _, names := range [][]string{{"two.db.gz"}, {"one.db.gz"}} {
			rep := l.verifyAll(names...)
			if rep.OK() || !strings.Contains(rep.Problems[0].What, "archive missing") {
				t.Errorf("VerifyArchives(%v) = %+v, want an archive reported missing", names, rep.Problems)
			}
		}
	})
	t.Run("archive file replaced", func(t *testing.T) {
		// A well-formed archive of another log's events: it chains on
		// its own, but its hash is not the one the cut recorded.
		other := newArchiveLog(t)
		other.begin("x1", toolgate.Allow)
		other.finish("x1")
		if _, err := other.archive(other.now(), "one.db.gz"); err != nil {
			t.Fatal(err)
		}
		rep, err := VerifyArchives(ctx, l.s, append(other.open("one.db.gz"), l.open("two.db.gz")...))
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() {
			t.Fatal("VerifyArchives accepted another log's archive")
		}
	})
	t.Run("event altered in an archive", func(t *testing.T) {
		a := l.open("one.db.gz")[0]
		if _, err := rawDB(t, a.tmp).Exec(`DROP TRIGGER events_no_update; UPDATE events SET at = at + 1 WHERE call_id = 'a1'`); err != nil {
			t.Fatal(err)
		}
		rep, err := VerifyArchives(ctx, l.s, append([]*Archived{a}, l.open("two.db.gz")...))
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || rep.Archives[0].Report.OK() {
			t.Fatalf("VerifyArchives missed an altered archived event: %+v", rep)
		}
	})
}

func TestArchiveNeverSplitsACall(t *testing.T) {
	l := newArchiveLog(t)
	l.begin("a", toolgate.Allow)
	cutTime := l.now()
	l.begin("b", toolgate.Allow)
	l.finish("a")
	l.finish("b")
	// a was decided before the cut time, but its outcome follows b's
	// decision (after it): a cannot move without b, nor b before it.
	if _, err := l.archive(cutTime, "x.db.gz"); !errors.Is(err, ErrNothingToArchive) {
		t.Fatalf("archive = %v, want ErrNothingToArchive", err)
	}
	l.begin("c", toolgate.Allow) // started, never finished
	l.begin("d", toolgate.Deny)
	res, err := l.archive(l.now(), "y.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	if res.Info.Calls != 2 || res.HeldBack == nil || res.HeldBack.CallID != "c" || res.HeldBack.Why != "still started" {
		t.Fatalf("archive = %+v, held back %+v; want a and b, held back by the started call c", res.Info, res.HeldBack)
	}
	if got := strings.Join(l.ids(), ","); got != "c,d" {
		t.Fatalf("live calls = %s, want c,d", got)
	}
	rep, err := l.s.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, "Verify", rep)
}

func TestEventsDeleteRefusedBeyondTheCut(t *testing.T) {
	l := newArchiveLog(t)
	l.begin("a", toolgate.Deny)
	l.begin("b", toolgate.Deny)
	db := rawDB(t, l.s.Path())
	if _, err := db.Exec(`DELETE FROM events WHERE seq = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("DELETE of an event before any archive: err = %v, want append-only", err)
	}
	if _, err := l.archive(l.now(), "a.db.gz"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM events`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("DELETE of the events kept after the cut: err = %v, want append-only", err)
	}
}

func TestVerifyReportsChainBaseMovedByHand(t *testing.T) {
	// Whoever can write the DB deletes the oldest events and moves the
	// chain base past them: without a cut event recording that head,
	// Verify says so.
	l := newArchiveLog(t)
	for _, id := range []string{"a", "b", "c"} {
		l.begin(id, toolgate.Deny)
	}
	// calls reflects the three before the tampering: a projection after it
	// would write rows for the deleted events, a problem of its own.
	if err := l.s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, l.s.Path())
	var head []byte
	if err := db.QueryRow(`SELECT hash FROM events WHERE seq = 2`).Scan(&head); err != nil {
		t.Fatal(err)
	}
	// chain_base holds the hash as hex text, as Archive writes it.
	if _, err := db.Exec(`INSERT INTO chain_base (id, seq, hash) VALUES (1, 2, ?)`, hashHex(head)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM calls WHERE id IN ('a', 'b'); DELETE FROM events WHERE seq <= 2`); err != nil {
		t.Fatal(err)
	}
	rep, err := l.s.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !strings.Contains(rep.First().What, "no chained cut event") {
		t.Fatalf("Verify = %+v, want the unrecorded chain base reported", rep.Problems)
	}
}

func TestCheckpointsAcrossAnArchive(t *testing.T) {
	ctx := context.Background()
	l := newArchiveLog(t)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	l.begin("a", toolgate.Deny)
	cp1, err := l.s.Checkpoint(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	l.begin("b", toolgate.Deny)
	if _, err := l.archive(l.now(), "a.db.gz"); err != nil {
		t.Fatal(err)
	}
	l.begin("c", toolgate.Deny)
	cp2, err := l.s.Checkpoint(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	cps := []*Checkpoint{cp1, cp2}
	rep, err := l.s.VerifyCheckpoints(ctx, cps, pub, l.open("a.db.gz")...)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("VerifyCheckpoints with the archive = %+v", rep)
	}
	rep, err = l.s.VerifyCheckpoints(ctx, cps, pub)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !strings.Contains(rep.Problems[0].What, "moved to an archive") {
		t.Fatalf("VerifyCheckpoints without the archive = %+v, want the archived checkpoint reported unchecked", rep.Problems)
	}
}

func BenchmarkImport(b *testing.B) {
	const n = 20000
	for b.Loop() {
		b.StopTimer()
		s := openTest(b, filepath.Join(b.TempDir(), "a.db"), Options{})
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeSyntheticJSONL(pw, n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))) }()
		b.StartTimer()
		if got, err := s.Import(context.Background(), pr); err != nil || got != n {
			b.Fatalf("Import = %d, %v", got, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "calls/s")
}

func TestApplyRetention(t *testing.T) {
	ctx := context.Background()
	l := newArchiveLog(t)
	// 300 calls a second apart, the last one a day before the clock.
	start := l.clk.Now().Add(-24*time.Hour - 300*time.Second)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeSyntheticJSONL(pw, 300, start)) }()
	if _, err := l.s.Import(ctx, pr); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(l.dir, "archives")
	if _, err := l.s.ApplyRetention(ctx, Retention{MaxAge: 48 * time.Hour, Dir: dir}); !errors.Is(err, ErrNothingToArchive) {
		t.Fatalf("retention of 48h over a day-old log: err = %v, want nothing to archive", err)
	}
	byAge := Retention{MaxAge: 24*time.Hour + 100*time.Second, Dir: dir, PerRun: 150}
	first, err := l.s.ApplyRetention(ctx, byAge)
	if err != nil {
		t.Fatal(err)
	}
	if first.Info.Calls != 150 || !first.More {
		t.Fatalf("max_age run bounded to 150 calls archived %d (more: %v)", first.Info.Calls, first.More)
	}
	res, err := l.s.ApplyRetention(ctx, byAge)
	if err != nil {
		t.Fatal(err)
	}
	if c := first.Info.Calls + res.Info.Calls; c < 195 || c > 205 || res.More {
		t.Errorf("max_age archived %d calls in two runs (more: %v), want the ~200 older than it", c, res.More)
	}
	used, err := l.s.usedBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res2, err := l.s.ApplyRetention(ctx, Retention{MaxSize: used / 2, MinAge: time.Hour, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Info.Calls == 0 || res2.Info.Start != res.Info.Head {
		t.Errorf("max_size archive = %+v, want the oldest calls, after the first archive", res2.Info)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.db.gz"))
	if len(files) != 3 {
		t.Fatalf("archives in %s = %v, want 3", dir, files)
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	l.dir = dir
	if rep := l.verifyAll(files...); !rep.OK() {
		t.Fatalf("VerifyArchives = %+v", rep)
	}
}

// TestRetentionMinAge: a size cut archives no call younger than MinAge
// (a week by default), however far the log is over max_size, and says so
// in the log; and a run leaves nothing but its archive in the directory.
func TestRetentionMinAge(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	loc := filepath.Join(dir, "audit.db")
	if onPostgres() {
		loc = pgtest.DSN(t)
	}
	var logs toolgatetest.SyncBuffer
	s := openTest(t, loc, Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	// 100 calls eight days old, then 200 of the last minutes: the ones an
	// agent filling the log would want pushed out.
	var old, recent bytes.Buffer
	if err := writeSyntheticJSONL(&old, 100, clk.Now().Add(-8*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := writeSyntheticJSONL(&recent, 200, clk.Now().Add(-250*time.Second)); err != nil {
		t.Fatal(err)
	}
	in := old.String() + strings.ReplaceAll(recent.String(), `{"id":"c`, `{"id":"r`)
	if _, err := s.Import(ctx, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	archives := filepath.Join(dir, "archives")
	bySize := Retention{MaxSize: 1, Dir: archives}
	res, err := s.ApplyRetention(ctx, bySize)
	if err != nil {
		t.Fatal(err)
	}
	if res.Info.Calls != 100 {
		t.Errorf("size cut of a log over max_size archived %d calls, want the 100 older than a week", res.Info.Calls)
	}
	for _, id := range []string{"r0", "r199"} {
		if _, err := s.Get(ctx, id); err != nil {
			t.Errorf("recent call %s after the size cut: %v", id, err)
		}
	}
	if !strings.Contains(logs.String(), "younger than min_age") {
		t.Errorf("no warning that recent calls exceed max_size; log:\n%s", logs.String())
	}
	if _, err := s.ApplyRetention(ctx, bySize); !errors.Is(err, ErrNothingToArchive) {
		t.Errorf("size cut of a log of recent calls: err = %v, want nothing to archive", err)
	}
	// MinAge shorter than the default lets the cut take more.
	bySize.MinAge = 100 * time.Second
	if res, err = s.ApplyRetention(ctx, bySize); err != nil || res.Info.Calls < 140 || res.Info.Calls > 160 {
		t.Errorf("size cut with min_age 100s: %+v, %v; want the ~150 calls older than that", res, err)
	}
	entries, err := os.ReadDir(archives)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".db.gz") {
			t.Errorf("archive run left %s in %s", e.Name(), archives)
		}
	}
}

func TestArchiveOfABrokenChainPrunesNothing(t *testing.T) {
	ctx := context.Background()
	l := newArchiveLog(t)
	for _, id := range []string{"a", "b", "c"} {
		l.begin(id, toolgate.Deny)
	}
	db := rawDB(t, l.s.Path())
	unguard := `DROP TRIGGER events_no_update`
	if onPostgres() {
		unguard = `ALTER TABLE events DISABLE TRIGGER events_no_update`
	}
	if _, err := db.Exec(unguard + `; UPDATE events SET body = replace(body, 'because', 'BECAUSE') WHERE call_id = 'b'`); err != nil {
		t.Fatal(err)
	}
	before, err := l.s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.archive(l.now(), "x.db.gz"); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("archive of a broken chain: err = %v, want it refused", err)
	}
	after, err := l.s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Events != before.Events || after.Calls != before.Calls {
		t.Errorf("a failed archive pruned: %d events, %d calls before; %d, %d after", before.Events, before.Calls, after.Events, after.Calls)
	}
	if m, _ := filepath.Glob(filepath.Join(l.dir, "*x.db*")); len(m) > 0 {
		t.Errorf("a failed archive left files: %v", m)
	}
}
