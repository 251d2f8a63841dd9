package audit

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

func TestVerifyCatchesTampering(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*Store, string) {
		path := filepath.Join(t.TempDir(), "a.db")
		s := openTest(t, path, Options{})
		for i := range 5 {
			id := fmt.Sprintf("01V%d", i)
			a := []toolgate.Action{toolgate.Allow, toolgate.Deny, toolgate.Review}[i%3]
			if err := s.Begin(ctx, testCall(id, i), testDecision(a)); err != nil {
				t.Fatal(err)
			}
			switch a {
			case toolgate.Allow:
				if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK, ResultSize: 3}); err != nil {
					t.Fatal(err)
				}
			case toolgate.Review:
				if err := s.Resolve(ctx, id, toolgate.Verdict{Approved: false, Reviewer: "amy", Channel: "slack"}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.SetReviewMessage(ctx, "01V2", "C9", "1.2"); err != nil {
			t.Fatal(err)
		}
		rep, err := s.Verify(ctx)
		if err != nil || !rep.OK() || rep.Events != 9 || rep.Calls != 5 || rep.Head == "" {
			t.Fatalf("clean Verify = %+v, %v", rep, err)
		}
		return s, path
	}
	cases := []struct {
		name     string
		sql      string
		wantID   string
		wantSeq  bool
		wantText string
	}{
		{"row rule changed", `UPDATE calls SET rule_ref = (SELECT id FROM names WHERE name = 'sess-1') WHERE id = '01V1'`, "01V1", false, "rule_ref: chained"},
		{"row action changed", `UPDATE calls SET action = 'allow' WHERE id = '01V1'`, "01V1", false, "action"},
		{"row verdict changed", `UPDATE calls SET review_approved = 1 WHERE id = '01V2'`, "01V2", false, "review_approved"},
		{"row outcome dropped", `UPDATE calls SET outcome_seq = NULL WHERE id = '01V3'`, "01V3", false, "outcome_seq"},
		{"row args changed", `UPDATE calls SET args = '{"path":"/etc/passwd"}' WHERE id = '01V0'`, "01V0", false, "args"},
		{"row points at another call's verdict", `UPDATE calls SET verdict_seq = (SELECT verdict_seq FROM calls WHERE id = '01V2') WHERE id = '01V1'`, "01V1", false, "verdict_seq"},
		{"row deleted", `DELETE FROM calls WHERE id = '01V4'`, "01V4", true, "no calls row"},
		{"row inserted", `INSERT INTO calls (seq, id, received_at, action, status, server_ref, tool_ref, kind_ref, session_ref, user_ref, client_ref,
			model_ref, model_version_ref, rules_version_ref, rules_label_ref, rule_ref) VALUES (999, '01V00', 1, 'allow', 'ok', 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)`, "01V00", false, "no events"},
		{"event body altered", `DROP TRIGGER events_no_update; UPDATE events SET body = replace(body, '"rule":"r-deny"', '"rule":"x"') WHERE call_id = '01V1'`, "01V1", true, "hash mismatch"},
		{"event deleted", `DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq = 4`, "01V2", true, "missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, path := setup(t)
			if _, err := rawDB(t, path).Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
			rep, err := s.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			p := rep.First()
			if p == nil {
				t.Fatal("Verify found nothing")
			}
			if p.CallID != tc.wantID || (p.Seq > 0) != tc.wantSeq || !strings.Contains(p.What, tc.wantText) {
				t.Fatalf("first problem = %s; want call %s containing %q", p, tc.wantID, tc.wantText)
			}
		})
	}
	t.Run("events are append-only", func(t *testing.T) {
		_, path := setup(t)
		if _, err := rawDB(t, path).Exec(`UPDATE events SET body = '{}' WHERE seq = 1`); err == nil {
			t.Fatal("UPDATE of events succeeded")
		}
	})
}

