package audit

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit/pgtest"
)

// TestContextEvents: the calls of one session and tool share one chained
// context event, which each decision names (cx) instead of repeating its
// fields, and every reader gets the full entry back.
func TestContextEvents(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{ToolgateVersion: "9.9"})
	for i, sess := range []string{"s1", "s1", "s2", "s1"} {
		c := testCall(benchID(i), i)
		c.SessionID = sess
		c.Principal = toolgate.Principal{User: "bob", Groups: []string{"dev"}, Auth: toolgate.AuthToken}
		if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
			t.Fatal(err)
		}
	}
	var contexts, named int
	if err := rawDB(t, s.Path()).QueryRow(`SELECT count(CASE WHEN kind = 'context' THEN 1 END),
		count(CASE WHEN kind = 'decision' AND body LIKE '{"v":2,"cx":%' AND body NOT LIKE '%"srv"%' THEN 1 END) FROM events`).Scan(&contexts, &named); err != nil {
		t.Fatal(err)
	}
	if contexts != 2 || named != 4 {
		t.Fatalf("%d context events, %d decisions naming one; want 2 and 4", contexts, named)
	}
	recs, err := s.List(ctx, Filter{})
	if err != nil || len(recs) != 4 {
		t.Fatalf("List = %d, %v", len(recs), err)
	}
	for i, r := range recs {
		want := map[bool]string{true: "s2", false: "s1"}[i == 2]
		if r.Session != want || r.Server != "fs" || r.Tool != "write_file" || r.Principal.User != "bob" ||
			r.Client.Name != "cursor" || r.RulesLabel != "prod" || r.ToolgateVersion != "9.9" || r.Annotations.Title != "Write" {
			t.Errorf("record %d = %+v; want its context filled in", i, r.Entry)
		}
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() || rep.Events != 6 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestContextTamper: an altered context event, or a decision naming
// another context or an event that is none, is a problem verify names.
func TestContextTamper(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, edit string
		rehash     bool // the attacker rewrites the whole chain after it
		want       string
	}{
		{"context body rewritten", `UPDATE events SET body = replace(body, '"srv":"fs"', '"srv":"fz"') WHERE seq = 1`, false, "hash mismatch"},
		{"context rewritten, chain rehashed", `UPDATE events SET body = replace(body, '"srv":"fs"', '"srv":"fz"') WHERE seq = 1`, true, "row differs"},
		{"cx at another context", `UPDATE events SET body = replace(body, '"cx":1,', '"cx":3,') WHERE seq = 5`, true, "row differs"},
		{"cx at a decision", `UPDATE events SET body = replace(body, '"cx":1,', '"cx":2,') WHERE seq = 5`, true, "no context event 2"},
		{"cx at a later context", `UPDATE events SET body = replace(body, '"cx":1,', '"cx":3,') WHERE seq = 2`, true, "not an earlier one"},
		{"cx on an outcome", `UPDATE events SET body = replace(body, '{"v":2,', '{"v":2,"cx":1,') WHERE kind = 'outcome'`, true, "cx 1 on a outcome"},
		{"context event deleted", `DELETE FROM events WHERE seq = 1`, true, "no context event 1"},
		{"context body not format 2", `UPDATE events SET body = '{}' WHERE seq = 1`, true, "holds no context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.db")
			if onPostgres() {
				path = pgtest.DSN(t)
			}
			s := openTest(t, path, Options{})
			// 1 context s1, 2 decision, 3 context s2, 4 decision, 5 decision (s1), 6 outcome
			for i, sess := range []string{"s1", "s2", "s1"} {
				c := testCall(benchID(i), i)
				c.SessionID = sess
				if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Finish(ctx, benchID(2), toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
				t.Fatal(err)
			}
			if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
				t.Fatalf("before: %+v, %v", rep, err)
			}
			db := rawDB(t, path)
			dropAppendOnly(t, db)
			if res, err := db.Exec(tc.edit); err != nil {
				t.Fatal(err)
			} else if n, _ := res.RowsAffected(); n != 1 {
				t.Fatalf("edit changed %d rows", n)
			}
			if tc.rehash {
				rehashChain(t, db)
			}
			rep, err := s.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || !strings.Contains(problems(rep), tc.want) {
				t.Fatalf("Verify = %s; want a problem containing %q", problems(rep), tc.want)
			}
		})
	}
}

func problems(rep VerifyReport) string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, p.String())
	}
	return strings.Join(out, "\n")
}

