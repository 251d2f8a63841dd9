package audit

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit/pgtest"
)

// recoverLog is a log shared by a process that runs calls (a, of another
// machine by its lease, which "crashes": it stops renewing its lease) and
// one started after them that recovers them (b, a restart), on one clock
// the test moves.
type recoverLog struct {
	t     *testing.T
	path  string
	clk   *clock
	a, b  *Store
	calls int
}

func newRecoverLog(t *testing.T) *recoverLog {
	l := &recoverLog{t: t, path: filepath.Join(t.TempDir(), "audit.db"), clk: newClock()}
	if onPostgres() {
		l.path = pgtest.DSN(t)
	}
	// a's lease is renewed by hand (its own renewal ticks in real time,
	// once an hour): the clock decides whether it is live.
	l.a = openTest(t, l.path, Options{Owner: "proc-a", LeaseTTL: 3 * time.Hour, Now: l.clk.Now})
	l.setLease(os.Getpid(), "elsewhere")
	return l
}

// setLease says a's lease was taken by process pid of host.
func (l *recoverLog) setLease(pid int, host string) {
	l.t.Helper()
	if _, err := rawDB(l.t, l.path).ExecContext(context.Background(), `UPDATE review_owners SET pid = ?, host = ? WHERE owner = 'proc-a'`, pid, host); err != nil {
		l.t.Fatal(err)
	}
}

// advance moves the clock by d.
func (l *recoverLog) advance(d time.Duration) {
	l.clk.mu.Lock()
	l.clk.t = l.clk.t.Add(d)
	l.clk.mu.Unlock()
}

// start begins an allowed call through a: it is started, and runs.
func (l *recoverLog) start(id string) {
	l.t.Helper()
	l.calls++
	if err := l.a.Begin(context.Background(), testCall(id, l.calls), testDecision(toolgate.Allow)); err != nil {
		l.t.Fatal(err)
	}
}

// lateFinish finishes call id through a after b closed it as
// interrupted: the outcome is not recorded, and the call keeps its one
// outcome, interrupted.
func (l *recoverLog) lateFinish(id string) {
	l.t.Helper()
	ctx := context.Background()
	if err := l.a.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
		l.t.Fatal(err)
	}
	if err := l.a.Flush(ctx); err != nil {
		l.t.Fatal(err)
	}
	if r := l.status(id); r.Status != toolgate.StatusInterrupted || r.Outcome == nil || r.Outcome.Status != toolgate.StatusInterrupted {
		l.t.Fatalf("after a late Finish: %s %+v", r.Status, r.Outcome)
	}
	var outcomes int
	if err := rawDB(l.t, l.path).QueryRowContext(ctx, `SELECT count(*) FROM events WHERE call_id = ? AND kind = 'outcome'`, id).Scan(&outcomes); err != nil || outcomes != 1 {
		l.t.Fatalf("outcome events of the closed call = %d, %v; want 1", outcomes, err)
	}
}

// recover runs b's recovery with horizon and checks it closed want.
func (l *recoverLog) recover(horizon time.Duration, want ...string) {
	l.t.Helper()
	if l.b == nil {
		l.b = openTest(l.t, l.path, Options{Owner: "proc-b", LeaseTTL: 30 * time.Second, Now: l.clk.Now})
	}
	got, err := l.b.CloseInterrupted(context.Background(), horizon)
	if err != nil {
		l.t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		l.t.Fatalf("CloseInterrupted closed %v, want %v", got, want)
	}
}

func (l *recoverLog) status(id string) *Record {
	l.t.Helper()
	r, err := l.b.Get(context.Background(), id)
	if err != nil {
		l.t.Fatal(err)
	}
	return r
}

