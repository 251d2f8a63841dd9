package audit

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

// rehashChain recomputes every event's prev_hash and hash from the start,
// each in its own format, as an attacker who can write the DB would after
// editing it.
func rehashChain(t testing.TB, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT ` + chainCols + ` FROM events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var evs []evItem
	for rows.Next() {
		var e evItem
		if err := e.scan(rows); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	rows.Close()
	var prev []byte
	for _, e := range evs {
		h := eventHash(prev, e.callID, e.kind, e.at, e.body)
		var ph string
		var stored any = h
		if !isFormat2(e.body) {
			ph = hashHex(prev)
			if !onPostgres() {
				stored = hex.EncodeToString(h)
			}
		}
		if _, err := db.Exec(`UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?`, ph, stored, e.seq); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
}

// dropAppendOnly removes the triggers that keep events append-only, as an
// attacker who can write the DB would.
func dropAppendOnly(t testing.TB, db *sql.DB) {
	t.Helper()
	on := ""
	if onPostgres() {
		on = " ON events"
	}
	if _, err := db.Exec(`DROP TRIGGER IF EXISTS events_no_update` + on + `; DROP TRIGGER IF EXISTS events_no_delete` + on); err != nil {
		t.Fatal(err)
	}
}

// appendFormat1 chains e as a format-1 event, as toolgate wrote events
// before format 2 (json.Marshal of event is the format-1 body, byte for
// byte).
func (w *wtx) appendFormat1(e *event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	h := eventHash(w.prev, e.ID, e.Kind, e.At, string(body))
	var stored any = hex.EncodeToString(h)
	if w.s.pg != nil {
		stored = h // BYTEA
	}
	w.head, err = insertedSeq(w.ctx, w.s.pg != nil, w.s.stmts.insertEvent, []any{e.ID, e.Kind, e.At, string(body), hashHex(w.prev), stored})
	w.prev = h
	return err
}

// TestFormat2RoundTrip: every field of a call's events survives encoding
// and decoding, and nothing the columns hold is stored in the body.
func TestFormat2RoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 11, 0, 0, 5, time.UTC)
	conf, yes := 0.25, true
	d := &Entry{
		ID: "01RT", ReceivedAt: at.Add(-time.Second), DecidedAt: at,
		Client: toolgate.Peer{Name: "c", Version: "1"}, Model: toolgate.Peer{Name: "m"},
		Principal: toolgate.Principal{User: "u", Groups: []string{"g"}, Auth: "token"},
		Session:   "s", Server: "srv", ServerVersion: "2", Tool: "t", Name: "n", Kind: "resource", SchemaHash: "sh",
		Annotations: toolgate.Annotations{Title: "T", ReadOnly: &yes}, Args: json.RawMessage(`{"a":"\u003cb\u003e"}`),
		Confidence: &conf, RulesVersion: "v1", RulesLabel: "l", Rule: "r", Action: toolgate.Review, Reason: "why",
		AutoApproved: true, ConfidenceEffect: "none", Shadow: []toolgate.ShadowResult{{Rule: "x", Action: toolgate.Deny}},
		EvalError: "e", Sandbox: "sb", ToolgateVersion: "tv",
	}
	d.ArgsHash = argsHash(d.Args)
	cases := []*event{
		{Kind: kindDecision, ID: d.ID, At: at.UnixNano(), Status: toolgate.StatusPending, Decision: d},
		{Kind: kindDecision, ID: d.ID, At: at.UnixNano() + 1, Status: toolgate.StatusStarted, Decision: d},
		{Kind: kindVerdict, ID: d.ID, At: at.UnixNano(), Status: toolgate.StatusStarted,
			Verdict: &Review{Approved: true, Reviewer: "r", Channel: "slack", Reason: "ok", DecidedAt: at, TimeToDecision: time.Second}},
		{Kind: kindStatus, ID: d.ID, At: at.UnixNano(), Status: toolgate.StatusRefused},
		{Kind: kindOutcome, ID: d.ID, At: at.UnixNano(), Status: toolgate.StatusOK,
			Outcome: &toolgate.Outcome{Status: toolgate.StatusOK, Duration: 3, ResultSize: 4, ResultHash: "rh", FinishedAt: at.Add(-1)}},
	}
	for _, e := range cases {
		body, err := encodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if !isFormat2(string(body)) || strings.Contains(string(body), d.ID) || strings.Contains(string(body), d.ArgsHash) {
			t.Errorf("%s body %s: want format 2 without the call id and args hash", e.Kind, body)
		}
		got, err := decodeEvent(e.ID, e.Kind, e.At, string(body))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(e)
			t.Errorf("%s: decoded\n%s\nwant\n%s", e.Kind, g, w)
		}
	}
}