func TestDiskFullDeniesPromptly(t *testing.T) {
	skipOnPostgres(t)
	s := openTest(t, "", Options{WriteTimeout: 2 * time.Second})
	ctx := context.Background()
	if err := s.Begin(ctx, testCall("01F0", 0), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	// Cap the DB at its current size: the next page allocation fails with
	// SQLITE_FULL, as on a full disk.
	var pages int
	if err := s.conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	// The decision is spooled (durable); its import into the full log
	// fails, and from then on every call is denied until one succeeds.
	c := testCall("01F1", 1)
	c.Args["blob"] = strings.Repeat("x", 64<<10)
	if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("Flush into a full log: %v, want it to say the database is full", err)
	}
	start := time.Now()
	err := s.Begin(ctx, testCall("01F2", 2), testDecision(toolgate.Allow))
	if err == nil {
		t.Fatal("Begin succeeded on a full database")
	}
	if !strings.Contains(err.Error(), "full") {
		t.Errorf("error = %v, want it to say the database is full", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Begin took %v to fail", d)
	}
	// Room again: the spooled decision reaches the log, the refused one
	// does not.
	if _, err := s.conn.ExecContext(ctx, "PRAGMA max_page_count = 1000000"); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "01F1"); err != nil {
		t.Errorf("the spooled decision: %v", err)
	}
	if _, err := s.Get(ctx, "01F2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("failed Begin left a row: %v", err)
	}
	if err := s.Begin(ctx, testCall("01F3", 3), testDecision(toolgate.Allow)); err != nil {
		t.Errorf("Begin once the log has room: %v", err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestGroupCommitIsolatesFailures: one failing write in a shared batch
// does not fail or undo the others.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := openTest(t, "", Options{})
	ctx := context.Background()
	if err := s.Begin(ctx, testCall("01DUP", 0), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var failed, okN atomic.Int32
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("01G%03d", i)
			if i%8 == 0 {
				id = "01DUP"
			}
			if err := s.Begin(ctx, testCall(id, i), testDecision(toolgate.Allow)); err != nil {
				failed.Add(1)
			} else {
				okN.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 8 || okN.Load() != 56 {
		t.Fatalf("failed=%d ok=%d, want 8 and 56", failed.Load(), okN.Load())
	}
	recs, err := s.List(ctx, Filter{})
	if err != nil || len(recs) != 57 {
		t.Fatalf("List = %d rows, %v", len(recs), err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

const crashChildEnv = "TOOLGATE_AUDIT_CRASH_CHILD"

// TestCrashChild is the child process of TestKill9LeavesEveryForwardedCall.
// It loops Begin -> "forward" (append the id to a side file) -> Finish
// until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("child process of TestKill9LeavesEveryForwardedCall")
	}
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, "audit.db"), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	side, err := os.OpenFile(filepath.Join(dir, "forwarded"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		os.Exit(3)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := n.Add(1)
				id := fmt.Sprintf("01K%d-%09d", w, i)
				if err := s.Begin(ctx, testCall(id, int(i)), testDecision(toolgate.Allow)); err != nil {
					fmt.Fprintln(os.Stderr, "begin:", err)
					os.Exit(4)
				}
				if _, err := side.WriteString(id + "\n"); err != nil {
					os.Exit(5)
				}
				if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
					fmt.Fprintln(os.Stderr, "finish:", err)
					os.Exit(4)
				}
			}
		}()
	}
	wg.Wait()
}

func TestKill9LeavesEveryForwardedCall(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	side := filepath.Join(dir, "forwarded")
	killChild(t, "TestCrashChild", crashChildEnv+"="+dir, func() bool {
		b, _ := os.ReadFile(side)
		return strings.Count(string(b), "\n") >= 2000
	})

	s := openTest(t, filepath.Join(dir, "audit.db"), Options{})
	ctx := context.Background()
	f, err := os.Open(side)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		id := sc.Text()
		if !strings.HasPrefix(id, "01K") || len(id) != len("01K0-000000000") {
			continue // a line torn by the kill
		}
		r, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("forwarded call %s has no audit row: %v", id, err)
		}
		if r.Status != toolgate.StatusStarted && r.Status != toolgate.StatusOK {
			t.Fatalf("forwarded call %s has status %s", id, r.Status)
		}
		n++
	}
	if n < 2000 {
		t.Fatalf("only %d forwarded ids read", n)
	}
	rep, err := s.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify after kill -9 = %+v, %v", rep, err)
	}
	t.Logf("%d forwarded calls all recorded; %d rows, %d events verified", n, rep.Calls, rep.Events)
}

