package audit

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// kindEvaluator denies calls of one kind and allows the rest.
type kindEvaluator string

func (k kindEvaluator) Evaluate(_ context.Context, c toolgate.Call) toolgate.Decision {
	if c.KindName() == string(k) {
		return toolgate.Decision{Action: toolgate.Deny, Rule: "no-" + string(k)}
	}
	return toolgate.Decision{Action: toolgate.Allow}
}

// TestKindRoundTrip: a call's kind is stored (column, chained event),
// read back, verified and replayed; a tool call's kind is "tool" in the
// column and absent from its event, as before kinds existed.
func TestKindRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openTest(t, path, Options{})
	tool := testCall("01TOOL", 1)
	res := testCall("01RES", 2)
	res.Kind, res.Tool, res.Name, res.Args = toolgate.KindResource, "docs", "fs__docs", map[string]any{"uri": "file:///a"}
	for _, c := range []toolgate.Call{tool, res} {
		if err := s.Begin(ctx, c, toolgate.Decision{Action: toolgate.Allow, Version: "v1"}); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]string{"01TOOL": "tool", "01RES": "resource"} {
		r, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		c, err := r.Call()
		if err != nil {
			t.Fatal(err)
		}
		if r.KindName() != want || c.KindName() != want {
			t.Errorf("%s: kind %q, call kind %q, want %q", id, r.KindName(), c.KindName(), want)
		}
	}
	var col string
	if err := rawDB(t, path).QueryRow(`SELECT name FROM names JOIN calls ON calls.kind_ref = names.id WHERE calls.id = '01TOOL'`).Scan(&col); err != nil || col != "tool" {
		t.Errorf("tool call's kind column = %q, %v", col, err)
	}
	var body string
	if err := rawDB(t, path).QueryRow(`SELECT c.body FROM events d JOIN events c ON c.kind = 'context' AND d.body LIKE '{"v":2,"cx":' || c.seq || ',%'
		WHERE d.call_id = '01RES'`).Scan(&body); err != nil || !strings.Contains(body, `"ck":"resource"`) {
		t.Errorf("resource call's event = %s, %v; want its kind chained", body, err)
	}
	if rep, err := s.Verify(ctx); err != nil || len(rep.Problems) != 0 {
		t.Errorf("verify: %+v, %v", rep, err)
	}
	for kind, want := range map[string]string{"resource": "01RES", "tool": "01TOOL"} {
		recs, err := s.List(ctx, Filter{Kind: kind})
		if err != nil || len(recs) != 1 || recs[0].ID != want {
			t.Errorf("List(kind %s) = %v, %v; want %s alone", kind, recs, err, want)
		}
	}
	rep, err := Replay(ctx, s, kindEvaluator(toolgate.KindResource), Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed != 1 || len(rep.Changes) != 1 || rep.Changes[0].ID != "01RES" {
		t.Errorf("replay denying resources changed %+v, want the resource read alone", rep)
	}
}
