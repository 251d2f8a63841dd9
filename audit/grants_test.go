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
	"github.com/toolgate/toolgate/audit/pgtest"
)

// TestGrantLifecycle: an approval that arrives after the call stopped
// waiting becomes a grant; the same call (same arguments, session, rules)
// uses it once; another call does not; a revoked grant is not used; all of
// it is chained and the log verifies.
func TestGrantLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "audit.db"), Options{})
	d := testDecision(toolgate.Review)
	begin := func(id string, n int) {
		t.Helper()
		if err := s.Begin(ctx, testCall(id, n), d); err != nil {
			t.Fatal(err)
		}
	}
	begin("01G0", 0)
	if _, err := s.IssueGrant(ctx, "01G0", ScopeOnce, time.Hour); err == nil {
		t.Fatal("a grant was issued for a review nobody approved")
	}
	if ok, err := s.SubmitVerdict(ctx, "01G0", toolgate.Verdict{Approved: true, Reviewer: "alice", Channel: "slack"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	g, err := s.IssueGrant(ctx, "01G0", ScopeOnce, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get(ctx, "01G0"); r.Status != toolgate.StatusGranted {
		t.Fatalf("the held call is %s, want granted", r.Status)
	}

	begin("01G1", 1) // other arguments
	if _, ok, err := s.UseGrant(ctx, testCall("01G1", 1), d); ok || err != nil {
		t.Fatalf("a call with other arguments used the grant: %v %v", ok, err)
	}
	begin("01G2", 0) // the same call, retried
	v, ok, err := s.UseGrant(ctx, testCall("01G2", 0), d)
	if !ok || err != nil || !v.Approved || v.Channel != toolgate.ChannelGrant || !strings.Contains(v.Reason, g.ID) || !strings.Contains(v.Reason, "01G0") {
		t.Fatalf("the retry: %+v %v %v", v, ok, err)
	}
	if err := s.Resolve(ctx, "01G2", v); err != nil {
		t.Fatal(err)
	}
	begin("01G3", 0) // the same call again: the grant was for one use
	if _, ok, _ := s.UseGrant(ctx, testCall("01G3", 0), d); ok {
		t.Fatal("a once grant was used twice")
	}

	begin("01G4", 4)
	if ok, _ := s.SubmitVerdict(ctx, "01G4", toolgate.Verdict{Approved: true, Reviewer: "bob", Channel: "cli"}); !ok {
		t.Fatal("verdict")
	}
	g4, err := s.IssueGrant(ctx, "01G4", ScopeOnce, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeGrant(ctx, g4.ID, "cli:root"); err != nil {
		t.Fatal(err)
	}
	begin("01G5", 4)
	if _, ok, _ := s.UseGrant(ctx, testCall("01G5", 4), d); ok {
		t.Fatal("a revoked grant was used")
	}
	if gs, _ := s.Grants(ctx, false); len(gs) != 0 {
		t.Fatalf("usable grants = %+v", gs)
	}
	if gs, _ := s.Grants(ctx, true); len(gs) != 2 || gs[0].RevokedBy != "cli:root" || gs[1].Uses != 1 {
		t.Fatalf("all grants = %+v", gs)
	}
	if rep, err := s.Verify(ctx); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestSessionGrant: an approval for the session covers later calls of the
// same tool in the same session, whatever their arguments, and nothing in
// another session; the approved call itself keeps its status.
func TestSessionGrant(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "audit.db"), Options{})
	d := testDecision(toolgate.Review)
	if err := s.Begin(ctx, testCall("01S0", 0), d); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.SubmitVerdict(ctx, "01S0", toolgate.Verdict{Approved: true, Reviewer: "alice", Channel: "slack"}); !ok {
		t.Fatal("verdict")
	}
	if _, err := s.GrantSession(ctx, "01S0", time.Hour); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get(ctx, "01S0"); r.Status != toolgate.StatusPending {
		t.Fatalf("the approved call became %s", r.Status)
	}
	for i, n := range []int{7, 8} {
		id := fmt.Sprintf("01S%d", i+1)
		if err := s.Begin(ctx, testCall(id, n), d); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.UseGrant(ctx, testCall(id, n), d); !ok || err != nil {
			t.Fatalf("call %d of the session: %v %v", i, ok, err)
		}
	}
	other := testCall("01S9", 7)
	other.SessionID = "another-session"
	if err := s.Begin(ctx, other, d); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.UseGrant(ctx, other, d); ok {
		t.Fatal("a session grant covered another session")
	}
	if rep, err := s.Verify(ctx); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestTwoPersonReview: a rule wanting two approvers from Slack only: the
// terminal is refused, one approval counts without deciding, the same
// approver twice is refused, the second approver decides; one denial is
// enough to deny.
func TestTwoPersonReview(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "audit.db"), Options{})
	d := testDecision(toolgate.Review)
	d.Review = toolgate.ReviewPolicy{Approvals: 2, Channels: []string{"slack"}}
	for i, id := range []string{"01P1", "01P2"} {
		if err := s.Begin(ctx, testCall(id, i), d); err != nil {
			t.Fatal(err)
		}
	}
	submit := func(id, who, ch string, approve bool) (bool, error) {
		return s.SubmitVerdict(ctx, id, toolgate.Verdict{Approved: approve, Reviewer: who, Channel: ch})
	}
	if ok, err := submit("01P1", "cli:root", "cli", true); ok || !errors.Is(err, toolgate.ErrChannelRefused) {
		t.Fatalf("terminal answer: %v %v", ok, err)
	}
	if ok, err := submit("01P1", "U1", "slack", true); ok || !errors.Is(err, toolgate.ErrMoreApprovals) {
		t.Fatalf("first approval: %v %v", ok, err)
	}
	if _, decided, _ := s.ReviewVerdict(ctx, "01P1"); decided {
		t.Fatal("one approval decided a two-person review")
	}
	if ok, err := submit("01P1", "U1", "slack", true); ok || !errors.Is(err, toolgate.ErrSameApprover) {
		t.Fatalf("same approver again: %v %v", ok, err)
	}
	if ok, err := submit("01P1", "U2", "slack", true); !ok || err != nil {
		t.Fatalf("second approval: %v %v", ok, err)
	}
	if v, decided, _ := s.ReviewVerdict(ctx, "01P1"); !decided || !v.Approved || v.Reviewer != "U1 + U2" {
		t.Fatalf("verdict: %+v %v", v, decided)
	}
	if ok, err := submit("01P2", "U1", "slack", false); !ok || err != nil {
		t.Fatalf("a denial: %v %v", ok, err)
	}
	if rep, err := s.Verify(ctx); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestTwoPersonReviewOnePerson: one person approving through two channels
// (a Slack user mapped to rita, then rita in the web UI, in other case) is
// one approver: the second approval is refused and the review waits for
// someone else.
func TestTwoPersonReviewOnePerson(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "audit.db"), Options{})
	d := testDecision(toolgate.Review)
	d.Review = toolgate.ReviewPolicy{Approvals: 2}
	if err := s.Begin(ctx, testCall("01R1", 0), d); err != nil {
		t.Fatal(err)
	}
	submit := func(who, user, ch string) (bool, error) {
		return s.SubmitVerdict(ctx, "01R1", toolgate.Verdict{Approved: true, Reviewer: who, ReviewerUser: user, Channel: ch})
	}
	if ok, err := submit("U0RITA", "rita", "slack"); ok || !errors.Is(err, toolgate.ErrMoreApprovals) {
		t.Fatalf("rita in Slack: %v %v", ok, err)
	}
	if ok, err := submit("web:rita", "Rita", "web"); ok || !errors.Is(err, toolgate.ErrSameApprover) || !strings.Contains(err.Error(), "already approved by rita") {
		t.Fatalf("rita in the web UI: %v %v", ok, err)
	}
	if _, decided, _ := s.ReviewVerdict(ctx, "01R1"); decided {
		t.Fatal("one person's two approvals decided a two-person review")
	}
	if ok, err := submit("web:sam", "sam", "web"); !ok || err != nil {
		t.Fatalf("sam: %v %v", ok, err)
	}
	if v, decided, _ := s.ReviewVerdict(ctx, "01R1"); !decided || v.Reviewer != "U0RITA + web:sam" {
		t.Fatalf("verdict: %+v %v", v, decided)
	}
}

