package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit/pgtest"
	"github.com/toolgate/toolgate/toolgatetest"
)

// clock is a deterministic Now: each call advances one millisecond.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func openTest(t testing.TB, path string, o Options) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "state", "toolgate", "audit.db")
		if onPostgres() {
			path = pgtest.DSN(t)
		}
	}
	if o.Now == nil {
		o.Now = newClock().Now
	}
	s, err := Open(context.Background(), path, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testCall(id string, n int) toolgate.Call {
	conf := 0.5
	return toolgate.Call{
		ID: id, Server: "fs", Tool: "write_file", Name: "fs__write_file",
		Args:        map[string]any{"path": fmt.Sprintf("/tmp/f%d", n), "token": "s3cret", "n": float64(n)},
		Annotations: toolgate.Annotations{Title: "Write"}, SchemaHash: "abc", ServerVersion: "1.2.3",
		Client: toolgate.Peer{Name: "cursor", Version: "1.0"}, Model: toolgate.Peer{Name: "claude", Version: "4"},
		Confidence: &conf, SessionID: "sess-1",
		Time: time.Date(2026, 3, 1, 11, 0, 0, n, time.UTC),
	}
}

func testDecision(a toolgate.Action) toolgate.Decision {
	return toolgate.Decision{Action: a, Rule: "r-" + string(a), Reason: "because", Version: "v1", Label: "prod",
		Shadow: []toolgate.ShadowResult{{Rule: "shadow-1", Action: toolgate.Deny}}}
}

func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if IsPostgres(path) {
		var cfg *pgx.ConnConfig
		if cfg, err = pgx.ParseConfig(path); err == nil {
			db = sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)})
		}
	} else {
		readerCatchUp(path)
		db, err = sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_busy_timeout=5000")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// readerCatchUp opens the SQLite log at path as any reader does, which
// imports what its writers have spooled (a log that is not there yet, or
// not a log, is left alone).
func readerCatchUp(path string) {
	if ro, err := Open(context.Background(), path, Options{ReadOnly: true}); err == nil {
		ro.Close()
	}
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := DefaultPath(dir)
	s := openTest(t, path, Options{})
	if err := s.Begin(context.Background(), testCall("01A", 1), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("dir mode = %o, want 700", got)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(p), got)
		}
	}
}

