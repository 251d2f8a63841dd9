package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// TestSpoolRecordsRoundTrip: records read back are the ones written, and a
// spool cut anywhere inside its last record reads back as the records
// before it (a torn tail, as a kill mid-write leaves).
func TestSpoolRecordsRoundTrip(t *testing.T) {
	recs := []spoolRecord{
		{kind: kindDecision, id: "01A", status: toolgate.StatusStarted, at: 1, body: []byte(`{"v":2}`), ctx: []byte(`{"c":1}`)},
		{kind: kindOutcome, id: "01A", status: toolgate.StatusOK, at: -5, body: []byte(`{"o":"é\n"}`)},
		{kind: kindDecision, id: "01B", status: toolgate.StatusRefused, at: 1 << 62, body: bytes.Repeat([]byte("x"), 70000)},
	}
	var file []byte
	var ends []int64
	for i := range recs {
		file = append(file, recs[i].encode()...)
		ends = append(ends, int64(len(file)))
	}
	for cut := ends[1]; cut <= int64(len(file)); cut++ {
		if cut != ends[1] && cut != int64(len(file)) && cut%97 != 0 {
			continue
		}
		got, gotEnds, err := readSpoolBytes(t, file[:cut])
		want := 2
		if cut == int64(len(file)) {
			want = 3
		}
		if len(got) != want || (want == 2 && cut != ends[1]) != (err != nil) {
			t.Fatalf("cut at %d: %d records, %v; want %d", cut, len(got), err, want)
		}
		for i := range got {
			if string(got[i].encode()) != string(recs[i].encode()) || gotEnds[i] != ends[i] {
				t.Fatalf("cut at %d: record %d = %+v end %d", cut, i, got[i], gotEnds[i])
			}
		}
	}
	// A flipped byte stops the reading at its record.
	bad := bytes.Clone(file)
	bad[ends[0]+12] ^= 1
	if got, _, err := readSpoolBytes(t, bad); len(got) != 1 || err == nil {
		t.Fatalf("corrupt second record: %d records, %v", len(got), err)
	}
}

func readSpoolBytes(t testing.TB, b []byte) ([]spoolRecord, []int64, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spool")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readSpool(f, 0)
}

// FuzzReadSpool: whatever a spool file holds, reading it neither panics
// nor returns a record that is not what some append wrote.
func FuzzReadSpool(f *testing.F) {
	r := spoolRecord{kind: kindOutcome, id: "01A", status: "ok", at: 7, body: []byte(`{}`)}
	f.Add(r.encode())
	f.Add(append(r.encode(), r.encode()[:9]...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, ends, _ := readSpoolBytes(t, b)
		var at int64
		for i := range recs {
			enc := recs[i].encode()
			if int64(len(enc)) != ends[i]-at || !bytes.Equal(enc, b[at:ends[i]]) {
				t.Fatalf("record %d read back as %+v, which encodes otherwise", i, recs[i])
			}
			at = ends[i]
		}
	})
}