// benchmarkWrites runs b.N iterations of op at concurrency conc and reports
// iterations per second, process CPU per iteration (steadier than
// wall-clock on a shared machine) and the group-commit factor. setup runs
// untimed on the open store first.
func benchmarkWrites(b *testing.B, conc int, mode Synchronous, unit string, setup func(s *Store), op func(s *Store, i int) error) {
	s := openTest(b, filepath.Join(b.TempDir(), "a.db"), Options{Now: time.Now, Synchronous: mode})
	if setup != nil {
		setup(s)
	}
	commits0, committed0 := s.commits.Load(), s.committed.Load()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := op(s, int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Outcomes are written behind: count them once they are committed.
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), unit+"/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(s.committed.Load()-committed0)/float64(max(1, s.commits.Load()-commits0)), "writes/commit")
	b.ReportMetric(float64(s.ckptStall.Load())/1e6, "max-ckpt-stall-ms")
}

func benchID(i int) string { return fmt.Sprintf("01B%012d", i) }

func beginN(b *testing.B, s *Store) {
	ctx := context.Background()
	d := testDecision(toolgate.Allow)
	for i := 1; i <= b.N; i++ {
		if err := s.Begin(ctx, testCall(benchID(i), i), d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBegin measures committed decisions per second: each Begin
// returns only after its row and chain event are committed.
func BenchmarkBegin(b *testing.B) {
	d := testDecision(toolgate.Allow)
	begin := func(s *Store, i int) error { return s.Begin(context.Background(), testCall(benchID(i), i), d) }
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) { benchmarkWrites(b, conc, SyncNormal, "decisions", nil, begin) })
	}
	b.Run("c=16/sync=FULL", func(b *testing.B) { benchmarkWrites(b, 16, SyncFull, "decisions", nil, begin) })
}

// BenchmarkFinish measures committed outcomes per second (the calls were
// begun, untimed, first). Finish does not wait for its commit; the clock
// stops once all are committed.
func BenchmarkFinish(b *testing.B) {
	finish := func(s *Store, i int) error {
		return s.Finish(context.Background(), benchID(i), toolgate.Outcome{Status: toolgate.StatusOK, Duration: time.Millisecond, ResultSize: 100})
	}
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) {
			benchmarkWrites(b, conc, SyncNormal, "outcomes", func(s *Store) { beginN(b, s) }, finish)
		})
	}
}

// BenchmarkCall measures whole proxied calls as the gate records them: a
// Begin, committed before it returns, then a Finish written behind (the
// clock stops once all are committed).
func BenchmarkCall(b *testing.B) {
	d := testDecision(toolgate.Allow)
	call := func(s *Store, i int) error {
		ctx := context.Background()
		if err := s.Begin(ctx, testCall(benchID(i), i), d); err != nil {
			return err
		}
		return s.Finish(ctx, benchID(i), toolgate.Outcome{Status: toolgate.StatusOK, Duration: time.Millisecond, ResultSize: 100})
	}
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) { benchmarkWrites(b, conc, SyncNormal, "calls", nil, call) })
	}
}

// cpuTime is the process's user+system CPU time: with the machine shared,
// CPU per decision is steadier than wall-clock throughput.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Verify reads the chain and the rows from one snapshot: calls committed
// while it runs are never reported as events without rows or rows without
// events.
func TestVerifyWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	s := openTest(t, path, Options{})
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		for i := range 300 {
			id := fmt.Sprintf("01W%06d", i)
			if err := s.Begin(ctx, testCall(id, i), testDecision(toolgate.Allow)); err != nil {
				done <- err
				return
			}
			if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for verifies := 0; ; verifies++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if verifies == 0 {
				t.Fatal("no Verify overlapped the writes")
			}
			return
		default:
		}
		if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
			t.Fatalf("Verify during writes: %v %v", err, rep.First())
		}
	}
}

const unprojectedChildEnv = "TOOLGATE_AUDIT_UNPROJECTED_CHILD"

// unprojectedCalls is how many calls TestUnprojectedChild records.
const unprojectedCalls = 300

// TestUnprojectedChild is the child process of
// TestKill9BeforeProjectionRecovers: it records calls whose decisions and
// outcomes are spooled but never imported, says so, and waits to be
// killed.
func TestUnprojectedChild(t *testing.T) {
	dir := os.Getenv(unprojectedChildEnv)
	if dir == "" {
		t.Skip("child process of TestKill9BeforeProjectionRecovers")
	}
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, "audit.db"), Options{importDelay: time.Hour, importBatch: 1 << 40})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	for i := range unprojectedCalls {
		id := fmt.Sprintf("01U%06d", i)
		a := []toolgate.Action{toolgate.Allow, toolgate.Deny}[i%2]
		if err := s.Begin(ctx, testCall(id, i), testDecision(a)); err != nil {
			fmt.Fprintln(os.Stderr, "begin:", err)
			os.Exit(4)
		}
		if a == toolgate.Allow {
			if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK, ResultSize: i}); err != nil {
				fmt.Fprintln(os.Stderr, "finish:", err)
				os.Exit(4)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600); err != nil {
		os.Exit(5)
	}
	select {}
}

