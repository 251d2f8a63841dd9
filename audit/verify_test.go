package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// fastClean runs the fast pass alone and reports whether it found the log
// clean, and the detailed pass's row problems.
func fastClean(t testing.TB, s *Store) (bool, []Problem) {
	t.Helper()
	ctx := context.Background()
	evTx, rowTx, err := s.snapshotPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer evTx.Rollback()
	if rowTx != nil {
		defer rowTx.Rollback()
	}
	var fast VerifyReport
	mark, err := watermark(ctx, evTx)
	if err != nil {
		t.Fatal(err)
	}
	clean, err := verifyFast(ctx, evTx, rowTx, &fast, ChainPoint{}, mark)
	if err != nil {
		t.Fatal(err)
	}
	var detailed VerifyReport
	if err := s.verifyRowsIn(ctx, evTx, rowTx, &detailed); err != nil {
		t.Fatal(err)
	}
	return clean, detailed.Problems
}

func TestVerifyFastClean(t *testing.T) {
	for name, s := range map[string]*Store{"fixture": importFixture(t), "synthetic": importSynth(t, 3000)} {
		clean, probs := fastClean(t, s)
		if !clean || len(probs) > 0 {
			t.Errorf("%s: fast pass clean = %v, detailed problems %v", name, clean, probs)
		}
	}
}

