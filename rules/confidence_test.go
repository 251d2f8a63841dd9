package rules

import (
	"context"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// confidenceFile has file-level thresholds and one rule of each kind.
const confidenceFile = `version: 1
default: allow
deny_below: 0.2
review_below: 0.5
rules:
  - name: secrets
    match: 'tool.name == "read_secret"'
    action: deny
  - name: build
    match: 'tool.name == "run_command" && args.?command.orValue("") == "make"'
    action: review
    auto_approve_at: 0.9
    sandbox: workspace-write
  - name: push
    match: 'tool.name == "run_command"'
    action: review
  - name: careful-write
    match: 'tool.name == "write_file"'
    action: allow
    review_below: 0.8
    deny_below: 0.4
  - name: broken
    match: 'tool.name == "broken" && args.missing == 1'
    action: allow
`

func TestConfidenceThresholds(t *testing.T) {
	s := mustParse(t, confidenceFile)
	cases := []struct {
		name   string
		tool   string
		cmd    string
		conf   *float64
		action toolgate.Action
		effect string
		reason string // substring
	}{
		// File-level thresholds apply to the default's decision too.
		{name: "default allow, sure", tool: "ls", conf: conf(0.7), action: toolgate.Allow},
		{name: "default allow, unsure: review", tool: "ls", conf: conf(0.3), action: toolgate.Review, effect: toolgate.ConfidenceTightenedToReview, reason: "below the rule set's review_below 0.50"},
		{name: "default allow, very unsure: deny", tool: "ls", conf: conf(0.1), action: toolgate.Deny, effect: toolgate.ConfidenceTightenedToDeny, reason: "below the rule set's deny_below 0.20"},
		{name: "review_below is exclusive", tool: "ls", conf: conf(0.5), action: toolgate.Allow},
		// Unknown confidence neither tightens nor waives.
		{name: "unknown tightens nothing", tool: "ls", action: toolgate.Allow},
		{name: "out of range counts as unknown", tool: "ls", conf: conf(-0.5), action: toolgate.Allow},
		{name: "unknown never auto-approves", tool: "run_command", cmd: "make", action: toolgate.Review},
		// Deny stays deny, with no effect recorded.
		{name: "deny is not tightened further", tool: "read_secret", conf: conf(0.1), action: toolgate.Deny},
		{name: "deny is not waived by confidence", tool: "read_secret", conf: conf(1), action: toolgate.Deny},
		// Review rules: 0.99 waives only where the rule says so.
		{name: "review without auto_approve_at stays review at 0.99", tool: "run_command", cmd: "git push", conf: conf(0.99), action: toolgate.Review},
		{name: "review with auto_approve_at allows at 0.95", tool: "run_command", cmd: "make", conf: conf(0.95), action: toolgate.Allow, effect: toolgate.ConfidenceAutoApproved, reason: "auto-approved"},
		{name: "review with auto_approve_at below it stays review", tool: "run_command", cmd: "make", conf: conf(0.6), action: toolgate.Review},
		{name: "review is not tightened by review_below", tool: "run_command", cmd: "git push", conf: conf(0.3), action: toolgate.Review},
		{name: "review below deny_below is denied", tool: "run_command", cmd: "git push", conf: conf(0.1), action: toolgate.Deny, effect: toolgate.ConfidenceTightenedToDeny},
		// A rule's own thresholds, higher than the file's, bite first.
		{name: "rule review_below", tool: "write_file", conf: conf(0.7), action: toolgate.Review, effect: toolgate.ConfidenceTightenedToReview, reason: "below this rule's review_below 0.80"},
		{name: "rule deny_below", tool: "write_file", conf: conf(0.3), action: toolgate.Deny, effect: toolgate.ConfidenceTightenedToDeny, reason: "below this rule's deny_below 0.40"},
		{name: "rule thresholds met", tool: "write_file", conf: conf(0.85), action: toolgate.Allow},
		// on_error (review) is tightened by the file's deny_below.
		{name: "on_error tightened", tool: "broken", conf: conf(0.1), action: toolgate.Deny, effect: toolgate.ConfidenceTightenedToDeny},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := toolgate.Call{Tool: tc.tool, Confidence: tc.conf, Args: map[string]any{}}
			if tc.cmd != "" {
				c.Args["command"] = tc.cmd
			}
			d := s.Evaluate(context.Background(), c)
			if d.Action != tc.action || d.ConfidenceEffect != tc.effect {
				t.Fatalf("got %s (effect %q, reason %q), want %s (effect %q)", d.Action, d.ConfidenceEffect, d.Reason, tc.action, tc.effect)
			}
			if !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", d.Reason, tc.reason)
			}
			if d.AutoApproved != (tc.effect == toolgate.ConfidenceAutoApproved) {
				t.Errorf("AutoApproved = %v with effect %q", d.AutoApproved, d.ConfidenceEffect)
			}
			if d.Action == toolgate.Deny && d.Sandbox != "" {
				t.Errorf("a denied call names sandbox %q", d.Sandbox)
			}
		})
	}
}