// TestKill9BeforeProjectionRecovers: a process killed after its calls'
// decisions and outcomes were spooled but before they reached the log
// leaves a spool that the next Open imports and projects, and deletes.
func TestKill9BeforeProjectionRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	killChild(t, "TestUnprojectedChild", unprojectedChildEnv+"="+dir, func() bool {
		_, err := os.Stat(filepath.Join(dir, "ready"))
		return err == nil
	})

	path := filepath.Join(dir, "audit.db")
	spools, err := filepath.Glob(filepath.Join(path+SpoolSuffix, "*"))
	if err != nil || len(spools) != 1 {
		t.Fatalf("spools after the kill: %v %v", spools, err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro") // as it is: rawDB would import
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, events, mark int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM events), (SELECT seq FROM projection)`).
		Scan(&rows, &events, &mark); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || events != 0 || mark != 0 {
		t.Fatalf("after the kill: %d rows, %d events, watermark %d; want all in the spool", rows, events, mark)
	}

	s := openTest(t, path, Options{})
	ctx := context.Background()
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM events), (SELECT seq FROM projection)`).
		Scan(&rows, &events, &mark); err != nil {
		t.Fatal(err)
	}
	// Each call's decision, half of them finished, and their one context.
	if want := unprojectedCalls*3/2 + 1; rows != unprojectedCalls || events != want || mark != events {
		t.Fatalf("after Open: %d rows, %d events, watermark %d; want %d, %d, %d", rows, events, mark, unprojectedCalls, want, want)
	}
	if left, _ := filepath.Glob(filepath.Join(path+SpoolSuffix, "*")); len(left) != 0 {
		t.Errorf("the imported spool of a dead process is kept: %v", left)
	}
	recs, err := s.List(ctx, Filter{})
	if err != nil || len(recs) != unprojectedCalls {
		t.Fatalf("List = %d records, %v", len(recs), err)
	}
	for i, r := range recs {
		want := toolgate.StatusOK
		if i%2 == 1 {
			want = toolgate.StatusRefused
		}
		if r.Status != want || (want == toolgate.StatusOK && (r.Outcome == nil || r.Outcome.ResultSize != i)) || string(r.Args) == "{}" {
			t.Fatalf("call %s: status %s, outcome %+v, args %s", r.ID, r.Status, r.Outcome, r.Args)
		}
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() || rep.Calls != unprojectedCalls {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// killChild runs test name of this binary as a child process with env
// added, waits until ready reports true, and kills it with SIGKILL.
func killChild(t *testing.T, name, env string, ready func() bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !ready() {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child made too little progress; stderr: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v; stderr: %s", err, stderr.String())
	}
}

// TestProjectionInsertsInChunks: calls whose decisions and outcomes wait
// for one projection get their rows, in their final status, through
// inserts of 64, 8 and 1 rows, and the log verifies against them.
func TestProjectionInsertsInChunks(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{projectDelay: time.Hour, projectBatch: 1 << 40})
	const n = 2*64 + 3*8 + 5 // every prepared insert size
	for i := range n {
		id := fmt.Sprintf("01P%06d", i)
		a := []toolgate.Action{toolgate.Allow, toolgate.Allow, toolgate.Deny}[i%3]
		if err := s.Begin(ctx, testCall(id, i), testDecision(a)); err != nil {
			t.Fatal(err)
		}
		if a == toolgate.Allow && i%5 != 0 { // every fifth allowed call still runs
			if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK, ResultSize: i}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	rows, err := s.rdb.QueryContext(ctx, `SELECT status, outcome_seq IS NOT NULL FROM calls`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var status string
		var finished bool
		if err := rows.Scan(&status, &finished); err != nil {
			t.Fatal(err)
		}
		counts[fmt.Sprintf("%s %v", status, finished)]++
	}
	rows.Close()
	want := map[string]int{}
	for i := range n {
		switch {
		case i%3 == 2:
			want["refused false"]++
		case i%5 == 0:
			want["started false"]++
		default:
			want["ok true"]++
		}
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("calls rows by status and outcome: %v, want %v", counts, want)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() || rep.Calls != n {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}