// TestLateFinishOfAnUnprojectedCall: another process closes a call as
// interrupted while the call's decision is still unprojected in the process
// that runs it; that process's late Finish is refused all the same.
func TestLateFinishOfAnUnprojectedCall(t *testing.T) {
	ctx := context.Background()
	l := newRecoverLog(t)
	l.start("01U1") // a writes nothing after it: a holds it unprojected, started
	l.recover(0)    // a's lease is live
	l.advance(31 * time.Second)
	if err := l.b.RenewLease(ctx); err != nil {
		t.Fatal(err)
	}
	l.recover(0, "01U1")
	l.lateFinish("01U1")
	if rep, err := l.b.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// TestCrashedCallsClosedOnceTheirProcessIsGone: a call left started by a
// process that stopped renewing its lease is closed as interrupted once
// the lease has run out, not before; a late Finish of it is refused (one
// outcome per call), the log verifies, and the archive cut passes it.
func TestCrashedCallsClosedOnceTheirProcessIsGone(t *testing.T) {
	ctx := context.Background()
	l := newRecoverLog(t)
	l.start("01C1")
	l.start("01C2")
	if err := l.a.Finish(ctx, "01C2", toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
		t.Fatal(err)
	}
	if err := l.a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// a's lease is live: its call may be running.
	l.recover(0)
	if r := l.status("01C1"); r.Status != toolgate.StatusStarted {
		t.Fatalf("a live process's call is %s", r.Status)
	}
	// a dies: its lease runs out (b's TTL), and its call is closed.
	l.advance(31 * time.Second)
	if err := l.b.RenewLease(ctx); err != nil {
		t.Fatal(err)
	}
	l.recover(0, "01C1")
	r := l.status("01C1")
	if r.Status != toolgate.StatusInterrupted || r.Outcome == nil || r.Outcome.Status != toolgate.StatusInterrupted ||
		!strings.Contains(r.Outcome.Error, "stopped") {
		t.Fatalf("closed call = %s %+v", r.Status, r.Outcome)
	}
	if r := l.status("01C2"); r.Status != toolgate.StatusOK {
		t.Fatalf("a finished call became %s", r.Status)
	}
	l.recover(0) // nothing left to close
	// a was only suspended: its outcome comes late, and is not recorded.
	l.lateFinish("01C1")
	rep, err := l.b.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	st, err := l.b.Stats(ctx, Filter{})
	if err != nil || st.Status[toolgate.StatusInterrupted] != 1 {
		t.Fatalf("stats by status = %v, %v", st.Status, err)
	}
	// Nothing started is left: the cut takes every call.
	dir := t.TempDir()
	res, err := l.b.Archive(ctx, ArchiveOptions{Before: l.clk.Now(), To: filepath.Join(dir, "a.db.gz")})
	if err != nil || res.HeldBack != nil || res.Info.Calls != 2 {
		t.Fatalf("Archive = %+v, %v; want both calls", res, err)
	}
	a, err := OpenArchive(ctx, filepath.Join(dir, "a.db.gz"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if rep, err := VerifyArchives(ctx, l.b, []*Archived{a}); err != nil || !rep.OK() {
		t.Fatalf("VerifyArchives = %+v, %v", rep, err)
	}
}

// TestLiveProcessCallsClosedAfterHorizon: a live process's call is closed
// only once it is older than the horizon (its outcome write failed, say),
// and a call decided before the process's lease began is not its own.
func TestLiveProcessCallsClosedAfterHorizon(t *testing.T) {
	ctx := context.Background()
	l := newRecoverLog(t)
	l.start("01H1")
	l.advance(4 * time.Minute)
	l.start("01H2")
	if err := l.a.RenewLease(ctx); err != nil {
		t.Fatal(err)
	}
	l.recover(5 * time.Minute)
	l.advance(2 * time.Minute)
	if err := l.a.RenewLease(ctx); err != nil {
		t.Fatal(err)
	}
	l.recover(5*time.Minute, "01H1")
	if r := l.status("01H1"); !strings.Contains(r.Outcome.Error, "within 5m0s of the decision") {
		t.Fatalf("outcome = %+v", r.Outcome)
	}
	if r := l.status("01H2"); r.Status != toolgate.StatusStarted {
		t.Fatalf("a call within the horizon is %s", r.Status)
	}
}

// TestRestartClosesItsPredecessorsCalls: a lease taken on this machine is
// live while its process exists, whatever its heartbeat says (a stopped
// process, or one with a longer lease TTL), and dead once it does not; one
// of another machine lives by its heartbeat.
func TestRestartClosesItsPredecessorsCalls(t *testing.T) {
	l := newRecoverLog(t)
	l.start("01P1")
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	l.setLease(gone.Process.Pid, "elsewhere "+hostIdentity())
	l.recover(0)
	l.advance(time.Hour)
	l.setLease(os.Getpid(), hostIdentity())
	l.recover(0)
	l.setLease(gone.Process.Pid, hostIdentity())
	l.recover(0, "01P1")
}

// TestRetentionPassesACrashedCall: a call a crash left started holds an
// archive cut back, but not the retention, which closes it first.
func TestRetentionPassesACrashedCall(t *testing.T) {
	ctx := context.Background()
	l := newRecoverLog(t)
	l.start("01R1")
	l.start("01R2")
	if err := l.a.Finish(ctx, "01R2", toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
		t.Fatal(err)
	}
	if err := l.a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	l.advance(time.Hour)
	l.b = openTest(t, l.path, Options{Owner: "proc-b", Now: l.clk.Now})
	dir := t.TempDir()
	if _, err := l.b.Archive(ctx, ArchiveOptions{Before: l.clk.Now(), To: filepath.Join(dir, "held.db.gz")}); !errors.Is(err, ErrNothingToArchive) {
		t.Fatalf("Archive of a log whose first call is left started: %v, want nothing to archive", err)
	}
	res, err := l.b.ApplyRetention(ctx, Retention{MaxAge: time.Minute, Dir: dir, Horizon: 10 * time.Minute})
	if err != nil || res.HeldBack != nil || res.Info.Calls != 2 {
		t.Fatalf("ApplyRetention = %+v, %v; want both calls", res, err)
	}
}

// BenchmarkCloseInterruptedScan measures a recovery run that finds
// nothing to close over a log of 100,000 finished calls: serve's
// once-a-minute cost (the started rows, read through calls_started).
func BenchmarkCloseInterruptedScan(b *testing.B) {
	const n = 100000
	s := openTest(b, filepath.Join(b.TempDir(), "a.db"), Options{})
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeSyntheticJSONL(pw, n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))) }()
	if got, err := s.Import(context.Background(), pr); err != nil || got != n {
		b.Fatalf("Import = %d, %v", got, err)
	}
	t0 := cpuTime()
	for b.Loop() {
		if ids, err := s.CloseInterrupted(context.Background(), time.Hour); err != nil || len(ids) != 0 {
			b.Fatalf("CloseInterrupted = %v, %v", ids, err)
		}
	}
	b.ReportMetric(float64(cpuTime()-t0)/float64(b.N)/1e3, "cpu-µs/op")
}