// TestFormat2Tamper: changing any column or body byte of a format-2 event
// (the attacker edits one event in place) is caught by Verify.
func TestFormat2Tamper(t *testing.T) {
	ctx := context.Background()
	edits := []string{
		`UPDATE events SET call_id = '01T1' WHERE seq = 2`,
		`UPDATE events SET kind = 'status' WHERE seq = 3`,
		`UPDATE events SET at = at + 1 WHERE seq = 2`,
		`UPDATE events SET body = replace(body, '"rule":"r-allow"', '"rule":"r-allox"') WHERE seq = 2`,
		`UPDATE events SET prev_hash = 'x' WHERE seq = 3`,
		`UPDATE events SET hash = ? WHERE seq = 4`,
		`DELETE FROM events WHERE seq = 3`,
	}
	for _, edit := range edits {
		t.Run(edit, func(t *testing.T) {
			s := openTest(t, "", Options{})
			for i, id := range []string{"01T0", "01T1"} {
				if err := s.Begin(ctx, testCall(id, i), testDecision(toolgate.Allow)); err != nil {
					t.Fatal(err)
				}
				if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
					t.Fatal(err)
				}
			}
			if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
				t.Fatalf("before: %+v, %v", rep, err)
			}
			db := rawDB(t, s.Path())
			dropAppendOnly(t, db)
			var args []any
			if strings.Contains(edit, "?") {
				args = append(args, make([]byte, 32))
			}
			if res, err := db.Exec(edit, args...); err != nil {
				t.Fatal(err)
			} else if n, _ := res.RowsAffected(); n != 1 {
				t.Fatalf("edit changed %d rows", n)
			}
			rep, err := s.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("Verify after %q found nothing", edit)
			}
		})
	}
}

// TestMixedFormats: a log whose first events are format 1 (written before
// format 2) verifies with format-2 events after them, and tampering with
// either is caught.
func TestMixedFormats(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{})
	r, err := s.newEntry(testCall("01OLD", 1), testDecision(toolgate.Allow))
	if err != nil {
		t.Fatal(err)
	}
	o := toolgate.Outcome{Status: toolgate.StatusOK, FinishedAt: time.Unix(0, r.at+5).UTC(), ResultSize: 7}
	err = s.write(ctx, func(w *wtx) error {
		if err := w.appendFormat1(&event{Kind: kindDecision, ID: r.e.ID, At: r.at, Status: r.status, Decision: &r.e}); err != nil {
			return err
		}
		if _, err := w.insertEntry(w.head, &r.e, r.status); err != nil {
			return err
		}
		if err := w.appendFormat1(&event{Kind: kindOutcome, ID: r.e.ID, At: r.at + 9, Status: o.Status, Outcome: &o}); err != nil {
			return err
		}
		_, err := w.setOutcome(r.e.ID, &o, w.head)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx, testCall("01NEW", 2), testDecision(toolgate.Deny)); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() || rep.Events != 4 || rep.Calls != 2 { // 01NEW's decision and context
		t.Fatalf("Verify of a mixed log = %+v, %v", rep, err)
	}
	db := rawDB(t, s.Path())
	dropAppendOnly(t, db)
	for _, edit := range []string{
		`UPDATE events SET body = replace(body, '"result_size":7', '"result_size":8') WHERE seq = 2`,
		`UPDATE calls SET action = 'deny' WHERE id = '01OLD'`,
	} {
		if _, err := db.Exec(edit); err != nil {
			t.Fatal(err)
		}
		if rep, err := s.Verify(ctx); err != nil || rep.OK() {
			t.Fatalf("Verify after %s = %+v, %v", edit, rep, err)
		}
	}
}

