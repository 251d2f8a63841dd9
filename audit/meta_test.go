package audit

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/redact"
)

// metaSecret is a token-looking value an agent put in _meta.
const metaSecret = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345"

// redactValue is Options.Redact as serve sets it.
func redactValue(m map[string]any) map[string]any {
	out, _ := redact.New(nil).Value(m).(map[string]any)
	return out
}

// TestDecisionRecordsMeta: the _meta that goes upstream with a call is in
// its decision event, redacted as its arguments are, and every reader
// gets it: Get, the pending reviews, export and, through import, another
// log. The chain covers it. A call without _meta records nothing for it,
// and with store_args: hash it is not kept.
func TestDecisionRecordsMeta(t *testing.T) {
	s := openTest(t, "", Options{Redact: redactValue})
	ctx := context.Background()
	c := testCall("01META", 1)
	c.Meta = map[string]any{"dry_run": false, "com.example/trace": "t-1", "auth": "Bearer " + metaSecret, "note": "key " + metaSecret}
	if err := s.Begin(ctx, c, testDecision(toolgate.Review)); err != nil {
		t.Fatal(err)
	}
	plain := testCall("01PLAIN", 2)
	if err := s.Begin(ctx, plain, testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	const want = `{"auth":"[REDACTED]","com.example/trace":"t-1","dry_run":false,"note":"key [REDACTED]"}`
	r, err := s.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Meta) != want {
		t.Errorf("recorded _meta = %s, want %s", r.Meta, want)
	}
	if c.Meta["auth"] != "Bearer "+metaSecret {
		t.Errorf("Begin changed the call's _meta: %v", c.Meta)
	}
	bodies := map[string]string{}
	rows, err := s.rdb.QueryContext(ctx, `SELECT call_id, body FROM events WHERE kind = 'decision'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			t.Fatal(err)
		}
		bodies[id] = body
	}
	rows.Close()
	if b := bodies[c.ID]; !strings.Contains(b, `"meta":`+want) || strings.Contains(b, metaSecret) {
		t.Errorf("decision event = %s; want the redacted _meta", b)
	}
	if b := bodies[plain.ID]; strings.Contains(b, "meta") {
		t.Errorf("the decision of a call without _meta holds %s", b)
	}
	if r, err := s.Get(ctx, plain.ID); err != nil || r.Meta != nil {
		t.Errorf("a call without _meta reads back with %s (%v)", r.Meta, err)
	}

	ps, err := s.PendingReviews(ctx)
	if err != nil || len(ps) != 1 {
		t.Fatalf("pending reviews: %v, %v", ps, err)
	}
	if m := ps[0].Call.Meta; m["dry_run"] != false || m["auth"] != redact.Mask || m["com.example/trace"] != "t-1" {
		t.Errorf("the pending review's call has _meta %v", m)
	}

	var export bytes.Buffer
	if err := WriteJSONL(&export, s.Records(ctx, Filter{})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(export.String(), `"meta":`+want) {
		t.Errorf("export lacks the _meta:\n%s", export.String())
	}
	var csv bytes.Buffer
	if err := WriteCSV(&csv, s.Records(ctx, Filter{})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csv.String(), `"{""auth"":""[REDACTED]""`) {
		t.Errorf("CSV export lacks the _meta:\n%s", csv.String())
	}
	other := openTest(t, "", Options{})
	if _, err := other.Import(ctx, &export); err != nil {
		t.Fatal(err)
	}
	if r, err := other.Get(ctx, c.ID); err != nil || string(r.Meta) != want {
		t.Errorf("imported _meta = %s (%v), want %s", r.Meta, err, want)
	}
	if r, err := other.Get(ctx, plain.ID); err != nil || r.Meta != nil {
		t.Errorf("an imported call without _meta has %s (%v)", r.Meta, err)
	}
	for name, st := range map[string]*Store{"live": s, "imported": other} {
		if rep, err := st.Verify(ctx); err != nil || !rep.OK() {
			t.Errorf("%s log: Verify = %+v, %v", name, rep, err)
		}
		if clean, probs := fastClean(t, st); !clean || len(probs) > 0 {
			t.Errorf("%s log: fast pass clean = %v, problems %v", name, clean, probs)
		}
	}

	// The chain covers _meta: flipping dry_run in the stored event breaks it.
	db := rawDB(t, s.Path())
	dropAppendOnly(t, db)
	if _, err := db.Exec(`UPDATE events SET body = replace(body, '"dry_run":false', '"dry_run":true') WHERE call_id = ?`, c.ID); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Problems) == 0 || rep.Problems[0].CallID != c.ID {
		t.Errorf("Verify after a changed _meta = %+v; want a problem of %s", rep, c.ID)
	}

	hashed := openTest(t, "", Options{Redact: redactValue, ArgsHashOnly: true})
	if err := hashed.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	if r, err := hashed.Get(ctx, c.ID); err != nil || r.Meta != nil || r.Args != nil {
		t.Errorf("with store_args: hash, a call reads back with args %s and _meta %s (%v)", r.Args, r.Meta, err)
	}
}

// TestImportRefusesBadMeta: an imported _meta must be an object; null and
// {} are no _meta.
func TestImportRefusesBadMeta(t *testing.T) {
	s := openTest(t, "", Options{})
	ctx := context.Background()
	line := func(id, meta string) string {
		return `{"id":"` + id + `","received_at":"2026-03-01T11:00:00Z","server":"fs","tool":"t","action":"allow","status":"started","args":{},"meta":` + meta + "}\n"
	}
	if _, err := s.Import(ctx, strings.NewReader(line("01BAD", `"dry_run"`))); err == nil {
		t.Error("imported a _meta that is a string")
	}
	if _, err := s.Import(ctx, strings.NewReader(line("01NULL", "null")+line("01EMPTY", "{}")+line("01SPACE", `{ "b": 1,  "a": 2 }`))); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"01NULL": "", "01EMPTY": "", "01SPACE": `{"a":2,"b":1}`} {
		if r, err := s.Get(ctx, id); err != nil || string(r.Meta) != want {
			t.Errorf("%s: imported _meta %q (%v), want %q", id, r.Meta, err, want)
		}
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
}

// TestHasMaskMatchesRedact: every mask redact writes is one HasMask finds,
// whole or inside a value, so replay's masked count stays in step with it.
func TestHasMaskMatchesRedact(t *testing.T) {
	for _, m := range []string{redact.Mask, redact.Describe("hunter2 with spaces; and | pipes")} {
		if !redact.IsMask(m) {
			t.Fatalf("%q is not a mask", m)
		}
		for _, args := range []string{`{"p":"` + m + `"}`, `{"url":"https://u:` + m + `@host/"}`} {
			if !HasMask([]byte(args)) {
				t.Errorf("HasMask(%s) = false", args)
			}
		}
	}
	if HasMask([]byte(`{"p":"REDACTED"}`)) {
		t.Error(`HasMask of "REDACTED" without its bracket = true`)
	}
}
