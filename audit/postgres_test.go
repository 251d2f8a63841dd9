package audit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit/pgtest"
)

// envDriver, set to "postgres" in the environment of this package's test
// binary, makes openTest(t, "", ...) open a fresh PostgreSQL schema instead
// of a SQLite file: the store's suite then runs on PostgreSQL.
// TestSuiteOnPostgres sets it for a second run of the binary.
const envDriver = "TOOLGATE_AUDIT_TEST_DRIVER"

func onPostgres() bool { return os.Getenv(envDriver) == "postgres" }

// skipOnPostgres skips a test of SQLite's own mechanics (files, WAL,
// PRAGMAs) in the PostgreSQL run.
func skipOnPostgres(t *testing.T) {
	t.Helper()
	if onPostgres() {
		t.Skip("tests SQLite's file handling")
	}
}

// TestSuiteOnPostgres runs this package's tests again, with every store
// that openTest opens on PostgreSQL.
func TestSuiteOnPostgres(t *testing.T) {
	if onPostgres() {
		t.Skip("already the PostgreSQL run")
	}
	pgtest.Require(t)
	if testing.Short() {
		t.Skip("-short")
	}
	// The PostgreSQL-only tests already ran in this pass.
	cmd := exec.Command(os.Args[0], "-test.count=1", "-test.timeout=10m", "-test.skip", "^(TestReplicasShareOneChain|TestListenDeliversVerdicts|TestCopyToPostgres|TestAdoptOrphanReviews|TestPostgresWriterReconnects|TestArchiveWhileReplicasAppend|TestRetentionOneReplicaAtATime)$")
	cmd.Env = append(os.Environ(), envDriver+"=postgres")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the suite on PostgreSQL failed: %v\n%s", err, out)
	}
}