// FuzzDecodeEvent: bodies come from disk, which an attacker may write;
// decoding any of them fails or succeeds, never panics, and what decodes
// re-encodes to a body that decodes to the same event.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(kindDecision, int64(5), `{"v":2,"d":{"rcv":1,"act":"allow","args":{}}}`)
	f.Add(kindOutcome, int64(5), `{"v":2,"st":"ok","o":{"dur":3,"fin":-1}}`)
	f.Add(kindVerdict, int64(5), `{"v":2,"st":"started","r":{"ok":true,"dec":9}}`)
	f.Add(kindDecision, int64(5), `{"kind":"decision","id":"x","at":5,"status":"started","decision":{"args":null}}`)
	f.Add(kindStatus, int64(0), `{"v":2}`)
	f.Add(kindDecision, int64(5), `{"v":2,"cx":3,"d":{"rcv":1,"act":"allow","args":{}}}`)
	f.Add(kindContext, int64(5), `{"v":2,"c":{"cl":{"name":"x"},"srv":"fs","pr":{"user":"bob"}}}`)
	f.Add(kindOutcome, int64(5), `{"v":2,"cx":-1,"st":"ok","o":{}}`)
	f.Fuzz(func(t *testing.T, kind string, at int64, body string) {
		e, err := decodeEvent("01F", kind, at, body)
		if err != nil || !isFormat2(body) {
			return
		}
		if e.Outcome != nil && e.Status == "" {
			return // an outcome needs a status: encodeEvent refuses
		}
		b, err := encodeEvent(e)
		if err != nil {
			return // e.g. a time outside what the encoder accepts
		}
		e2, err := decodeEvent("01F", kind, at, string(b))
		if err != nil {
			t.Fatalf("re-encoded %s as %s, which does not decode: %v", body, b, err)
		}
		b2, err := encodeEvent(e2)
		if err != nil || string(b2) != string(b) {
			t.Fatalf("%s: encodes to %s, then %s (%v)", body, b, b2, err)
		}
	})
}

// TestArgsHashOnly: with Options.ArgsHashOnly no byte of the arguments is
// stored, in the event or the row; the record shows their hash, Verify
// checks it, and Replay says those calls were not evaluated.
func TestArgsHashOnly(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{ArgsHashOnly: true})
	c := testCall("01H0", 1)
	c.Args = map[string]any{"path": "/very/distinctive/path"}
	if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, c.ID, toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := argsHash([]byte(`{"path":"/very/distinctive/path"}`))
	if r.Args != nil || r.ArgsHash != want {
		t.Fatalf("record args %s, hash %s; want none and %s", r.Args, r.ArgsHash, want)
	}
	db := rawDB(t, s.Path())
	var n int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM events WHERE body LIKE '%distinctive%') +
		(SELECT count(*) FROM calls WHERE args LIKE '%distinctive%')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d places hold the arguments (%v)", n, err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	rep, err := Replay(ctx, s, stubEvaluator{"write_file": toolgate.Deny}, Filter{}, nil)
	if err != nil || rep.ArgsNotStored != 1 || rep.Total != 0 || rep.Changed != 0 {
		t.Fatalf("Replay = %+v, %v; want the call not evaluated", rep, err)
	}
	dropAppendOnly(t, db)
	for _, edit := range []string{
		`UPDATE calls SET args = '{"path":"/tmp/x"}' WHERE id = '01H0'`,
		`UPDATE events SET body = replace(body, '"ah":"', '"ah":"0') WHERE call_id = '01H0'`,
	} {
		if _, err := db.Exec(edit); err != nil {
			t.Fatal(err)
		}
		if rep, err := s.Verify(ctx); err != nil || rep.OK() {
			t.Fatalf("Verify after %s = %+v, %v", edit, rep, err)
		}
	}
}
