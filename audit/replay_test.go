package audit

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/rules"
)

const fixtureDir = "../testdata/audit"

// importFixture loads testdata/audit/calls.jsonl into a fresh DB.
func importFixture(t testing.TB) *Store {
	t.Helper()
	s := openTest(t, "", Options{})
	f, err := os.Open(filepath.Join(fixtureDir, "calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := s.Import(context.Background(), f)
	if err != nil || n != 12 {
		t.Fatalf("Import = %d, %v", n, err)
	}
	return s
}

func loadRules(t testing.TB, name string) *rules.Set {
	t.Helper()
	set, err := rules.Load(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestImportExportRoundTrip(t *testing.T) {
	s := importFixture(t)
	ctx := context.Background()
	rep, err := s.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify after Import = %+v, %v", rep, err)
	}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, s.Records(ctx, Filter{})); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, "", Options{})
	if n, err := s2.Import(ctx, bytes.NewReader(buf.Bytes())); err != nil || n != 12 {
		t.Fatalf("re-Import = %d, %v", n, err)
	}
	var buf2 bytes.Buffer
	if err := WriteJSONL(&buf2, s2.Records(ctx, Filter{})); err != nil {
		t.Fatal(err)
	}
	if buf.String() != buf2.String() {
		t.Fatalf("export -> import -> export differs:\n%s\n---\n%s", buf.String(), buf2.String())
	}
	r, err := s.Get(ctx, "01JNQX0003AAAAAAAAAAAAAAAA")
	if err != nil || r.Status != toolgate.StatusOK || !r.Review.Approved || r.Review.TimeToDecision != 30*time.Second || r.Outcome.ResultSize != 120 {
		t.Fatalf("Get = %+v, %v", r, err)
	}
	var csvBuf bytes.Buffer
	if err := WriteCSV(&csvBuf, s.Records(ctx, Filter{Tool: "write_file"})); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(csvBuf.String()), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "id,received_at,") || !strings.Contains(lines[1], "U-alice") {
		t.Fatalf("CSV:\n%s", csvBuf.String())
	}
}

func TestListFilters(t *testing.T) {
	s := importFixture(t)
	ctx := context.Background()
	at := func(m int) time.Time { return time.Date(2026, 3, 1, 10, m, 0, 0, time.UTC) }
	all, err := s.List(ctx, Filter{})
	if err != nil || len(all) < 10 {
		t.Fatalf("List = %d rows, %v", len(all), err)
	}
	cases := []struct {
		f    Filter
		want int
	}{
		{Filter{}, 12},
		{Filter{Tool: "write_file"}, 5},
		{Filter{Action: "deny"}, 4},
		{Filter{Rule: "review-writes", Action: "review"}, 5},
		{Filter{Model: "gpt-x"}, 1},
		{Filter{Client: "cursor"}, 1},
		{Filter{Session: "s-2"}, 1},
		{Filter{Server: "workspace", Since: at(5), Until: at(8)}, 3},
		{Filter{Limit: 2}, 2},
		{Filter{After: all[9].Seq}, 2},
		{Filter{Server: "nope"}, 0},
	}
	for _, tc := range cases {
		recs, err := s.List(ctx, tc.f)
		if err != nil || len(recs) != tc.want {
			t.Errorf("List(%+v) = %d rows, %v; want %d", tc.f, len(recs), err, tc.want)
		}
	}
	recs, _ := s.List(ctx, Filter{Limit: 2})
	if len(recs) == 2 && (recs[0].ID != "01JNQX0011AAAAAAAAAAAAAAAA" || recs[1].ID != "01JNQX0012AAAAAAAAAAAAAAAA") {
		t.Errorf("Limit keeps the newest, oldest first: got %s, %s", recs[0].ID, recs[1].ID)
	}
}

