package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeSlackSessionGrantFromRule: an "Approve for this session" click
// grants what the review's rule allows, whatever length its value asks
// for (the value comes back from the client and can be forged): on a rule
// without session_grant the click is refused and a plain Approve carrying
// a length grants nothing beyond the call; on a 30m rule, 12h asked is 30m
// granted.
func TestServeSlackSessionGrantFromRule(t *testing.T) {
	fs, c, db, stderr := startSlackRules(t, `  - name: session-ok
    match: 'tool.name == "echo" && args.text == "session"'
    action: review
    session_grant: 30m
  - name: once-only
    match: 'tool.name == "echo"'
    action: review
`, fmt.Sprintf("approvers: [%s]", rvApprover))
	defer func() {
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	}()
	grants := func() []audit.Grant {
		var gs []audit.Grant
		if err := json.Unmarshal([]byte(rvCLI(t, nil, "grants", "list", "--all", "--db", db, "--output", "json")), &gs); err != nil {
			t.Fatal(err)
		}
		return gs
	}
	const forever = "|315360000" // ten years

	call := rvStart(c, t.Context(), "once", "")
	id := rvPostedID(t, fs.WaitPosts(1))
	fs.Click(rvClick(rvApprover, review.ActionApproveSession, id+forever, ""))
	if eph := fs.WaitEphemerals(1); !strings.Contains(eph.Get("text"), "does not allow an approval for the session") {
		t.Errorf("forged session click told: %v", eph)
	}
	if !call.pending() {
		t.Fatalf("a forged session click answered a review whose rule has no session_grant: %s", resultText(call.wait(t)))
	}
	fs.Click(rvClick(rvApprover, review.ActionApprove, id+forever, ""))
	if res := call.wait(t); res.IsError || resultText(res) != "once" {
		t.Fatalf("approved call: %s", resultText(res))
	}
	if gs := grants(); len(gs) != 0 {
		t.Fatalf("grants after approvals on a rule without session_grant: %+v", gs)
	}

	call = rvStart(c, t.Context(), "session", "")
	id = rvPostedID(t, fs.WaitPosts(2))
	fs.Click(rvClick(rvApprover, review.ActionApproveSession, id+"|43200", ""))
	if res := call.wait(t); res.IsError || resultText(res) != "session" {
		t.Fatalf("approved call: %s", resultText(res))
	}
	// The grant is issued just after the verdict that ran the call.
	var gs []audit.Grant
	toolgatetest.EventuallyWithin(t, "the session grant", 20*time.Second, func() bool {
		gs = grants()
		return len(gs) > 0
	})
	if len(gs) != 1 || gs[0].Scope != audit.ScopeSession || gs[0].ExpiresAt.Sub(gs[0].CreatedAt).String() != "30m0s" {
		t.Fatalf("session grant asked 12h on a 30m rule: %+v", gs)
	}
}

// TestServeSlackSessionAfterReload: a session click is checked against
// the rules in force, not the decision the review was asked under: once
// the rules file drops the rule's session_grant (hot reload), the click on
// a review posted before is refused, the review still waits, and a plain
// approval runs the call without a grant.
func TestServeSlackSessionAfterReload(t *testing.T) {
	const rule = `  - name: sess
    match: 'tool.name == "echo"'
    action: review
`
	fs, c, db, stderr := startSlackRules(t, rule+"    session_grant: 30m\n", fmt.Sprintf("approvers: [%s]", rvApprover))
	defer func() {
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	}()
	call := rvStart(c, t.Context(), "first", "")
	id := rvPostedID(t, fs.WaitPosts(1))
	if err := os.WriteFile(filepath.Join(filepath.Dir(db), "rules.yaml"), []byte("version: 1\ndefault: allow\nrules:\n"+rule), 0o600); err != nil {
		t.Fatal(err)
	}
	toolgatetest.EventuallyWithin(t, "the reload", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "rules reloaded") })
	fs.Click(rvClick(rvApprover, review.ActionApproveSession, id+"|1800", ""))
	if eph := fs.WaitEphemerals(1); !strings.Contains(eph.Get("text"), "does not allow an approval for the session") {
		t.Errorf("session click after the session_grant was withdrawn told: %v", eph)
	}
	if !call.pending() {
		t.Fatalf("a session click under a withdrawn session_grant answered the review: %s", resultText(call.wait(t)))
	}
	fs.Click(rvClick(rvApprover, review.ActionApprove, id, ""))
	if res := call.wait(t); res.IsError || resultText(res) != "first" {
		t.Fatalf("approved call: %s", resultText(res))
	}
	if out := rvCLI(t, nil, "grants", "list", "--all", "--db", db, "--output", "json"); strings.Contains(out, id) {
		t.Fatalf("a grant after the session_grant was withdrawn: %s", out)
	}
}