// TestReplicasShareOneChain: several stores (replicas) on one PostgreSQL
// database append concurrently; the log is one chain that verifies, with
// every call in it.
func TestReplicasShareOneChain(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	const replicas, perReplica = 3, 40
	stores := make([]*Store, replicas)
	for i := range stores {
		stores[i] = openTest(t, dsn, Options{Owner: fmt.Sprintf("replica-%d", i)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, replicas*perReplica)
	for r, s := range stores {
		for g := 0; g < 4; g++ {
			wg.Go(func() {
				for i := g; i < perReplica; i += 4 {
					id := fmt.Sprintf("01R%d%03d", r, i)
					if err := s.Begin(ctx, testCall(id, i), testDecision(toolgate.Allow)); err != nil {
						errs <- err
						return
					}
					if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, s := range stores {
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Each replica writes the context its calls share once.
	rep, err := stores[0].Verify(ctx)
	if want := 2*replicas*perReplica + replicas; err != nil || !rep.OK() || rep.Calls != replicas*perReplica || rep.Events != int64(want) {
		t.Fatalf("Verify = %+v, %v; want %d calls, %d events", rep, err, replicas*perReplica, want)
	}
}

// TestListenDeliversVerdicts: a verdict recorded through one store reaches
// another store's Listen (the replica holding the call).
func TestListenDeliversVerdicts(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	holder := openTest(t, dsn, Options{Owner: "holder"})
	other := openTest(t, dsn, Options{Owner: "other"})
	got := make(chan string, 16)
	done := make(chan error, 1)
	go func() { done <- holder.Listen(ctx, func(id string) { got <- id }) }()
	// Wait until Listen listens: announce a marker until it arrives.
	raw := rawDB(t, dsn)
	waitNote := func(want string, send func()) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			send()
			select {
			case id := <-got:
				if id == want {
					return
				}
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no notification %q within 20 s", want)
			}
		}
	}
	waitNote("ready", func() {
		if _, err := raw.Exec(`SELECT pg_notify(?, 'ready')`, pgVerdictChannel); err != nil {
			t.Fatal(err)
		}
	})
	if err := holder.Begin(ctx, testCall("01LSTN", 1), testDecision(toolgate.Review)); err != nil {
		t.Fatal(err)
	}
	ok, err := other.SubmitVerdict(ctx, "01LSTN", toolgate.Verdict{Approved: true, Reviewer: "bob", Channel: "cli"})
	if err != nil || !ok {
		t.Fatalf("SubmitVerdict = %v, %v", ok, err)
	}
	waitNote("01LSTN", func() {})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Listen = %v", err)
	}
}

// TestAdoptOrphanReviews: on PostgreSQL, a replica takes over the
// unanswered reviews of one whose lease ran out (instead of expiring
// them); a live replica's reviews, and any on SQLite, are left alone.
func TestAdoptOrphanReviews(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a := openTest(t, dsn, Options{Owner: "owner-a", LeaseTTL: 30 * time.Second})
	b := openTest(t, dsn, Options{Owner: "owner-b", LeaseTTL: 30 * time.Second})
	if err := a.Begin(ctx, testCall("01ADOPT", 0), testDecision(toolgate.Review)); err != nil {
		t.Fatal(err)
	}
	if got, err := b.AdoptOrphanReviews(ctx, b.o.Now()); err != nil || len(got) != 0 {
		t.Fatalf("adopted a live replica's reviews: %+v, %v", got, err)
	}
	// a dies: b's heartbeat goes on, a's does not.
	later := b.o.Now().Add(31 * time.Second)
	if _, err := rawDB(t, dsn).ExecContext(ctx, `UPDATE review_owners SET heartbeat_at = ? WHERE owner = 'owner-b'`, later.UnixNano()); err != nil {
		t.Fatal(err)
	}
	got, err := b.AdoptOrphanReviews(ctx, later)
	if err != nil || len(got) != 1 || got[0].Call.ID != "01ADOPT" {
		t.Fatalf("AdoptOrphanReviews = %+v, %v", got, err)
	}
	if exp, err := b.ExpireOrphanReviews(ctx, later); err != nil || len(exp) != 0 {
		t.Fatalf("an adopted review was expired: %+v, %v", exp, err)
	}
	if ps, err := b.PendingReviews(ctx); err != nil || len(ps) != 1 {
		t.Fatalf("pending after the takeover = %+v, %v", ps, err)
	}
	if again, err := b.AdoptOrphanReviews(ctx, later); err != nil || len(again) != 0 {
		t.Fatalf("adopted twice: %+v, %v", again, err)
	}
	sq := openTest(t, filepath.Join(t.TempDir(), "audit.db"), Options{Owner: "sqlite"})
	if got, err := sq.AdoptOrphanReviews(ctx, later); err != nil || got != nil {
		t.Fatalf("SQLite adopted %+v, %v", got, err)
	}
}

// BenchmarkReplicas measures committed decisions per second (each Begin
// returns once its row and chain event are committed) from 64 concurrent
// callers spread over 1 or 3 stores: SQLite (one file), and PostgreSQL,
// where each store is a replica with its own writer and the chain lock
// serializes their batches.
//
//	.ci/postgres.sh run go test -run '^$' -bench Replicas ./audit
func BenchmarkReplicas(b *testing.B) {
	const callers = 64
	d := testDecision(toolgate.Allow)
	for _, tc := range []struct {
		name     string
		replicas int
		pg       bool
	}{{"sqlite/replicas=1", 1, false}, {"postgres/replicas=1", 1, true}, {"postgres/replicas=3", 3, true}} {
		b.Run(tc.name, func(b *testing.B) {
			loc := filepath.Join(b.TempDir(), "a.db")
			if tc.pg {
				loc = pgtest.DSN(b)
			}
			stores := make([]*Store, tc.replicas)
			for i := range stores {
				stores[i] = openTest(b, loc, Options{Now: time.Now})
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for c := range callers {
				s := stores[c%len(stores)]
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := s.Begin(context.Background(), testCall(benchID(int(i)), int(i)), d); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
			var commits, writes int64
			for _, s := range stores {
				commits, writes = commits+s.commits.Load(), writes+s.committed.Load()
			}
			b.ReportMetric(float64(writes)/float64(max(1, commits)), "writes/commit")
		})
	}
}

// TestPostgresWriterReconnects: when the writer's connection dies (the
// server restarted or failed over), the writes in flight fail (the calls
// are denied) and later ones go through a new connection.
func TestPostgresWriterReconnects(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	// No projection behind: the test's next Begin is the first write to
	// meet the dead connection.
	s := openTest(t, dsn, Options{projectDelay: time.Hour, projectBatch: 1 << 40})
	if err := s.Begin(ctx, testCall("01RC1", 1), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := s.conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// With a timeout, pg_terminate_backend returns once the backend is
	// gone (true), not when the signal is sent.
	var gone bool
	if err := rawDB(t, dsn).QueryRow(`SELECT pg_terminate_backend(?, 10000)`, pid).Scan(&gone); err != nil || !gone {
		t.Fatalf("terminate the writer's backend: %v, %v", gone, err)
	}
	if err := s.Begin(ctx, testCall("01RC2", 2), testDecision(toolgate.Allow)); err == nil {
		t.Fatal("Begin on a terminated connection succeeded")
	}
	if err := s.Begin(ctx, testCall("01RC3", 3), testDecision(toolgate.Allow)); err != nil {
		t.Fatalf("Begin after the connection died: %v", err)
	}
	rep, err := s.Verify(ctx)
	if err != nil || !rep.OK() || rep.Calls != 2 {
		t.Fatalf("Verify = %+v, %v; want 2 calls", rep, err)
	}
}

// TestStalledReplicaFreesTheChain: a replica stalled inside a write
// transaction holds the chain lock, and so every replica's writes; the
// server ends that transaction once it has idled the replica's lease, so
// the others append again, the stalled write fails rather than commits
// later, and the stalled replica's next write succeeds.
func TestStalledReplicaFreesTheChain(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	stalled := openTest(t, dsn, Options{Owner: "stalled", LeaseTTL: time.Second})
	other := openTest(t, dsn, Options{Owner: "other", LeaseTTL: time.Second, WriteTimeout: 30 * time.Second})
	r, err := stalled.newEntry(testCall("01ST1", 1), testDecision(toolgate.Review))
	if err != nil {
		t.Fatal(err)
	}
	inTx, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- stalled.write(ctx, func(w *wtx) error {
			close(inTx)
			<-release
			return w.begin(r)
		})
	}()
	<-inTx
	otherDone := make(chan error, 1)
	go func() { otherDone <- other.Begin(ctx, testCall("01ST2", 2), testDecision(toolgate.Review)) }()
	select {
	case err = <-otherDone:
		close(release)
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("a write still waits on the chain lock of a replica stalled in its transaction")
	}
	if err != nil {
		t.Fatalf("a write while another replica stalls in its transaction: %v", err)
	}
	if err := <-done; err == nil {
		t.Fatal("the stalled replica's transaction committed after the server ended it")
	}
	if err := stalled.Begin(ctx, testCall("01ST3", 3), testDecision(toolgate.Review)); err != nil {
		t.Fatalf("the stalled replica's next write: %v", err)
	}
	rep, err := other.Verify(ctx)
	if err != nil || !rep.OK() || rep.Calls != 2 {
		t.Fatalf("Verify = %+v, %v; want 2 calls", rep, err)
	}
}
