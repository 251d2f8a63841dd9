package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/rules"
)

func rulesetLoad(src string) RulesetLoad {
	return RulesetLoad{Version: RulesetVersion([]byte(src)), Label: "l-" + src[:2], File: "/etc/rules.yaml", Source: []byte(src)}
}

// decide records one call decided by version at the clock's next tick.
func decide(t *testing.T, s *Store, id, version string, a toolgate.Action) {
	t.Helper()
	c := testCall(id, 1)
	c.Time = s.o.Now()
	d := testDecision(a)
	d.Version = version
	if err := s.Begin(context.Background(), c, d); err != nil {
		t.Fatal(err)
	}
}

func TestRulesetHistory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	clk := newClock()
	s := openTest(t, path, Options{Now: clk.Now, Owner: "srv-1"})
	v1, v2 := rulesetLoad("v1 source"), rulesetLoad("v2 source")

	if err := s.RecordRulesetLoad(ctx, v1); err != nil {
		t.Fatal(err)
	}
	decide(t, s, "01A", v1.Version, toolgate.Allow)
	decide(t, s, "01B", v1.Version, toolgate.Deny)
	if err := s.RecordRulesetLoad(ctx, v2); err != nil {
		t.Fatal(err)
	}
	decide(t, s, "01B2", v1.Version, toolgate.Allow) // decided by v1 just after the swap
	decide(t, s, "01C", v2.Version, toolgate.Review)
	if err := s.RecordRulesetRollback(ctx, RulesetRollback{Version: v1.Version, File: "/etc/rules.yaml", From: v2.Version, By: "cli:alice"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordRulesetLoad(ctx, v1); err != nil { // the reload the rollback causes
		t.Fatal(err)
	}
	decide(t, s, "01D", v1.Version, toolgate.Allow)

	h, err := s.RulesetHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		kind, version   string
		allow, deny, rv int
		to, inForce     bool
	}
	want := []row{
		{"load", v1.Version, 2, 1, 0, true, false},
		{"load", v2.Version, 0, 0, 1, true, false},
		{"rollback", v1.Version, 0, 0, 0, false, false},
		{"load", v1.Version, 1, 0, 0, false, true},
	}
	if len(h) != len(want) {
		t.Fatalf("history has %d entries, want %d: %+v", len(h), len(want), h)
	}
	for i, w := range want {
		p := h[i]
		got := row{p.Kind, p.Version, p.Allow, p.Deny, p.Review, p.To != nil, p.InForce}
		if got != w {
			t.Errorf("entry %d = %+v, want %+v", i, got, w)
		}
	}
	if h[0].To == nil || !h[0].To.Equal(h[1].From) || h[0].Label != "l-v1" || h[0].Owner != "srv-1" {
		t.Errorf("first load: %+v", h[0])
	}
	if h[2].By != "cli:alice" || h[2].Previous != v2.Version {
		t.Errorf("rollback: %+v", h[2])
	}

	// The source is stored once per version and found by a prefix.
	rs, err := s.Ruleset(ctx, strings.TrimPrefix(v1.Version, "sha256:")[:6])
	if err != nil || string(rs.Source) != "v1 source" || rs.Version != v1.Version {
		t.Fatalf("Ruleset = %+v, %v", rs, err)
	}
	if _, err := s.Ruleset(ctx, "sha256:ffffffffffff"); !errors.Is(err, ErrNoRuleset) {
		t.Errorf("unknown version: %v", err)
	}
	if _, err := s.Ruleset(ctx, "%"); !errors.Is(err, ErrNoRuleset) {
		t.Errorf("a LIKE wildcard must not match: %v", err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify: %v %+v", err, rep.Problems)
	}

	// A tampered source, or a deleted one, is caught.
	db := rawDB(t, path)
	if _, err := db.Exec(`UPDATE rulesets SET source = ? WHERE version = ?`, []byte("v1 evil"), v1.Version); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx)
	if err != nil || rep.OK() || !strings.Contains(rep.Problems[0].What, "does not hash to the chained sha256") {
		t.Fatalf("Verify after tampering: %v %+v", err, rep.Problems)
	}
	if _, err := s.Ruleset(ctx, v1.Version); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Errorf("Ruleset of a tampered source: %v", err)
	}
	if _, err := db.Exec(`DELETE FROM rulesets WHERE version = ?`, v2.Version); err != nil {
		t.Fatal(err)
	}
	rep, _ = s.Verify(ctx)
	if !strings.Contains(strings.Join(problemTexts(rep), "\n"), "source is missing") {
		t.Errorf("Verify after deleting a source: %+v", rep.Problems)
	}
}

