package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

// TestReport checks the series buckets and the drift test on a log with
// known counts: rule "grew" matches 4% of the calls of the previous week
// and 20% of this week's (flagged), "steady" the same share in both,
// "rare" goes from 1 call to 3 (a 3x ratio, but under DriftMinCalls).
func TestReport(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "a.db"), Options{})
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	n := 0
	add := func(at time.Time, rule string, action toolgate.Action, count int) {
		for range count {
			rec := Record{Entry: Entry{ID: fmt.Sprintf("01REPORT%018d", n), ReceivedAt: at, Server: "s", Tool: "t",
				Rule: rule, Action: action, RulesVersion: "v1"}, Status: toolgate.StatusOK}
			if action == toolgate.Review {
				wait := time.Duration(10+n%3*10) * time.Second
				rec.Review = &Review{Approved: true, Reviewer: "r", Channel: "web", DecidedAt: at.Add(wait), TimeToDecision: wait}
			}
			n++
			if err := json.NewEncoder(&buf).Encode(rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	week := 7 * 24 * time.Hour
	prev, cur := now.Add(-week-time.Hour), now.Add(-2*time.Hour) // one bucket each
	add(prev, "grew", toolgate.Review, 4)
	add(prev, "steady", toolgate.Allow, 50)
	add(prev, "rare", toolgate.Deny, 1)
	add(prev, "other", toolgate.Allow, 45)
	add(cur, "grew", toolgate.Review, 20)
	add(cur, "steady", toolgate.Allow, 50)
	add(cur, "rare", toolgate.Deny, 3)
	add(cur, "other", toolgate.Allow, 27)
	if _, err := s.Import(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	r, err := s.Report(ctx, Filter{Since: now.Add(-week)}, BucketDay, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Calls != 100 || len(r.Series) != 1 || r.Series[0].Calls != 100 || r.Series[0].Review != 20 ||
		!r.Series[0].Start.Equal(cur.Truncate(24*time.Hour)) || r.Series[0].TimeToApproval.N != 20 {
		t.Errorf("window: calls %d, series %+v", r.Calls, r.Series)
	}
	if r.EscalationRate != 0.2 || r.Reviews.TimeToApproval != r.Series[0].TimeToApproval {
		t.Errorf("escalation %v; time to approval %+v vs series %+v", r.EscalationRate, r.Reviews.TimeToApproval, r.Series[0].TimeToApproval)
	}
	got := map[string]Drift{}
	for _, d := range r.Drift {
		got[d.Rule] = d
	}
	for rule, want := range map[string]bool{"grew": true, "steady": false, "rare": false, "other": false} {
		if d, ok := got[rule]; !ok || d.Flagged != want {
			t.Errorf("drift of %s: %+v, want flagged %v", rule, d, want)
		}
	}
	if d := got["grew"]; d.Ratio != 5 || d.Calls != 20 || d.PrevCalls != 4 || r.Drift[0].Rule != "grew" {
		t.Errorf("grew: %+v (flagged first: %s)", d, r.Drift[0].Rule)
	}
	if r, err := s.Report(ctx, Filter{}, BucketHour, now); err != nil || r.Drift != nil || len(r.Series) != 2 || r.Calls != 200 {
		t.Errorf("no since: drift %v, series %d, calls %d, %v", r.Drift, len(r.Series), r.Calls, err)
	}
	if _, err := s.Report(ctx, Filter{}, time.Minute, now); err == nil {
		t.Error("a one-minute bucket was accepted")
	}
}