// verifyTemplate is a small log with every kind of call record (allowed
// and finished, denied, reviewed and refused, approved, pending, with and
// without confidence, Slack locations) in a file each case copies.
func verifyTemplate(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "template.db")
	s := openTest(t, path, Options{})
	ctx := context.Background()
	f, err := os.Open(filepath.Join(fixtureDir, "calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s.Import(ctx, f); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		id := fmt.Sprintf("01VF%d", i)
		a := []toolgate.Action{toolgate.Allow, toolgate.Deny, toolgate.Review, toolgate.Review, toolgate.Review}[i]
		if err := s.Begin(ctx, testCall(id, i), testDecision(a)); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			err = s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK, ResultSize: 3})
		case 2:
			err = s.Resolve(ctx, id, toolgate.Verdict{Approved: false, Reviewer: "amy", Channel: "slack"})
		case 3:
			err = s.SetReviewMessage(ctx, id, "C9", "1.2")
		case 4: // a verdict submitted elsewhere, then finalized: a status event
			v := toolgate.Verdict{Approved: true, Reviewer: "bob", Channel: "cli"}
			if _, err = s.SubmitVerdict(ctx, id, v); err == nil {
				if err = s.Resolve(ctx, id, v); err == nil {
					err = s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusToolError, Error: "boom"})
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyDB copies the template (its WAL too, if any) to a new file and
// opens it.
func copyDB(t testing.TB, template string) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.db")
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(template + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := openTest(t, path, Options{})
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM calls`).Scan(&n); err != nil || n < 17 {
		t.Fatalf("the copy holds %d calls, %v", n, err)
	}
	return s, path
}

// checkFastSound fails t if the fast pass calls the log clean while the
// detailed pass finds a problem with its rows: the fast pass may only
// ever prove a log clean, never hide a problem.
func checkFastSound(t *testing.T, what string, s *Store) bool {
	t.Helper()
	clean, probs := fastClean(t, s)
	if clean && len(probs) > 0 {
		t.Errorf("%s: the fast pass finds the log clean, the detailed pass finds %v", what, probs)
	}
	return clean
}

// TestVerifyFastSound tampers with every chained column of a row and
// with event bodies (the chain rewritten after, as by an attacker who can
// write the DB), including rewrites that change a body's bytes but not
// its meaning, and compares the fast pass with the detailed one.
func TestVerifyFastSound(t *testing.T) {
	template := verifyTemplate(t)
	s, _ := copyDB(t, template)
	if !checkFastSound(t, "untouched", s) {
		t.Fatal("the fast pass does not find the untouched log clean")
	}
	for _, col := range append(slimNames, "args") {
		for _, set := range []string{col + " || 'x'", "NULL", "''"} {
			s, path := copyDB(t, template)
			// Reviewed calls with an outcome, a finished one, a refused one.
			if _, err := rawDB(t, path).Exec(`UPDATE calls SET ` + col + ` = ` + set + ` WHERE id IN ('01JNQX0003AAAAAAAAAAAAAAAA', '01VF0', '01VF2', '01VF4')`); err != nil {
				continue // a NOT NULL column
			}
			checkFastSound(t, col+" = "+set, s)
		}
	}
	edits := []struct {
		edit      string
		wantClean bool // the meaning is unchanged
	}{
		{`UPDATE events SET body = replace(body, '"ok":false', '"ok":true')`, false},
		{`UPDATE events SET body = replace(body, '"d":{', '"d": {')`, true},
		{`UPDATE events SET body = replace(body, '"st":"refused"', '"st":"refus\u0065d"')`, true},
		{`UPDATE events SET body = replace(body, '"args":', '"RCV":1,"args":') WHERE call_id = '01VF1'`, false},
		{`UPDATE events SET body = replace(body, '"act":', '"Act":')`, true}, // encoding/json matches keys in any case
		{`UPDATE events SET body = replace(body, '"rcv":', '"rcv":"') WHERE call_id = '01VF1'`, false},
		{`UPDATE events SET body = replace(body, '}}', '}, "r": 7}') WHERE kind = 'outcome'`, false},
		{`UPDATE events SET body = replace(body, '"size":3', '"size":3.5')`, false},
		{`UPDATE events SET body = body || ' '`, true},
		{`UPDATE events SET body = body || 'x' WHERE seq = 3`, false},
		{`UPDATE events SET body = replace(body, '"st":"started"}', '"st":"started"') WHERE kind = 'status'`, false},
		{`UPDATE events SET body = replace(body, '"st":"started"}', '"st":"started","o":{}}') WHERE kind = 'status'`, true},
		{`UPDATE events SET body = replace(body, '"st":"started"}', '"st":"started","o":{"dur":"5"}}') WHERE kind = 'status'`, false},
		// The row keeps no second copy of the reviewer: a chain rewritten
		// consistently is the checkpoints' to catch (checkpoint.go).
		{`UPDATE events SET body = replace(body, '"by":"amy"', '"by":"amy\u0000"')`, true},
		{`UPDATE events SET body = replace(body, '"rule":"r-deny"', '"rule":"r-deny","rule":"r-allow"')`, false},
		{`UPDATE events SET kind = 'status' WHERE call_id = '01VF2' AND kind = 'verdict'`, false},
		{`DELETE FROM events WHERE call_id = '01VF0' AND kind = 'outcome'`, false},
		{`DELETE FROM calls WHERE id = '01VF1'`, false},
	}
	for _, e := range edits {
		s, path := copyDB(t, template)
		rewriteChain(t, path, e.edit)
		clean := checkFastSound(t, e.edit, s)
		rep, err := s.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() != e.wantClean {
			t.Errorf("%s: Verify OK = %v, want %v: %v (fast pass clean %v)", e.edit, rep.OK(), e.wantClean, rep.Problems, clean)
		}
	}
}

// FuzzVerifyFast rewrites an event body (and the chain after it) or sets
// a row's column, and holds the fast pass to the detailed one.
func FuzzVerifyFast(f *testing.F) {
	f.Add(true, 5, "", `"ok":false`, `"ok":true`)
	f.Add(true, 2, "", `"st":"`, `"st":"\u0020`)
	f.Add(true, 9, "", `{"v":2`, `{"v":2,"v":2`)
	f.Add(false, 3, "reviewer", "", "mallory")
	f.Add(false, 14, "args", "", `{"path":"/etc/passwd"}`)
	f.Add(false, 1, "annotations", "", `{"title":"x"}`)
	f.Add(false, 21, "verdict_seq", "", "0")  // 01VF0, never reviewed: 0 is not NULL
	f.Add(true, 2, "", `"cx":1,`, `"cx":2,`)  // a decision naming an event that is no context
	f.Add(true, 1, "", `"srv":"`, `"srv":"x`) // a context event
	template := verifyTemplate(f)
	colOK := map[string]bool{}
	for _, c := range append(slimNames, "args") {
		colOK[c] = true
	}
	f.Fuzz(func(t *testing.T, event bool, seq int, col, from, to string) {
		s, path := copyDB(t, template)
		if event {
			if from == "" || strings.ContainsRune(from+to, 0) { // SQL text holds no NUL
				return
			}
			rewriteChain(t, path, fmt.Sprintf(`UPDATE events SET body = replace(body, %s, %s) WHERE seq = %d`, quoteSQL(from), quoteSQL(to), seq))
		} else {
			if !colOK[col] {
				return
			}
			if _, err := rawDB(t, path).Exec(`UPDATE calls SET `+col+` = ? WHERE seq = ?`, to, seq); err != nil {
				return
			}
		}
		checkFastSound(t, "fuzz", s)
	})
}

func quoteSQL(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// TestVerifyLongPrevHash: a format-1 event whose prev_hash an attacker
// set to more bytes than a hash has is reported as broken, not a crash.
func TestVerifyLongPrevHash(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	s := openTest(t, path, Options{})
	r, err := s.newEntry(testCall("01OLD", 1), testDecision(toolgate.Deny))
	if err != nil {
		t.Fatal(err)
	}
	err = s.write(ctx, func(w *wtx) error {
		if err := w.appendFormat1(&event{Kind: kindDecision, ID: r.e.ID, At: r.at, Status: r.status, Decision: &r.e}); err != nil {
			return err
		}
		_, err := w.insertEntry(w.head, &r.e, r.status)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("before the edit: Verify = %+v, %v", rep, err)
	}
	if _, err := rawDB(t, path).Exec(`DROP TRIGGER events_no_update; UPDATE events SET prev_hash = ?`, strings.Repeat("z", 70)); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx)
	if err != nil || rep.OK() {
		t.Fatalf("Verify = %+v, %v: want the edited event reported", rep, err)
	}
}