// TestTwoPersonReviewNotTheAgentsUser: an answer in the agent's own client
// (elicitation) is the requester's side: its approval does not count
// toward a review wanting two approvers, whoever it names; its denial
// still ends the review.
func TestTwoPersonReviewNotTheAgentsUser(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "audit.db"), Options{})
	d := testDecision(toolgate.Review)
	d.Review = toolgate.ReviewPolicy{Approvals: 2}
	for i, id := range []string{"01E1", "01E2"} {
		if err := s.Begin(ctx, testCall(id, i), d); err != nil {
			t.Fatal(err)
		}
	}
	ok, err := s.SubmitVerdict(ctx, "01E1", toolgate.Verdict{Approved: true, Reviewer: "elicitation:session:stdio-1", ReviewerUser: "eli", Channel: toolgate.ChannelElicitation})
	if ok || !errors.Is(err, toolgate.ErrChannelRefused) {
		t.Fatalf("the agent's user approves: %v %v", ok, err)
	}
	for _, who := range []string{"cli:rita", "cli:sam"} {
		ok, err = s.SubmitVerdict(ctx, "01E1", toolgate.Verdict{Approved: true, Reviewer: who, Channel: toolgate.ChannelCLI})
	}
	if v, decided, _ := s.ReviewVerdict(ctx, "01E1"); !ok || err != nil || !decided || v.Reviewer != "cli:rita + cli:sam" {
		t.Fatalf("verdict: %+v %v (%v %v)", v, decided, ok, err)
	}
	if ok, err := s.SubmitVerdict(ctx, "01E2", toolgate.Verdict{Reviewer: "elicitation:session:stdio-1", Channel: toolgate.ChannelElicitation}); !ok || err != nil {
		t.Fatalf("the agent's user denies: %v %v", ok, err)
	}
}

