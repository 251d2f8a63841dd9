package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/toolgatetest"
)

var heldReviewID = regexp.MustCompile(`review ([0-9A-Z]{26}) is waiting`)

// TestServeClientTimeoutGrant: an agent whose client stops waiting gets
// "pending" at the hold instead of a call cut off; the reviewer answers
// later; the agent's retry of the same call runs, once, on the grant, and
// the log says by whose approval. A revoked grant runs nothing.
func TestServeClientTimeoutGrant(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  hold: 1s\n  channels: [cli]\n")
	c, _, _ := startStdio(t, cfg)
	args := map[string]any{"text": "needs approval"}

	res, err := callTool(t.Context(), c, "up__echo", args, "")
	if err != nil {
		t.Fatal(err)
	}
	text := resultText(res)
	m := heldReviewID.FindStringSubmatch(text)
	if !res.IsError || m == nil || !strings.Contains(text, "same arguments runs once") || strings.Contains(text, "review approve") {
		t.Fatalf("first call: isError %v: %s", res.IsError, text)
	}
	reviewID := m[1]
	if out := mustCall(t, c, "toolgate__review_status", map[string]any{"review_id": reviewID}); !strings.HasPrefix(out, "pending") {
		t.Fatalf("review_status before an answer: %s", out)
	}
	if res, _ := callTool(t.Context(), c, "toolgate__review_status", map[string]any{"review_id": "01NOSUCHREVIEW0000000000000"}, ""); !res.IsError {
		t.Fatalf("review_status of no review: %s", resultText(res))
	}
	rvCLI(t, nil, "review", "approve", reviewID, "--db", db)
	toolgatetest.EventuallyWithin(t, "the grant", 20*time.Second, func() bool {
		return strings.Contains(rvCLI(t, nil, "grants", "list", "--db", db), reviewID)
	})
	if out := mustCall(t, c, "toolgate__review_status", map[string]any{"review_id": reviewID, "wait_seconds": 10}); !strings.Contains(out, "retry the same call") {
		t.Fatalf("review_status after approval: %s", out)
	}

	// A different call is not covered.
	if res, _ := callTool(t.Context(), c, "up__echo", map[string]any{"text": "something else"}, ""); !res.IsError {
		t.Fatalf("a call with other arguments ran on the grant: %s", resultText(res))
	}
	// The retry runs, on the grant.
	res, err = callTool(t.Context(), c, "up__echo", args, "")
	if err != nil || res.IsError || resultText(res) != "needs approval" {
		t.Fatalf("the retry: %v %s", err, resultText(res))
	}
	var grants []audit.Grant
	if err := json.Unmarshal([]byte(rvCLI(t, nil, "grants", "list", "--all", "--db", db, "--output", "json")), &grants); err != nil || len(grants) != 1 {
		t.Fatalf("grants: %+v %v", grants, err)
	}
	g := grants[0]
	if g.Uses != 1 || g.ReviewID != reviewID || !strings.HasPrefix(g.Approver, "cli:") {
		t.Fatalf("grant after use: %+v", g)
	}
	var ran *audit.Record
	for _, r := range records(t, db) {
		if r.Review != nil && r.Review.Channel == toolgate.ChannelGrant {
			ran = r
		}
		if r.ID == reviewID && r.Status != toolgate.StatusGranted {
			t.Errorf("the held call is %s, want granted", r.Status)
		}
	}
	if ran == nil || ran.Status != toolgate.StatusOK || !strings.Contains(ran.Review.Reason, "via grant "+g.ID+" of review "+reviewID) {
		t.Fatalf("the row of the call that ran: %+v", ran)
	}
	// Replayed against rules that allow echo, the call that ran on the
	// grant is a change that says whose approval it ran on.
	allow := filepath.Join(t.TempDir(), "allow.yaml")
	if err := os.WriteFile(allow, []byte("version: 1\ndefault: allow\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var rep audit.ReplayReport
	if err := json.Unmarshal([]byte(rvCLI(t, nil, "audit", "replay", "--rules", allow, "--db", db, "--output", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ch := range rep.Changes {
		found = found || ch.ID == ran.ID && strings.Contains(ch.Grant, g.ID)
	}
	if !found {
		t.Errorf("replay does not show the call that ran on grant %s: %+v", g.ID, rep.Changes)
	}
	// Once only.
	if res, _ := callTool(t.Context(), c, "up__echo", args, ""); !res.IsError {
		t.Fatalf("the grant ran a second call: %s", resultText(res))
	}

	// Revoked before use: the retry is reviewed again.
	res, _ = callTool(t.Context(), c, "up__echo", map[string]any{"text": "revoked"}, "")
	m = heldReviewID.FindStringSubmatch(resultText(res))
	if m == nil {
		t.Fatalf("second held call: %s", resultText(res))
	}
	rvCLI(t, nil, "review", "approve", m[1], "--db", db)
	var gid string
	toolgatetest.EventuallyWithin(t, "the second grant", 20*time.Second, func() bool {
		var gs []audit.Grant
		_ = json.Unmarshal([]byte(rvCLI(t, nil, "grants", "list", "--db", db, "--output", "json")), &gs)
		if len(gs) == 1 {
			gid = gs[0].ID
		}
		return gid != ""
	})
	rvCLI(t, nil, "grants", "revoke", gid, "--db", db)
	if res, _ := callTool(t.Context(), c, "up__echo", map[string]any{"text": "revoked"}, ""); !res.IsError {
		t.Fatalf("a revoked grant ran the call: %s", resultText(res))
	}
	// Replay lists both grants with their uses and the revocation, and
	// flags the reviews the new rules would not ask for.
	rep = audit.ReplayReport{}
	if err := json.Unmarshal([]byte(rvCLI(t, nil, "audit", "replay", "--rules", allow, "--db", db, "--output", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Grants) != 2 {
		t.Fatalf("replay grants: %+v", rep.Grants)
	}
	used, revoked := rep.Grants[0], rep.Grants[1]
	if used.ID != g.ID || used.Uses != 1 || used.RevokedAt != nil || revoked.ID != gid || revoked.Uses != 0 || revoked.RevokedAt == nil || revoked.RevokedBy == "" {
		t.Errorf("replay grants: used %+v, revoked %+v", used, revoked)
	}
	for _, gr := range rep.Grants {
		if gr.OldAction != "review" || gr.NewAction != "allow" || !gr.Changed {
			t.Errorf("grant %s: reviewed call decided %s then, %s now, changed %v", gr.ID, gr.OldAction, gr.NewAction, gr.Changed)
		}
	}
	if out := rvCLI(t, nil, "audit", "replay", "--rules", allow, "--db", db); !strings.Contains(out, "GRANTS") || !strings.Contains(out, gid) || !strings.Contains(out, "by ") {
		t.Errorf("replay text lacks the grants: %s", out)
	}
	var v struct {
		OK     bool               `json:"ok"`
		Report audit.VerifyReport `json:"report"`
	}
	if err := json.Unmarshal([]byte(rvCLI(t, nil, "audit", "verify", "--db", db, "--output", "json")), &v); err != nil || !v.OK || v.Report.Events == 0 {
		t.Fatalf("audit verify: %+v %v", v, err)
	}
}

// TestServePromptGrantRunsNoToolCall attacks, as an agent over HTTP, an
// upstream whose prompt and tool are both named record: under rules that
// review everything, it gets the prompt up__record reviewed and approved,
// then calls the tool up__record in the same session with the same
// arguments. The tool call neither waits on the prompt's review nor runs
// on its grant: it is reviewed on its own, and the file the tool would
// write is not written. The reviewer is shown which kind each review is.
// A tool call's own approval still runs the retried tool call. (Before
// grants matched the kind, the tool call ran on the prompt's grant.)
func TestServePromptGrantRunsNoToolCall(t *testing.T) {
	dir := t.TempDir()
	rules := writeFile(t, dir, "rules.yaml", "version: 1\ndefault: review\nrules: []\n")
	db := filepath.Join(dir, "audit.db")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up:\n    command: %q\n    args: [--prompts, 'record,echo']\n"+
		"workspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\nreview: {timeout: 60s, hold: 1s, channels: [cli]}\n",
		upstreamBin, rules, db))
	const token = "agent-token"
	c := idClient(t, startHTTP(t, cfg, "--auth-token", token), token)
	pwned := filepath.Join(dir, "PWNED")
	args := map[string]any{"file": pwned, "id": "written-by-tool-record"}

	getRecord := func() (string, error) {
		return getPrompt(t, c, "up__record", map[string]string{"file": pwned, "id": "written-by-tool-record"})
	}
	// toolHeld calls the tool and returns the review it is held on.
	toolHeld := func(when string) string {
		t.Helper()
		res, err := callTool(t.Context(), c, "up__record", args, "")
		if err != nil {
			t.Fatalf("tool call %s: %v", when, err)
		}
		m := heldReviewID.FindStringSubmatch(resultText(res))
		if !res.IsError || m == nil {
			t.Fatalf("tool call %s: isError %v: %s", when, res.IsError, resultText(res))
		}
		if _, err := os.Stat(pwned); !os.IsNotExist(err) {
			t.Fatalf("tool call %s wrote %s (%v)", when, pwned, err)
		}
		return m[1]
	}

	_, err := getRecord()
	m := heldReviewID.FindStringSubmatch(fmt.Sprint(err))
	if m == nil {
		t.Fatalf("prompts/get under review: %v", err)
	}
	promptReview := m[1]
	if out := rvCLI(t, nil, "review", "list", "--db", db); !kindShown(out, promptReview, "prompt") {
		t.Errorf("review list does not show the review is of a prompt:\n%s", out)
	}
	// Before anyone answers: the tool call does not wait on the prompt's review.
	toolReview := toolHeld("while the prompt's review is pending")
	if toolReview == promptReview {
		t.Fatalf("the tool call waits on the prompt's review %s", promptReview)
	}
	if out := rvCLI(t, nil, "review", "approve", promptReview, "--db", db); !strings.Contains(out, "prompt up__record") {
		t.Errorf("review approve does not say it approved a prompt: %s", out)
	}
	toolgatetest.EventuallyWithin(t, "the prompt's grant", 20*time.Second, func() bool {
		return strings.Contains(rvCLI(t, nil, "grants", "list", "--db", db), promptReview)
	})
	// On the prompt's grant: the tool call is still held, on its own review.
	if id := toolHeld("after the prompt's approval"); id != toolReview {
		t.Fatalf("the tool call is held on review %s, want its own %s", id, toolReview)
	}
	if text, err := getRecord(); err != nil || !strings.Contains(text, "record from upstream") {
		t.Fatalf("the prompt's retry on its grant: %q, %v", text, err)
	}

	if out := rvCLI(t, nil, "review", "approve", toolReview, "--db", db); !strings.Contains(out, "tool up__record") {
		t.Errorf("review approve does not say it approved a tool call: %s", out)
	}
	toolgatetest.EventuallyWithin(t, "the tool call's grant", 20*time.Second, func() bool {
		return strings.Contains(rvCLI(t, nil, "grants", "list", "--db", db), toolReview)
	})
	res, err := callTool(t.Context(), c, "up__record", args, "")
	if err != nil || res.IsError {
		t.Fatalf("the tool call's retry on its grant: %v %s", err, resultText(res))
	}
	if b, err := os.ReadFile(pwned); err != nil || string(b) != "written-by-tool-record\n" {
		t.Fatalf("the approved tool call wrote %q, %v", b, err)
	}
	for _, r := range records(t, db) {
		if r.Review == nil || r.Review.Channel != toolgate.ChannelGrant || r.Outcome == nil {
			continue
		}
		want := promptReview
		if r.KindName() == toolgate.KindTool {
			want = toolReview
		}
		if !strings.Contains(r.Review.Reason, "of review "+want) {
			t.Errorf("a %s ran on %q, want on review %s", r.KindName(), r.Review.Reason, want)
		}
	}
}

// kindShown reports whether review list's table shows review id's kind.
func kindShown(table, id, kind string) bool {
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == id {
			return f[2] == kind
		}
	}
	return false
}