// TestArchiveKeepsContexts: a cut through a session whose context event
// is older than the cut keeps that event in the log, listed in the cut
// record; the log alone verifies, and so do archive and log together. A
// kept context altered or deleted afterwards is caught; and no decision
// written after the cut names a context at or before it.
func TestArchiveKeepsContexts(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) *archiveLog {
		l := newArchiveLog(t)
		l.begin("a1", toolgate.Allow) // context 1, decision 2
		l.finish("a1")
		cutTime := l.now()
		l.begin("a2", toolgate.Allow) // same session: names context 1
		l.finish("a2")
		res, err := l.archive(cutTime, "one.db.gz")
		if err != nil || res.Info.Calls != 1 {
			t.Fatalf("archive = %+v, %v", res, err)
		}
		return l
	}
	t.Run("verifies", func(t *testing.T) {
		l := setup(t)
		var kept int
		if err := rawDB(t, l.s.Path()).QueryRow(`SELECT count(*) FROM events WHERE seq = 1 AND kind = 'context'`).Scan(&kept); err != nil || kept != 1 {
			t.Fatalf("kept context event: %d, %v", kept, err)
		}
		rep, err := l.s.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustOK(t, "live Verify", rep)
		if all := l.verifyAll("one.db.gz"); !all.OK() {
			t.Fatalf("VerifyArchives = %+v", all)
		}
		if r, err := l.s.Get(ctx, "a2"); err != nil || r.Server != "fs" || r.Session != "sess-1" {
			t.Fatalf("a2 = %+v, %v", r, err)
		}
		// A new decision of the same session gets a context of its own.
		l.begin("a3", toolgate.Allow)
		var cx string
		if err := rawDB(t, l.s.Path()).QueryRow(`SELECT substr(body, 1, 14) FROM events WHERE call_id = 'a3'`).Scan(&cx); err != nil || cx == `{"v":2,"cx":1,` {
			t.Fatalf("a3 names %s, %v; want a context after the cut", cx, err)
		}
		c, err := OpenCombined(ctx, l.s, []string{filepath.Join(l.dir, "one.db.gz")}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		recs, err := c.List(ctx, Filter{})
		if err != nil || len(recs) != 3 || recs[1].Server != "fs" {
			t.Fatalf("combined = %d records, %v", len(recs), err)
		}
		if rep, err := Replay(ctx, c.Store, stubEvaluator{"write_file": toolgate.Deny}, Filter{}, nil); err != nil || rep.Total != 3 || rep.Changed != 3 {
			t.Fatalf("Replay across the cut = %+v, %v", rep, err)
		}
	})
	t.Run("second archive", func(t *testing.T) {
		// The second archive holds a2, which names the context the first
		// cut kept: it holds a copy, checked against the first archive.
		l := setup(t)
		if _, err := l.archive(l.now(), "two.db.gz"); err != nil {
			t.Fatal(err)
		}
		if all := l.verifyAll("one.db.gz", "two.db.gz"); !all.OK() {
			t.Fatalf("VerifyArchives = %+v", all)
		}
		two := l.open("two.db.gz")[0]
		if r, err := two.Get(ctx, "a2"); err != nil || r.Server != "fs" {
			t.Fatalf("a2 in its archive = %+v, %v", r, err)
		}
		rep, err := two.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustOK(t, "Verify of the second archive", rep)
	})
	for _, tc := range []struct{ name, edit, want string }{
		{"kept context deleted", `DELETE FROM events WHERE seq = 1`, "missing"},
		{"kept context rewritten", `UPDATE events SET body = replace(body, '"srv":"fs"', '"srv":"fz"') WHERE seq = 1`, "differs from what the cut recorded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := setup(t)
			db := rawDB(t, l.s.Path())
			dropAppendOnly(t, db)
			if _, err := db.Exec(tc.edit); err != nil {
				t.Fatal(err)
			}
			rep, err := l.s.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || !strings.Contains(problems(rep), tc.want) {
				t.Fatalf("Verify = %s; want a problem containing %q", problems(rep), tc.want)
			}
		})
	}
}

// TestContextCompat: a decision written before context events (its
// context fields in its own body) still reads and verifies next to the
// ones that name a context.
func TestContextCompat(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{})
	const old = `{"v":2,"d":{"rcv":1772362800000000000,"cl":{"name":"cursor","version":"1.0"},"mdl":{"name":"claude","version":"4"},"sess":"sess-1","srv":"fs","srv_v":"1.2.3","tool":"write_file","name":"fs__write_file","sch":"abc","ann":{"title":"Write"},"args":{"text":"xxxxx"},"conf":0.5,"rv":"v1","rl":"prod","rule":"r-allow","act":"allow","why":"because","ce":"none","sh":[{"rule":"shadow-1","action":"deny"}]}}`
	at := int64(1772362800000000009)
	if err := s.write(ctx, func(w *wtx) error {
		e, err := decodeEvent("01OLD", kindDecision, at, old)
		if err != nil {
			return err
		}
		if err := w.appendBody("01OLD", kindDecision, at, []byte(old)); err != nil {
			return err
		}
		_, err = w.insertEntry(w.head, e.Decision, e.Status)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx, testCall("01NEW", 1), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	recs, err := s.List(ctx, Filter{})
	if err != nil || len(recs) != 2 {
		t.Fatalf("List = %d, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Server != "fs" || r.Session != "sess-1" || r.Client.Version != "1.0" || r.RulesLabel != "prod" || r.Rule != "r-allow" {
			t.Errorf("%s = %+v", r.ID, r.Entry)
		}
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() || rep.Events != 3 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}