// TestGrantBindsSecrets: arguments that differ only in a secret the log
// redacts are different calls to a grant: approving one token does not
// approve another.
func TestGrantBindsSecrets(t *testing.T) {
	ctx := context.Background()
	mask := func(a map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range a {
			out[k] = v
		}
		out["token"] = "[REDACTED]"
		return out
	}
	s := openTest(t, filepath.Join(t.TempDir(), "audit.db"), Options{Redact: mask})
	d := testDecision(toolgate.Review)
	call := func(id, token string) toolgate.Call {
		c := testCall(id, 0)
		c.Args["token"] = token
		return c
	}
	if err := s.Begin(ctx, call("01T0", "ghp_aaa"), d); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.SubmitVerdict(ctx, "01T0", toolgate.Verdict{Approved: true, Reviewer: "alice", Channel: "slack"}); !ok {
		t.Fatal("verdict")
	}
	if _, err := s.IssueGrant(ctx, "01T0", ScopeOnce, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx, call("01T1", "ghp_bbb"), d); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.UseGrant(ctx, call("01T1", "ghp_bbb"), d); ok {
		t.Fatal("the grant for one token ran a call with another")
	}
	if err := s.Begin(ctx, call("01T2", "ghp_aaa"), d); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.UseGrant(ctx, call("01T2", "ghp_aaa"), d); !ok {
		t.Fatal("the grant did not run the approved call")
	}
}