func TestStats(t *testing.T) {
	s := importFixture(t)
	st, err := s.Stats(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Calls != 12 || st.Allow != 3 || st.Deny != 4 || st.Review != 5 {
		t.Errorf("counts = %+v", st)
	}
	if st.Reviews.Approved != 2 || st.Reviews.Denied != 1 || st.Reviews.Unanswered != 1 || st.Reviews.Pending != 1 {
		t.Errorf("reviews = %+v", st.Reviews)
	}
	// Human decisions took 30s, 50s and 12s; approvals 30s and 12s.
	if p := st.Reviews.TimeToDecision; p.N != 3 || p.P50 != 30*time.Second || p.P99 != 50*time.Second {
		t.Errorf("time to decision = %+v", p)
	}
	if p := st.Reviews.TimeToApproval; p.N != 2 || p.P50 != 12*time.Second || p.P90 != 30*time.Second {
		t.Errorf("time to approval = %+v", p)
	}
	if len(st.ByTool) == 0 || st.ByTool[0].Key != "workspace/write_file" || st.ByTool[0].Calls != 5 {
		t.Errorf("by tool = %+v", st.ByTool)
	}
	if st.Status[toolgate.StatusRefused] != 6 || st.Status[toolgate.StatusOK] != 3 {
		t.Errorf("status = %v", st.Status)
	}
	if d := st.DenyRate; d < 0.333 || d > 0.334 {
		t.Errorf("deny rate = %v", d)
	}
}

func TestReplayFixture(t *testing.T) {
	s := importFixture(t)
	ctx := context.Background()

	// The log was recorded under rules-old.yaml: replaying it against them
	// changes nothing (the recorded context is rebuilt faithfully).
	rep, err := Replay(ctx, s, loadRules(t, "rules-old.yaml"), Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 12 || rep.Changed != 0 {
		t.Fatalf("replay against the recording rules: %d of %d changed: %+v", rep.Changed, rep.Total, rep.Changes)
	}

	var calls []int
	rep, err = Replay(ctx, s, loadRules(t, "rules-new.yaml"), Filter{}, func(done, total int) { calls = append(calls, done, total) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"0003 review/review-writes -> allow/allow-tmp-writes",
		"0005 deny/ -> review/review-shell",
		"0006 deny/ -> review/review-shell",
		"0007 allow/allow-reads -> review/review-untrusted-model",
		"0008 review/review-writes -> deny/deny-unsure-writes",
		"0010 review/review-writes -> allow/allow-tmp-writes",
		"0011 review/review-writes -> allow/allow-tmp-writes",
	}
	var got []string
	for _, c := range rep.Changes {
		got = append(got, fmt.Sprintf("%s %s/%s -> %s/%s", c.ID[6:10], c.OldAction, c.OldRule, c.NewAction, c.NewRule))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Total != 12 || rep.Changed != 7 || rep.RulesLabel != "fixture-new" || !strings.HasPrefix(rep.RulesVersion, "sha256:") {
		t.Errorf("report = total %d changed %d label %q version %q", rep.Total, rep.Changed, rep.RulesLabel, rep.RulesVersion)
	}
	if len(rep.Transitions) == 0 || rep.Transitions[0] != (Transition{toolgate.Review, "review-writes", toolgate.Allow, "allow-tmp-writes", 3}) {
		t.Errorf("transitions = %+v", rep.Transitions)
	}
	byRule := map[string]RuleSummary{}
	for _, r := range rep.Rules {
		byRule[r.Rule] = r
	}
	if r := byRule["review-writes"]; r.Before != 5 || r.After != 1 || r.Lost != 4 || r.Gained != 0 {
		t.Errorf("review-writes summary = %+v", r)
	}
	if r := byRule[""]; r.Before != 3 || r.After != 1 || r.Lost != 2 {
		t.Errorf("default summary = %+v", r)
	}
	if len(calls) < 4 || calls[len(calls)-2] != 12 || calls[len(calls)-1] != 12 {
		t.Errorf("progress calls = %v", calls)
	}

	// Filters narrow the replay.
	rep, err = Replay(ctx, s, loadRules(t, "rules-new.yaml"), Filter{Tool: "run_command"}, nil)
	if err != nil || rep.Total != 2 || rep.Changed != 2 {
		t.Errorf("filtered replay = %+v, %v", rep, err)
	}
}

// stubEvaluator decides by tool name, for replay tests that do not depend
// on the rules package.
type stubEvaluator map[string]toolgate.Action

func (s stubEvaluator) Evaluate(_ context.Context, c toolgate.Call) toolgate.Decision {
	if a, ok := s[c.Tool]; ok {
		return toolgate.Decision{Action: a, Rule: "stub-" + c.Tool, Version: "stub"}
	}
	return toolgate.Decision{Action: toolgate.Deny, Version: "stub"}
}

// seedRows writes n synthetic calls directly (bulk transactions), decided
// by old (nil: allow by a rule named after the tool).
func seedRows(t testing.TB, s *Store, n int, old Evaluator) {
	t.Helper()
	ctx := context.Background()
	toolsN := []string{"read_file", "write_file", "run_command", "list_dir"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; {
		var batch []*entryRow
		for ; i < n && len(batch) < 5000; i++ {
			c := testCall(fmt.Sprintf("01S%012d", i), i)
			c.Tool = toolsN[i%len(toolsN)]
			c.Time = base.Add(time.Duration(i) * time.Millisecond)
			d := toolgate.Decision{Action: toolgate.Allow, Rule: "stub-" + c.Tool, Version: "old"}
			if old != nil {
				d = old.Evaluate(ctx, c)
			}
			r, err := s.newEntry(c, d)
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, r)
		}
		err := s.write(ctx, func(w *wtx) error {
			for _, r := range batch {
				if err := w.begin(r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestReplayStub(t *testing.T) {
	s := openTest(t, "", Options{})
	seedRows(t, s, 1000, nil)
	ev := stubEvaluator{"read_file": toolgate.Allow, "write_file": toolgate.Review, "run_command": toolgate.Allow, "list_dir": toolgate.Allow}
	rep, err := Replay(context.Background(), s, ev, Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 1000 || rep.Changed != 250 || rep.Changes[0].ID != "01S000000000001" {
		t.Fatalf("total %d changed %d first %+v", rep.Total, rep.Changed, rep.Changes[0])
	}
	for i := 1; i < len(rep.Changes); i++ {
		if rep.Changes[i].ReceivedAt.Before(rep.Changes[i-1].ReceivedAt) {
			t.Fatal("changes are not in time order")
		}
	}
}

var replayRows = flag.Int("replay.rows", 0, "BenchmarkReplay: replay this many rows instead of 10k and 100k (e.g. 1000000)")

// BenchmarkReplay re-evaluates N rows and reports rows/s: rows=N are
// recorded under the fixture's old rules and replayed with its new rules
// (real CEL; half of the decisions change; every call distinct, so no two
// share a decision), synthetic=N is the synthetic agent log (perf_test.go,
// calls repeat as they do) replayed with the default pack.
// -replay.rows=1000000 runs the million-row case.
func BenchmarkReplay(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if *replayRows > 0 {
		sizes = []int{*replayRows}
	}
	run := func(b *testing.B, s *Store, set *rules.Set, n int) {
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			rep, err := Replay(context.Background(), s, set.Memo(100_000), Filter{}, nil)
			if err != nil || rep.Total != n {
				b.Fatal(rep.Total, err)
			}
		}
		b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rows/s")
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			s := openTest(b, filepath.Join(b.TempDir(), "a.db"), Options{})
			seedRows(b, s, n, loadRules(b, "rules-old.yaml")) // half the calls change
			run(b, s, loadRules(b, "rules-new.yaml"), n)
		})
		b.Run(fmt.Sprintf("synthetic=%d", n), func(b *testing.B) {
			run(b, importSynth(b, n), rules.Default(), n)
		})
	}
}

// TestReplayMemoKeepsReport replays the synthetic log (repeating calls,
// several principals and confidences) against three rule sets, with and
// without the memo: the reports must be identical.
func TestReplayMemoKeepsReport(t *testing.T) {
	const n = 3000
	s := importSynth(t, n)
	ctx := context.Background()
	who, err := rules.Parse("who.yaml", []byte(`version: 1
default: allow
rules:
  - name: bob
    match: 'principal.user == "bob" && "dev" in principal.groups && principal.auth == "token"'
    action: deny
  - name: unsure
    match: 'confidence.orValue(1.0) < 0.5'
    action: review
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []*rules.Set{rules.Default(), loadRules(t, "rules-new.yaml"), who} {
		memo, err := Replay(ctx, s, set.Memo(100_000), Filter{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := Replay(ctx, s, set, Filter{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		memo.Elapsed, plain.Elapsed = 0, 0
		if !reflect.DeepEqual(memo, plain) {
			t.Errorf("%s: the memo changes the report: %d changed (%+v) against %d (%+v)", set.Name(), memo.Changed, memo.Rules, plain.Changed, plain.Rules)
		}
		if memo.Total != n {
			t.Errorf("%s: replayed %d of %d", set.Name(), memo.Total, n)
		}
		if set == who {
			// Replay sees each call's principal: a quarter are bob's.
			after := 0
			for _, r := range memo.Rules {
				if r.Rule == "bob" {
					after = r.After
				}
			}
			if after != n/4 {
				t.Errorf("rule bob decides %d calls, want %d", after, n/4)
			}
		}
	}
}