// TestDeadSpoolWithTornTail: a process killed mid-append leaves a spool
// whose complete records the next Open imports; the torn tail is dropped
// with the file. A live process's spool is imported by another's Open too,
// but kept, and its owner's own import then skips what is done.
func TestDeadSpoolWithTornTail(t *testing.T) {
	skipOnPostgres(t)
	ctx := context.Background()
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	s := openTest(t, live, Options{importDelay: 1 << 62, importBatch: 1 << 30})
	if err := s.Begin(ctx, testCall("01T0", 0), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, "01T0", toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
		t.Fatal(err)
	}

	// What a kill leaves beside another log: such a spool, plus half a
	// record, and no lock on it.
	b, err := os.ReadFile(s.spool.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	b = b[:s.spool.size] // the records, without the zeros allocated after them
	half := (&spoolRecord{kind: kindDecision, id: "01T1", status: "started", body: []byte(`{}`)}).encode()
	dead := filepath.Join(dir, "dead.db")
	left := filepath.Join(dead+SpoolSuffix, "00000000deadbeef")
	if err := os.MkdirAll(filepath.Dir(left), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(left, append(b, half[:len(half)/2]...), 0o600); err != nil {
		t.Fatal(err)
	}
	d := openTest(t, dead, Options{})
	if r, err := d.Get(ctx, "01T0"); err != nil || r.Status != toolgate.StatusOK {
		t.Fatalf("the dead spool's call: %+v, %v", r, err)
	}
	if _, err := d.Get(ctx, "01T1"); err == nil {
		t.Error("the torn record was imported")
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the dead spool is kept: %v", err)
	}

	other := openTest(t, live, Options{})
	if r, err := other.Get(ctx, "01T0"); err != nil || r.Status != toolgate.StatusOK {
		t.Fatalf("the live spool's call, from another process: %+v, %v", r, err)
	}
	if _, err := os.Stat(s.spool.f.Name()); err != nil {
		t.Errorf("a live process's spool was removed: %v", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() || rep.Calls != 1 || rep.Events != 3 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestSpooledDuplicateIsKept: a decision spooled for an id the log already
// holds (which toolgate's ids never repeat) is chained all the same, its
// Begin having returned, and Verify reports it.
func TestSpooledDuplicateIsKept(t *testing.T) {
	skipOnPostgres(t)
	ctx := context.Background()
	s := openTest(t, "", Options{})
	for range 2 {
		if err := s.Begin(ctx, testCall("01DUP", 1), testDecision(toolgate.Deny)); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM events WHERE call_id = '01DUP' AND kind = 'decision'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d decisions of 01DUP, %v; want both", n, err)
	}
	if rep, err := s.Verify(ctx); err != nil || rep.OK() {
		t.Fatalf("Verify = %+v, %v; want the second decision reported", rep, err)
	}
}

// TestSpoolAcrossProcesses: two serving processes on one log (two stores,
// each with its own spool and lease). Another's CloseInterrupted imports
// a live process's spooled call without closing it (its lease is live);
// the owner's own import then skips what was imported, and its outcome
// lands on the row the other projected.
func TestSpoolAcrossProcesses(t *testing.T) {
	skipOnPostgres(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	a := openTest(t, path, Options{Owner: "a", importDelay: 1 << 62, importBatch: 1 << 30})
	b := openTest(t, path, Options{Owner: "b"})
	if err := a.Begin(ctx, testCall("01X", 0), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	closed, err := b.CloseInterrupted(ctx, 0)
	if err != nil || len(closed) != 0 {
		t.Fatalf("CloseInterrupted = %v, %v; want nothing closed (a is alive)", closed, err)
	}
	if r, err := b.Get(ctx, "01X"); err != nil || r.Status != toolgate.StatusStarted {
		t.Fatalf("a's spooled call, from b: %+v, %v", r, err)
	}
	if err := a.Finish(ctx, "01X", toolgate.Outcome{Status: toolgate.StatusOK, ResultSize: 7}); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := b.Get(ctx, "01X")
	if err != nil || r.Status != toolgate.StatusOK || r.Outcome == nil || r.Outcome.ResultSize != 7 {
		t.Fatalf("after a's outcome: %+v, %v", r, err)
	}
	if rep, err := b.Verify(ctx); err != nil || !rep.OK() || rep.Calls != 1 || rep.Events != 3 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestReviewedOutcomeSpooled: the outcome of a reviewed call (its decision
// and verdict committed as before) is spooled as well, so a reader sees it
// as soon as Finish returns, before its process imports anything.
func TestReviewedOutcomeSpooled(t *testing.T) {
	skipOnPostgres(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openTest(t, path, Options{importDelay: 1 << 62, importBatch: 1 << 30})
	if err := s.Begin(ctx, testCall("01RV", 0), testDecision(toolgate.Review)); err != nil {
		t.Fatal(err)
	}
	if err := s.Resolve(ctx, "01RV", toolgate.Verdict{Approved: true, Reviewer: "alice", Channel: toolgate.ChannelCLI}); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, "01RV", toolgate.Outcome{Status: toolgate.StatusOK, ResultSize: 3}); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	r, err := ro.Get(ctx, "01RV")
	if err != nil || r.Status != toolgate.StatusOK || r.Outcome == nil || r.Outcome.ResultSize != 3 || r.Review == nil || r.Review.Reviewer != "alice" {
		t.Fatalf("the reviewed call, read at once: %+v, %v", r, err)
	}
	if rep, err := ro.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestVerifyReportsASecondOutcome: a call has one outcome; another one
// chained after it (a record imported twice, or written by hand and the
// chain re-hashed) is reported, on both passes.
func TestVerifyReportsASecondOutcome(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{})
	if err := s.Begin(ctx, testCall("01TWO", 0), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, "01TWO", toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify before = %+v, %v", rep, err)
	}
	db := rawDB(t, s.Path())
	if _, err := db.Exec(`INSERT INTO events (call_id, kind, at, body, prev_hash, hash)
		SELECT call_id, kind, at + 1, body, '', '' FROM events WHERE call_id = '01TWO' AND kind = 'outcome'`); err != nil {
		t.Fatal(err)
	}
	dropAppendOnly(t, db)
	rehashChain(t, db)
	// As the CLI verifies: its open projects the event, which fits no row.
	ro, err := Open(ctx, s.Path(), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep, err := ro.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range rep.Problems {
		found = found || strings.Contains(p.What, "outcome event for a call that is ok, not started")
	}
	if !found {
		t.Fatalf("Verify = %+v; want the second outcome reported", rep.Problems)
	}
}

// TestSpoolRotates: a spool whose records are all imported is replaced
// once it has grown past its size, so a long-running process's spool does
// not grow with its life; nothing is lost on the way.
func TestSpoolRotates(t *testing.T) {
	skipOnPostgres(t)
	ctx := context.Background()
	s := openTest(t, "", Options{spoolRotate: 4 << 10})
	var names []string
	for i := range 40 {
		id := fmt.Sprintf("01ROT%03d", i)
		if err := s.Begin(ctx, testCall(id, i), testDecision(toolgate.Allow)); err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		s.spool.mu.Lock()
		if s.spool.f != nil && !slices.Contains(names, s.spool.name) {
			names = append(names, s.spool.name)
		}
		s.spool.mu.Unlock()
	}
	if len(names) < 3 {
		t.Fatalf("spools used: %v; want it replaced as it grew past 4 KiB", names)
	}
	left, _ := filepath.Glob(filepath.Join(s.Path()+SpoolSuffix, "*"))
	if len(left) > 1 {
		t.Errorf("spools left: %v; want the current one at most", left)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() || rep.Calls != 40 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestSpoolHeaderLast: an append a kill interrupts after its body but
// before its header leaves the spool reading as the records before it,
// with no error: the zeros after the last record end it. The live spool's
// own file reads back as what was appended.
func TestSpoolHeaderLast(t *testing.T) {
	skipOnPostgres(t)
	ctx := context.Background()
	s := openTest(t, "", Options{importDelay: 1 << 62, importBatch: 1 << 30})
	for i := range 3 {
		if err := s.Begin(ctx, testCall(fmt.Sprintf("01H%d", i), i), testDecision(toolgate.Allow)); err != nil {
			t.Fatal(err)
		}
	}
	sp := s.spool
	sp.mu.Lock()
	size, f := sp.size, sp.f
	body := (&spoolRecord{kind: kindDecision, id: "01HX", status: "started", body: []byte(`{}`)}).encode()
	copy(sp.m[size+8:], body[8:]) // what put stores first
	sp.mu.Unlock()
	if fi, err := f.Stat(); err != nil || fi.Size() <= size {
		t.Fatalf("spool file: %v, %v; want it allocated past its %d bytes of records", fi, err, size)
	}
	recs, ends, err := readSpool(f, 0)
	if err != nil || len(recs) != 3 || ends[2] != size {
		t.Fatalf("read %d records ending at %v, %v; want the 3 appended, ending at %d", len(recs), ends, err, size)
	}
	if !recordAt(f.Name(), 0) || recordAt(f.Name(), size) {
		t.Errorf("recordAt: a record at 0 %v, at the end %v", recordAt(f.Name(), 0), recordAt(f.Name(), size))
	}
}

// TestSpoolGrows: a record larger than the spool's allocation grows the
// file and its mapping, and what was appended before stays.
func TestSpoolGrows(t *testing.T) {
	skipOnPostgres(t)
	ctx := context.Background()
	s := openTest(t, "", Options{importDelay: 1 << 62, importBatch: 1 << 30})
	c := testCall("01G0", 0)
	if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	big := testCall("01G1", 1)
	big.Args = map[string]any{"blob": strings.Repeat("g", spoolGrow+spoolGrow/2)}
	if err := s.Begin(ctx, big, testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, "01G1", toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
		t.Fatal(err)
	}
	recs, _, err := readSpool(s.spool.f, 0)
	if err != nil || len(recs) != 3 || recs[1].id != "01G1" {
		t.Fatalf("read %d records, %v", len(recs), err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Get(ctx, "01G1"); err != nil || r.Status != toolgate.StatusOK || len(r.Args) < spoolGrow {
		t.Fatalf("the large call: %v, %v", r.Status, err)
	}
}

// TestSpoolReleasesPages: the spool's appended pages leave the process's
// resident memory in spoolRelease steps, while their records stay in the
// file.
func TestSpoolReleasesPages(t *testing.T) {
	skipOnPostgres(t)
	ctx := context.Background()
	s := openTest(t, "", Options{importDelay: 1 << 62, importBatch: 1 << 30})
	n := 0
	for ; s.spool.size < 3*spoolRelease; n++ {
		c := testCall(fmt.Sprintf("01R%05d", n), n)
		c.Args = map[string]any{"pad": strings.Repeat("r", 4000)}
		if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
			t.Fatal(err)
		}
	}
	rss := mappedRSS(t, s.spool.f.Name())
	if rss > 2*spoolRelease {
		t.Errorf("%d bytes of the spool resident after %d appended; want at most %d", rss, s.spool.size, 2*spoolRelease)
	}
	if recs, _, err := readSpool(s.spool.f, 0); err != nil || len(recs) != n {
		t.Fatalf("read %d records, %v; want %d", len(recs), err, n)
	}
}

// mappedRSS is the resident size of this process's mapping of path, from
// /proc/self/smaps.
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 6 && strings.Contains(f[0], "-"):
			in = f[len(f)-1] == path
		case in && len(f) == 3 && f[0] == "Rss:":
			var kb int64
			fmt.Sscan(f[1], &kb)
			return kb << 10
		}
	}
	t.Fatalf("no mapping of %s in /proc/self/smaps", path)
	return 0
}

// TestSpoolCutShort: a spool file cut short under its mapping (by another
// process of the same user) makes the next append fault; the fault fails
// that Begin with an error instead of killing the process.
func TestSpoolCutShort(t *testing.T) {
	skipOnPostgres(t)
	ctx := context.Background()
	s := openTest(t, "", Options{importDelay: 1 << 62, importBatch: 1 << 30})
	if err := s.Begin(ctx, testCall("01CUT0", 0), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(s.spool.f.Name(), 0); err != nil {
		t.Fatal(err)
	}
	err := s.Begin(ctx, testCall("01CUT1", 1), testDecision(toolgate.Allow))
	if err == nil || !strings.Contains(err.Error(), "append to spool") {
		t.Fatalf("Begin into a spool cut short: %v; want the append's fault as an error", err)
	}
}

// TestSpoolDeletedRefuses: once the process's spool is deleted, no record
// goes into it (it would die with the process): the next Begin, right
// after the deletion, and every one after it, fails with ErrGone.
func TestSpoolDeletedRefuses(t *testing.T) {
	skipOnPostgres(t)
	ctx := context.Background()
	s := openTest(t, "", Options{importDelay: 1 << 62, importBatch: 1 << 30})
	for i := range 2 {
		if err := s.Begin(ctx, testCall(fmt.Sprintf("01DEL%d", i), i), testDecision(toolgate.Allow)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(s.spool.f.Name()); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 4; i++ {
		err := s.Begin(ctx, testCall(fmt.Sprintf("01DEL%d", i), i), testDecision(toolgate.Allow))
		if !errors.Is(err, ErrGone) || !strings.Contains(err.Error(), "was deleted") {
			t.Fatalf("Begin %d after the spool was deleted: %v; want ErrGone", i, err)
		}
	}
}