func problemTexts(rep VerifyReport) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestRulesetLoadRefusesMismatch(t *testing.T) {
	s := openTest(t, "", Options{})
	l := rulesetLoad("v1 source")
	l.Version = "sha256:000000000000"
	if err := s.RecordRulesetLoad(context.Background(), l); err == nil {
		t.Fatal("a source whose version does not match was stored")
	}
	if err := s.RecordRulesetRollback(context.Background(), RulesetRollback{Version: "sha256:000000000000"}); !errors.Is(err, ErrNoRuleset) {
		t.Fatalf("rollback to an unknown version: %v", err)
	}
}

// A server that is gone holds its version until the next load by any.
func TestRulesetHistoryGoneOwner(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	clk := newClock()
	a := openTest(t, path, Options{Now: clk.Now, Owner: "srv-a"})
	if err := a.RecordRulesetLoad(ctx, rulesetLoad("v1 source")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := openTest(t, path, Options{Now: clk.Now, Owner: "srv-b", LeaseTTL: time.Hour})
	if err := b.RecordRulesetLoad(ctx, rulesetLoad("v2 source")); err != nil {
		t.Fatal(err)
	}
	h, err := b.RulesetHistory(ctx)
	if err != nil || len(h) != 2 {
		t.Fatalf("history: %+v, %v", h, err)
	}
	if h[0].To == nil || !h[0].To.Equal(h[1].From) || h[0].InForce {
		t.Errorf("gone server's load: %+v", h[0])
	}
	if h[1].To != nil || !h[1].InForce {
		t.Errorf("live server's load: %+v", h[1])
	}
}

func TestConfidenceEffectRecorded(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{})
	for id, effect := range map[string]string{"01N": "", "01R": toolgate.ConfidenceTightenedToReview, "01A": toolgate.ConfidenceAutoApproved} {
		d := testDecision(toolgate.Review)
		d.ConfidenceEffect = effect
		if err := s.Begin(ctx, testCall(id, 1), d); err != nil {
			t.Fatal(err)
		}
		r, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := effect
		if want == "" {
			want = toolgate.ConfidenceNone
		}
		if r.ConfidenceEffect != want || r.Decision().ConfidenceEffect != effect || r.Confidence == nil || *r.Confidence != 0.5 {
			t.Errorf("%s: recorded %q (decision %q), want %q", id, r.ConfidenceEffect, r.Decision().ConfidenceEffect, want)
		}
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify: %v %+v", err, rep.Problems)
	}
}

// Replay re-decides the recorded claims: a review_below added to the rules
// tightens the allows whose claim was low, and the report says so.
func TestReplayConfidence(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{})
	old, err := rules.Parse("old.yaml", []byte("version: 1\ndefault: allow\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i, conf := range []float64{0.2, 0.9} {
		c := testCall(fmt.Sprintf("01C%d", i), i)
		c.Confidence = &conf
		if err := s.Begin(ctx, c, old.Evaluate(ctx, c)); err != nil {
			t.Fatal(err)
		}
	}
	set, err := rules.Parse("new.yaml", []byte("version: 1\ndefault: allow\nreview_below: 0.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Replay(ctx, s, set, Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed != 1 || rep.Confidence[toolgate.ConfidenceTightenedToReview] != 1 || len(rep.Confidence) != 1 {
		t.Fatalf("replay: changed %d, confidence %v", rep.Changed, rep.Confidence)
	}
	ch := rep.Changes[0]
	if ch.ID != "01C0" || ch.NewAction != toolgate.Review || ch.NewConfidence != toolgate.ConfidenceTightenedToReview || ch.OldConfidence != "" {
		t.Errorf("change: %+v", ch)
	}
}