// TestGrantBindsTheDecision: an approval covers a retry only where the
// same rule decided it, to run in the same sandbox. The agent can change
// what decides its call (the confidence it states, the model it names),
// and a retry another rule decides (another sandbox, another review
// policy) is reviewed afresh, as is a retry attaching to a pending review
// of another rule's.
func TestGrantBindsTheDecision(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "audit.db"), Options{})
	ruleA := testDecision(toolgate.Review)
	ruleA.Rule, ruleA.Sandbox = "confident-review", "read-only"
	ruleB := ruleA
	ruleB.Rule, ruleB.Sandbox = "unsure-two-approvals", "workspace-write"
	begin := func(id string, d toolgate.Decision) {
		t.Helper()
		if err := s.Begin(ctx, testCall(id, 0), d); err != nil {
			t.Fatal(err)
		}
	}
	begin("01B0", ruleA)
	begin("01B1", ruleB)
	if id, ok, err := s.PendingFor(ctx, testCall("01B1", 0), ruleB); ok || err != nil {
		t.Fatalf("a call another rule decided attaches to pending review %s: %v %v", id, ok, err)
	}
	if ok, err := s.SubmitVerdict(ctx, "01B0", toolgate.Verdict{Approved: true, Reviewer: "alice", Channel: "slack"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := s.IssueGrant(ctx, "01B0", ScopeOnce, time.Hour); err != nil {
		t.Fatal(err)
	}
	begin("01B2", ruleB)
	if _, ok, err := s.UseGrant(ctx, testCall("01B2", 0), ruleB); ok || err != nil {
		t.Fatalf("a retry decided by another rule, to run in another sandbox, used the grant: %v %v", ok, err)
	}
	begin("01B3", ruleA)
	if _, ok, err := s.UseGrant(ctx, testCall("01B3", 0), ruleA); !ok || err != nil {
		t.Fatalf("the retry decided by the same rule: %v %v", ok, err)
	}
}

// TestGrantBindsMeta: the _meta passed upstream is part of what an
// approval covers: a retry with other _meta (an upstream may act on its
// own keys, say dry_run) is not covered and does not attach to the
// pending review.
func TestGrantBindsMeta(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "audit.db"), Options{})
	d := testDecision(toolgate.Review)
	call := func(id string, meta map[string]any) toolgate.Call {
		c := testCall(id, 0)
		c.Meta = meta
		return c
	}
	dry, wet := map[string]any{"dry_run": true}, map[string]any{"dry_run": false, "target": "prod"}
	for _, c := range []toolgate.Call{call("01M0", dry), call("01M1", wet)} {
		if err := s.Begin(ctx, c, d); err != nil {
			t.Fatal(err)
		}
	}
	if id, ok, err := s.PendingFor(ctx, call("01M1", wet), d); ok || err != nil {
		t.Fatalf("a call with other _meta attaches to pending review %s: %v %v", id, ok, err)
	}
	if ok, err := s.SubmitVerdict(ctx, "01M0", toolgate.Verdict{Approved: true, Reviewer: "alice", Channel: "slack"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := s.IssueGrant(ctx, "01M0", ScopeOnce, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		meta map[string]any
		ok   bool
	}{{"01M2", wet, false}, {"01M3", nil, false}, {"01M4", dry, true}} {
		if err := s.Begin(ctx, call(c.id, c.meta), d); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.UseGrant(ctx, call(c.id, c.meta), d); ok != c.ok || err != nil {
			t.Errorf("retry with _meta %v: covered %v (%v), want %v", c.meta, ok, err, c.ok)
		}
	}
}

// TestGrantBindsTheKind: a prompt (or resource, completion) may share a
// tool's server, name and arguments, and an approval of one is no
// approval of the other: a tool call does not wait on a prompt's pending
// review nor run on its grant, once or for the session, and a grant
// issued before grants recorded a kind covers no call at all.
func TestGrantBindsTheKind(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	if onPostgres() {
		path = pgtest.DSN(t)
	}
	s := openTest(t, path, Options{})
	d := testDecision(toolgate.Review)
	call := func(id, kind string) toolgate.Call {
		c := testCall(id, 0)
		c.Kind = kind
		return c
	}
	begin := func(c toolgate.Call) {
		t.Helper()
		if err := s.Begin(ctx, c, d); err != nil {
			t.Fatal(err)
		}
	}
	approve := func(id string) {
		t.Helper()
		if ok, err := s.SubmitVerdict(ctx, id, toolgate.Verdict{Approved: true, Reviewer: "alice", Channel: "cli"}); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	// grantOnce approves c, begun and pending, with a once grant.
	grantOnce := func(c toolgate.Call) *Grant {
		t.Helper()
		approve(c.ID)
		g, err := s.IssueGrant(ctx, c.ID, ScopeOnce, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if g.Kind != c.KindName() {
			t.Fatalf("the grant of a %s has kind %q", c.KindName(), g.Kind)
		}
		return g
	}
	covered := func(c toolgate.Call) bool {
		t.Helper()
		begin(c)
		_, ok, err := s.UseGrant(ctx, c, d)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	prompt := call("01K0", toolgate.KindPrompt)
	begin(prompt)
	tool := call("01K1", "")
	begin(tool)
	if id, ok, err := s.PendingFor(ctx, tool, d); ok || err != nil {
		t.Fatalf("a tool call waits on the pending review %s of a prompt: %v %v", id, ok, err)
	}
	grantOnce(prompt)
	for _, c := range []toolgate.Call{call("01K2", ""), call("01K3", toolgate.KindTool), call("01K4", toolgate.KindResource)} {
		if covered(c) {
			t.Fatalf("a call of kind %q ran on a prompt's grant", c.KindName())
		}
	}
	if !covered(call("01K5", toolgate.KindPrompt)) {
		t.Fatal("the prompt's retry did not use its grant")
	}

	other := call("01K6", toolgate.KindPrompt) // not 01K5's retry, still pending here
	other.Args["n"] = float64(6)
	begin(other)
	approve("01K6")
	if _, err := s.GrantSession(ctx, "01K6", time.Hour); err != nil {
		t.Fatal(err)
	}
	if covered(call("01K7", "")) {
		t.Fatal("a tool call ran on a prompt's session grant")
	}

	// A tool call's grant still runs the tool call, and no completion; with
	// the kind '' of a grant issued before grants had one, it runs nothing.
	// Arguments of their own: 01K1, the same call, is still pending.
	call8 := func(id, kind string) toolgate.Call {
		c := call(id, kind)
		c.Args["n"] = float64(8)
		return c
	}
	tool = call8("01K8", "")
	begin(tool)
	tg := grantOnce(tool)
	if covered(call8("01KB", toolgate.KindCompletion)) {
		t.Fatal("a completion ran on a tool call's grant")
	}
	if _, err := rawDB(t, path).Exec(`UPDATE grants SET kind = '' WHERE id = ?`, tg.ID); err != nil {
		t.Fatal(err)
	}
	if covered(call8("01K9", "")) {
		t.Fatal("a grant with no kind ran a tool call")
	}
	if _, err := rawDB(t, path).Exec(`UPDATE grants SET kind = 'tool' WHERE id = ?`, tg.ID); err != nil {
		t.Fatal(err)
	}
	if !covered(call8("01KA", toolgate.KindTool)) {
		t.Fatal("the tool call's retry did not use its grant")
	}
	if rep, err := s.Verify(ctx); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}