// A tightened allow keeps the rule's sandbox for when the review approves.
func TestConfidenceTightenedKeepsSandbox(t *testing.T) {
	s := mustParse(t, "version: 1\nreview_below: 0.5\nrules:\n  - {name: a, match: 'true', action: allow, sandbox: read-only}\n")
	d := s.Evaluate(context.Background(), toolgate.Call{Tool: "x", Confidence: conf(0.1)})
	if d.Action != toolgate.Review || d.Sandbox != "read-only" || d.Rule != "a" {
		t.Fatalf("got %+v", d)
	}
}

func TestConfidenceLoadErrors(t *testing.T) {
	for name, tc := range map[string]struct{ file, want string }{
		"file-level auto_approve_at": {
			"version: 1\nauto_approve_at: 0.9\nrules: []\n",
			`f.yaml:2:1: auto_approve_at: is not a file-level setting: the agent states its own confidence`,
		},
		"auto_approve_at without a sandbox": {
			"version: 1\nrules:\n  - {name: a, match: 'true', action: review, auto_approve_at: 0.9}\n",
			`rule "a": auto_approve_at: needs the rule to name the sandbox profile its calls run in`,
		},
		"auto_approve_at with sandbox none": {
			"version: 1\nrules:\n  - {name: a, match: 'true', action: review, auto_approve_at: 0.9, sandbox: none}\n",
			`rule "a": auto_approve_at: cannot go with sandbox: none`,
		},
		"auto_approve_at on an allow rule": {
			"version: 1\nrules:\n  - {name: a, match: 'true', action: allow, auto_approve_at: 0.9, sandbox: read-only}\n",
			`only a review rule can auto-approve`,
		},
		"auto_approve_at under the file's review_below": {
			"version: 1\nreview_below: 0.9\nrules:\n  - {name: a, match: 'true', action: review, auto_approve_at: 0.8, sandbox: read-only}\n",
			`rule "a": auto_approve_at: 0.8 is not above the file's review_below 0.9, so it could never apply`,
		},
		"rule review_below over auto_approve_at": {
			"version: 1\nrules:\n  - {name: a, match: 'true', action: review, auto_approve_at: 0.8, review_below: 0.8, sandbox: read-only}\n",
			`review_below: 0.8 must be below auto_approve_at 0.8`,
		},
		"file threshold out of range": {
			"version: 1\nreview_below: 1.5\nrules: []\n",
			`f.yaml:2:15: review_below: must be a number from 0 to 1, got "1.5"`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestAutoApproveSandboxes(t *testing.T) {
	s := mustParse(t, confidenceFile)
	got := s.AutoApproveSandboxes()
	if len(got) != 1 || !strings.HasPrefix(got["workspace-write"], "test.yaml:") || !strings.HasSuffix(got["workspace-write"], "(rule build)") {
		t.Fatalf("AutoApproveSandboxes = %v", got)
	}
}