func TestBeginIsCommittedBeforeReturn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	s := openTest(t, path, Options{Redact: func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			if k == "token" {
				v = "[REDACTED]"
			}
			out[k] = v
		}
		return out
	}, ToolgateVersion: "9.9"})
	other := rawDB(t, path)
	ctx := context.Background()
	for i, a := range []toolgate.Action{toolgate.Allow, toolgate.Deny, toolgate.Review} {
		id := fmt.Sprintf("01ID%d", i)
		if err := s.Begin(ctx, testCall(id, i), testDecision(a)); err != nil {
			t.Fatal(err)
		}
		// Durable once Begin returns: another process opening the log
		// (here the reader's catch-up, while s runs) finds it.
		readerCatchUp(path)
		var n int
		if err := other.QueryRow(`SELECT count(*) FROM events WHERE call_id = ? AND kind = 'decision'`, id).Scan(&n); err != nil || n != 1 {
			t.Fatalf("second connection sees %d decisions of %s: %v", n, id, err)
		}
		if err := s.catchUp(ctx); err != nil {
			t.Fatal(err)
		}
		var (
			status string
			d      joined
		)
		if err := other.QueryRow(`SELECT calls.status, d.at, d.body FROM calls JOIN events d ON d.seq = calls.seq WHERE calls.id = ?`, id).Scan(&status, &d.at, &d.body); err != nil {
			t.Fatalf("second connection does not see %s: %v", id, err)
		}
		var r Record
		if err := r.load(id, &d, nil, nil, sql.NullString{}, newCtxReader(ctx, other).get); err != nil {
			t.Fatal(err)
		}
		args, ver := string(r.Args), r.ToolgateVersion
		if want := initialStatus(a); status != want {
			t.Errorf("%s: status %q, want %q", a, status, want)
		}
		if ver != "9.9" {
			t.Errorf("toolgate_version = %q", ver)
		}
		if want := fmt.Sprintf(`{"n":%d,"path":"/tmp/f%d","token":"[REDACTED]"}`, i, i); args != want {
			t.Errorf("args = %s, want %s", args, want)
		}
	}
	// A duplicate is refused whether calls reflects the first decision
	// (01ID0, read above) or only the log does (01NEW, just begun).
	if err := s.Begin(ctx, testCall("01NEW", 0), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"01ID0", "01NEW"} {
		if err := s.Begin(ctx, testCall(id, 0), testDecision(toolgate.Allow)); !errors.Is(err, ErrState) {
			t.Errorf("Begin with the duplicate id %s: %v, want ErrState", id, err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := other.QueryRow(`SELECT count(*) FROM events WHERE kind = 'decision' AND call_id IN ('01ID0', '01NEW')`).Scan(&n); err != nil || n != 2 {
		t.Errorf("decision events of the two ids: %d (%v), want 2", n, err)
	}
}

// TestDuplicateInCallsKeepsChain: a hot decision whose call calls holds
// already (no spool: sync FULL) appends no event, so the next one chains
// onto the real head.
func TestDuplicateInCallsKeepsChain(t *testing.T) {
	s := openTest(t, "", Options{Synchronous: SyncFull})
	ctx := context.Background()
	if err := s.Begin(ctx, testCall("01DUP", 0), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil { // calls holds 01DUP
		t.Fatal(err)
	}
	if err := s.Begin(ctx, testCall("01DUP", 1), testDecision(toolgate.Allow)); !errors.Is(err, ErrState) {
		t.Fatalf("Begin of 01DUP again: %v, want ErrState", err)
	}
	if err := s.Begin(ctx, testCall("01NEXT", 2), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify: %v %v", err, rep.First())
	}
}

// approvedAndFinished records call c decided d (a review), approved by
// alice on the CLI, and finished with o, in a new store, and returns the
// store and c's record.
func approvedAndFinished(t *testing.T, c toolgate.Call, d toolgate.Decision, o toolgate.Outcome) (*Store, *Record) {
	t.Helper()
	s := openTest(t, "", Options{ToolgateVersion: "1"})
	ctx := context.Background()
	if err := s.Begin(ctx, c, d); err != nil {
		t.Fatal(err)
	}
	if err := s.Resolve(ctx, c.ID, toolgate.Verdict{Approved: true, Reviewer: "alice", Channel: "cli", Reason: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, c.ID, o); err != nil {
		t.Fatal(err)
	}
	// Finish writes behind; Flush waits for it.
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

func TestRecordRoundTrip(t *testing.T) {
	c := testCall("01RT", 7)
	d := testDecision(toolgate.Review)
	o := toolgate.Outcome{Status: toolgate.StatusOK, Duration: 42 * time.Millisecond, ResultSize: 10, ResultHash: "ff"}
	_, r := approvedAndFinished(t, c, d, o)
	if r.Status != toolgate.StatusOK || r.Review == nil || !r.Review.Approved || r.Review.Reviewer != "alice" || r.Outcome == nil ||
		r.Outcome.Duration != o.Duration || r.Outcome.ResultHash != "ff" || r.Outcome.FinishedAt.IsZero() {
		t.Fatalf("record = %+v review=%+v outcome=%+v", r, r.Review, r.Outcome)
	}
	if r.Review.TimeToDecision <= 0 {
		t.Errorf("time to decision = %v", r.Review.TimeToDecision)
	}
	got, err := r.Call()
	if err != nil {
		t.Fatal(err)
	}
	if got.Args["path"] != "/tmp/f7" || *got.Confidence != 0.5 || !got.Time.Equal(c.Time) || got.Client != c.Client ||
		got.Annotations.Title != "Write" || got.SessionID != "sess-1" || got.ServerVersion != "1.2.3" {
		t.Errorf("Call() = %+v", got)
	}
	if dd := r.Decision(); dd.Rule != d.Rule || dd.Label != "prod" || len(dd.Shadow) != 1 {
		t.Errorf("Decision() = %+v", dd)
	}
}

// TestApprovedNotRun: an approved call the gate then does not forward (the
// workspace changed while it waited) is finished as refused, with why;
// the log keeps the approval and verifies.
func TestApprovedNotRun(t *testing.T) {
	s, r := approvedAndFinished(t, testCall("01NR", 7), testDecision(toolgate.Review),
		toolgate.Outcome{Status: toolgate.StatusRefused, Error: "the links changed"})
	if r.Status != toolgate.StatusRefused || r.Review == nil || !r.Review.Approved || r.Outcome == nil || r.Outcome.Error != "the links changed" {
		t.Fatalf("record = %+v review=%+v outcome=%+v", r, r.Review, r.Outcome)
	}
	rep, err := s.Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// TestFinishBehindFailures: Finish does not wait for its commit, so a
// second Finish, or one for an unknown call, fails behind: the failure is
// logged and counted, nothing is written, and the writes around it commit.
func TestFinishBehindFailures(t *testing.T) {
	var logs toolgatetest.SyncBuffer
	var behind, behindErrs atomic.Int64
	s := openTest(t, "", Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), OnBehind: func(wait time.Duration, err error) {
		behind.Add(1)
		if err != nil {
			behindErrs.Add(1)
		}
	}})
	ctx := context.Background()
	c := testCall("01FB", 1)
	if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	o := toolgate.Outcome{Status: toolgate.StatusOK, ResultSize: 1}
	for _, id := range []string{c.ID, c.ID, "nope"} {
		if err := s.Finish(ctx, id, o); err != nil {
			t.Fatalf("Finish(%s) = %v; it must only queue", id, err)
		}
	}
	// A decision queued behind the failing outcomes still commits.
	if err := s.Begin(ctx, testCall("01FC", 2), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.behindFailed.Load(); got != 2 {
		t.Errorf("failed writes behind = %d, want 2", got)
	}
	if behind.Load() != 3 || behindErrs.Load() != 2 {
		t.Errorf("OnBehind saw %d writes, %d failed; want 3, 2", behind.Load(), behindErrs.Load())
	}
	// (A spooled outcome fails as its import skips it, one written behind
	// as its write does: the log names the call either way.)
	for _, want := range []string{"01FB", ErrState.Error(), "nope", ErrNotFound.Error()} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	var outcomes int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM events WHERE kind = ?`, kindOutcome).Scan(&outcomes); err != nil {
		t.Fatal(err)
	}
	if outcomes != 1 {
		t.Errorf("outcome events = %d, want 1", outcomes)
	}
	if r, err := s.Get(ctx, "01FC"); err != nil || r.Status != toolgate.StatusStarted {
		t.Errorf("Get(01FC) = %+v, %v", r, err)
	}
	rep, err := s.Verify(ctx)
	if err != nil || len(rep.Problems) > 0 {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
}

func TestNullConfidence(t *testing.T) {
	s := openTest(t, "", Options{})
	c := testCall("01NC", 1)
	c.Confidence = nil
	ctx := context.Background()
	if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Confidence != nil {
		t.Errorf("confidence = %v, want none", *r.Confidence)
	}
}

func TestReviewsAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	server := openTest(t, path, Options{})
	cli := openTest(t, path, Options{}) // stands in for `toolgate review approve`
	ctx := context.Background()
	for i, id := range []string{"01R1", "01R2", "01R3"} {
		if err := server.Begin(ctx, testCall(id, i+1), testDecision(toolgate.Review)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := cli.PendingReviews(ctx)
	if err != nil || len(p) != 3 || p[0].Call.ID != "01R1" || p[0].Decision.Rule != "r-review" {
		t.Fatalf("PendingReviews = %+v, %v", p, err)
	}
	if _, decided, err := server.ReviewVerdict(ctx, "01R1"); err != nil || decided {
		t.Fatalf("ReviewVerdict before answer: decided=%v err=%v", decided, err)
	}
	ok, err := cli.SubmitVerdict(ctx, "01R1", toolgate.Verdict{Approved: true, Reviewer: "bob", Channel: "cli"})
	if err != nil || !ok {
		t.Fatalf("SubmitVerdict = %v, %v", ok, err)
	}
	ok, err = server.SubmitVerdict(ctx, "01R1", toolgate.Verdict{Approved: false, Reviewer: "eve", Channel: "slack"})
	if err != nil || ok {
		t.Fatalf("second SubmitVerdict = %v, %v; want false (first answer wins)", ok, err)
	}
	v, decided, err := server.ReviewVerdict(ctx, "01R1")
	if err != nil || !decided || !v.Approved || v.Reviewer != "bob" {
		t.Fatalf("ReviewVerdict = %+v %v %v", v, decided, err)
	}
	// The gate resolves with what it polled: the call starts, once. A
	// second approval would run it again: it is refused.
	if err := server.Resolve(ctx, "01R1", v); err != nil {
		t.Fatal(err)
	}
	if err := server.Resolve(ctx, "01R1", v); !errors.Is(err, ErrState) {
		t.Fatalf("second Resolve: %v, want ErrState", err)
	}
	if r, _ := server.Get(ctx, "01R1"); r.Status != toolgate.StatusStarted || r.Review.Reviewer != "bob" {
		t.Fatalf("after resolve: %+v", r)
	}
	// A denial stored by another process beats an approval passed to Resolve.
	if ok, err := cli.SubmitVerdict(ctx, "01R2", toolgate.Verdict{Reviewer: "carol", Channel: "cli"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := server.Resolve(ctx, "01R2", toolgate.Verdict{Approved: true, Channel: "slack"}); !errors.Is(err, ErrVerdictConflict) {
		t.Fatalf("conflicting Resolve: %v, want ErrVerdictConflict", err)
	}
	if r, _ := server.Get(ctx, "01R2"); r.Status != toolgate.StatusRefused || r.Review.Approved {
		t.Fatalf("after conflict: %+v %+v", r, r.Review)
	}
	if err := server.SetReviewMessage(ctx, "01R3", "C1", "123.4"); err != nil {
		t.Fatal(err)
	}
	p, err = cli.PendingReviews(ctx)
	if err != nil || len(p) != 1 || p[0].SlackTS != "123.4" {
		t.Fatalf("PendingReviews = %+v, %v", p, err)
	}
	exp, err := server.ExpireOrphanReviews(ctx, time.Now())
	if err != nil || len(exp) != 1 || exp[0].Call.ID != "01R3" {
		t.Fatalf("ExpireOrphanReviews = %+v, %v", exp, err)
	}
	v, decided, err = cli.ReviewVerdict(ctx, "01R3")
	if err != nil || !decided || v.Approved || v.Channel != toolgate.ChannelExpired {
		t.Fatalf("expired verdict = %+v %v %v", v, decided, err)
	}
	if rep, err := server.Verify(ctx); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestWriteFailsPromptlyWhenLocked: a write that needs the log's lock
// (a review's decision) fails within WriteTimeout while another process
// holds it; a spooled decision does not wait for it at all, and reaches
// the log once the lock is free.
func TestWriteFailsPromptlyWhenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	s := openTest(t, path, Options{BusyTimeout: 100 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	if err := s.Begin(ctx, testCall("01L0", 0), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	// Another connection holds the write lock.
	db := rawDB(t, path)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Begin(ctx, testCall("01L1", 1), testDecision(toolgate.Review))
	if err == nil {
		t.Fatal("Begin of a review succeeded while the DB was locked")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Begin took %v to fail", d)
	}
	if !onPostgres() {
		if err := s.Begin(ctx, testCall("01L3", 3), testDecision(toolgate.Allow)); err != nil {
			t.Fatalf("spooled Begin while the DB was locked: %v", err)
		}
		if err := s.Flush(ctx); err == nil {
			t.Fatal("Flush succeeded while the DB was locked")
		}
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	// Nothing was recorded for the failed call, and the store recovers.
	if _, err := s.Get(ctx, "01L1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("failed Begin left a row: %v", err)
	}
	if err := s.Begin(ctx, testCall("01L2", 2), testDecision(toolgate.Allow)); err != nil {
		t.Fatalf("Begin after unlock: %v", err)
	}
	if _, err := s.Get(ctx, "01L3"); !onPostgres() && err != nil {
		t.Errorf("the decision spooled while locked: %v", err)
	}
}

func TestOpenUnwritable(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root ignores file modes")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if _, err := Open(context.Background(), filepath.Join(dir, "x", "audit.db"), Options{}); err == nil {
		t.Fatal("Open in a read-only directory succeeded")
	}
}

func TestBeginFailsOnReadOnlyFile(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root ignores file modes")
	}
	path := filepath.Join(t.TempDir(), "a.db")
	s := openTest(t, path, Options{WriteTimeout: time.Second})
	ctx := context.Background()
	if err := s.Begin(ctx, testCall("01W0", 0), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, path, Options{WriteTimeout: time.Second})
	if err != nil {
		return // refusing to open is also a clear failure
	}
	defer s2.Close()
	if err := s2.Begin(ctx, testCall("01W1", 1), testDecision(toolgate.Allow)); err == nil {
		t.Fatal("Begin on a read-only DB succeeded")
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	s := openTest(t, path, Options{})
	s.Close()
	db := rawDB(t, path)
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open newer schema: %v, want ErrNewerSchema", err)
	}
	if len(migrations) != SchemaVersion {
		t.Fatalf("SchemaVersion %d != %d migrations", SchemaVersion, len(migrations))
	}
}

func TestCloseDrainsAndRejects(t *testing.T) {
	s := openTest(t, "", Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Begin(ctx, testCall(fmt.Sprintf("01C%03d", i), i), testDecision(toolgate.Allow))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx, testCall("01CX", 1), testDecision(toolgate.Allow)); !errors.Is(err, ErrClosed) {
		t.Errorf("Begin after Close: %v", err)
	}
	var n int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM calls`).Scan(&n); err != nil || n != 50 {
		t.Errorf("rows = %d, %v", n, err)
	}
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Open(ctx, filepath.Join(dir, "missing.db"), Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only Open of a missing DB succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only Open created the file: %v", err)
	}
	path := filepath.Join(dir, "a.db")
	w := openTest(t, path, Options{})
	if err := w.Begin(ctx, testCall("01RO1", 1), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, path, Options{ReadOnly: true})
	if recs, err := r.List(ctx, Filter{}); err != nil || len(recs) != 1 {
		t.Fatalf("List = %d, %v", len(recs), err)
	}
	if err := r.Begin(ctx, testCall("01RO2", 2), testDecision(toolgate.Allow)); err == nil {
		t.Fatal("Begin on a read-only store succeeded")
	}
	// A writer's later commits are visible to the open read-only store.
	if err := w.Begin(ctx, testCall("01RO3", 3), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "01RO3"); err != nil {
		t.Fatalf("read-only store does not see a new row: %v", err)
	}
}

// TestOutcomeRidesWithNextDecision: called one after another, each call's
// outcome commits with the next call's decision (one commit per call), and
// the last one commits on its own shortly after, with no further write.
func TestOutcomeRidesWithNextDecision(t *testing.T) {
	s := openTest(t, "", Options{projectDelay: time.Hour})
	ctx := context.Background()
	d := testDecision(toolgate.Allow)
	const n = 50
	c0 := s.commits.Load()
	for i := range n {
		id := fmt.Sprintf("01RIDE%04d", i)
		if err := s.Begin(ctx, testCall(id, i), d); err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
			t.Fatal(err)
		}
	}
	// PostgreSQL: one per call, but a scheduling pause longer than
	// behindDelay between a Finish and the next Begin lets an outcome
	// commit alone: allow some. SQLite: the calls are spooled, and their
	// imports are a few commits for all of them.
	c1 := s.commits.Load()
	if got, want := c1-c0, int64(n/5); !onPostgres() && got > want {
		t.Errorf("%d sequential spooled calls took %d commits, want at most %d", n, got, want)
	} else if got := c1 - c0; got > n+n/5 {
		t.Errorf("%d sequential calls took %d commits, want about %d", n, got, n)
	}
	last := fmt.Sprintf("01RIDE%04d", n-1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var outcomes int
		if err := s.rdb.QueryRow(`SELECT count(*) FROM events WHERE call_id = ? AND kind = 'outcome'`, last).Scan(&outcomes); err != nil {
			t.Fatal(err)
		}
		if outcomes == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the last outcome was not committed without a further write")
		}
		time.Sleep(time.Millisecond)
	}
	if got := s.commits.Load() - c1; onPostgres() && got != 1 {
		t.Errorf("the last outcome took %d commits, want 1", got)
	}
}

// TestDecisionEventCarriesArgs: the decision event carries the arguments
// (it alone makes the decision durable); logs whose decision events chain
// only the arguments' hash (written before) verify too, and a changed row
// is caught in both.
func TestDecisionEventCarriesArgs(t *testing.T) {
	s := openTest(t, "", Options{})
	ctx := context.Background()
	c := testCall("01NEW", 1)
	c.Args = map[string]any{"path": "/very/distinctive/path"}
	if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var body string
	if err := s.rdb.QueryRow(`SELECT body FROM events WHERE call_id = ?`, c.ID).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "/very/distinctive/path") {
		t.Errorf("decision event body = %s; want the args", body)
	}

	// The old layout, written as toolgate did before.
	r, err := s.newEntry(testCall("01OLD", 2), testDecision(toolgate.Allow))
	if err != nil {
		t.Fatal(err)
	}
	chained := r.e
	chained.Args = nil
	err = s.write(ctx, func(w *wtx) error {
		if err := w.appendFormat1(&event{Kind: kindDecision, ID: r.e.ID, At: r.at, Status: r.status, Decision: &chained}); err != nil {
			return err
		}
		_, err := w.insertEntry(w.head, &r.e, r.status)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(ctx); err != nil || rep.OK() {
		t.Fatalf("Verify of an old-layout decision whose row lacks the args = %+v, %v; want a problem", rep, err)
	}
	// Migration 15 keeps the arguments of such a call in its row.
	if _, err := s.conn.ExecContext(ctx, `UPDATE calls SET args = ? WHERE id = '01OLD'`, string(r.e.Args)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "01OLD"); err != nil || string(got.Args) != string(r.e.Args) {
		t.Fatalf("Get of an old-layout call = %+v, %v; want its row's args", got, err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify of both layouts = %+v, %v", rep, err)
	}
	for _, id := range []string{"01NEW", "01OLD"} {
		if _, err := s.conn.ExecContext(ctx, `UPDATE calls SET args = '{"path":"/etc/shadow"}' WHERE id = ?`, id); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	flagged := map[string]bool{}
	for _, p := range rep.Problems {
		if strings.Contains(p.What, "args") {
			flagged[p.CallID] = true
		}
	}
	if !flagged["01NEW"] || !flagged["01OLD"] {
		t.Errorf("changed args flagged for %v, want both; problems: %v", flagged, rep.Problems)
	}
}

// TestOutcomeCommitsAfterTimedProjection: a projection queued by its timer
// leaves the flush timer free for the writes behind that follow (else an
// outcome waits for the next projection instead of behindDelay).
func TestOutcomeCommitsAfterTimedProjection(t *testing.T) {
	s := openTest(t, "", Options{projectDelay: 20 * time.Millisecond})
	armed := func() bool {
		s.qmu.Lock()
		defer s.qmu.Unlock()
		return s.flushArmed
	}
	ctx := context.Background()
	outcomes := func() (n int) {
		if err := s.rdb.QueryRow(`SELECT count(*) FROM events WHERE kind = 'outcome'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 5 {
		time.Sleep(10 * time.Millisecond) // the projection timer fires on an idle queue
		id := fmt.Sprintf("01TP%d", i)
		if err := s.Begin(ctx, testCall(id, i), testDecision(toolgate.Allow)); err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for outcomes() != i+1 || s.unprojected.Load() != 0 || armed() {
			if time.Now().After(deadline) {
				t.Fatalf("call %d: %d outcomes committed, %d events unprojected, flush armed %v", i, outcomes(), s.unprojected.Load(), armed())
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestReadOnlyRefusesOlderSchema: a read-only store does not read a log it
// would have to migrate first (no table it expects may be there).
func TestReadOnlyRefusesOlderSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	if err := openTest(t, path, Options{}).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, path).Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion-1)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path, Options{ReadOnly: true})
	if err == nil {
		s.Close()
		t.Fatal("read-only Open of an older schema succeeded")
	}
	if !strings.Contains(err.Error(), "migrate") {
		t.Errorf("error = %v, want it to say to migrate", err)
	}
}
