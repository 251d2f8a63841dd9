package rules

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

const basicFile = `version: 1
label: test
default: review
on_error: review
rules:
  - name: deny-ssh
    match: 'tool.name in ["read_file","read_text_file"] && glob(args.?path.orValue(""), "**/.ssh/**")'
    action: deny
    reason: "reading SSH keys is not allowed"
  - name: shell-review
    match: 'tool.name == "run_command"'
    action: review
    reason_expr: '"shell command: " + args.?command.orValue("")'
    auto_approve_at: 0.9
    deny_below: 0.3
    sandbox: workspace-write
  - name: reads
    match: 'tool.annotations.?readOnlyHint.orValue(false) == true'
    action: allow
    reason: read-only tool
  - name: big-x
    match: 'args.?x.orValue(0.0) > 2.0'
    action: deny
    mode: shadow
  - name: strict-x
    match: 'args.x > 2'
    action: allow
`

func conf(f float64) *float64 { return &f }
func yes() *bool              { b := true; return &b }

func mustParse(t testing.TB, data string) *Set {
	t.Helper()
	s, err := Parse("test.yaml", []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func TestEvaluate(t *testing.T) {
	s := mustParse(t, basicFile)
	ro := toolgate.Annotations{ReadOnly: yes()}
	cases := []struct {
		name   string
		call   toolgate.Call
		action toolgate.Action
		rule   string
		reason string // substring
		auto   bool
		err    string // substring of Decision.Error
		shadow []string
	}{
		{name: "ssh key denied", call: toolgate.Call{Tool: "read_file", Args: map[string]any{"path": "/home/u/.ssh/id_rsa"}}, action: toolgate.Deny, rule: "deny-ssh", reason: "SSH keys"},
		{name: "ordinary read falls to annotation rule", call: toolgate.Call{Tool: "read_file", Annotations: ro, Args: map[string]any{"path": "main.go"}}, action: toolgate.Allow, rule: "reads"},
		{name: "shell reviewed with computed reason", call: toolgate.Call{Tool: "run_command", Args: map[string]any{"command": "make"}}, action: toolgate.Review, rule: "shell-review", reason: "shell command: make"},
		{name: "shell auto-approved at high confidence", call: toolgate.Call{Tool: "run_command", Args: map[string]any{"command": "make"}, Confidence: conf(0.95)}, action: toolgate.Allow, rule: "shell-review", reason: "auto-approved", auto: true},
		{name: "threshold is inclusive", call: toolgate.Call{Tool: "run_command", Confidence: conf(0.9)}, action: toolgate.Allow, rule: "shell-review", auto: true},
		{name: "mid confidence still reviewed", call: toolgate.Call{Tool: "run_command", Confidence: conf(0.5)}, action: toolgate.Review, rule: "shell-review"},
		{name: "low confidence denied", call: toolgate.Call{Tool: "run_command", Confidence: conf(0.1)}, action: toolgate.Deny, rule: "shell-review", reason: "below this rule's deny_below"},
		{name: "bogus confidence is unknown, never auto-approves", call: toolgate.Call{Tool: "run_command", Confidence: conf(7)}, action: toolgate.Review, rule: "shell-review"},
		{name: "missing key is an error and never allows", call: toolgate.Call{Tool: "other"}, action: toolgate.Review, rule: "strict-x", err: "no such key"},
		{name: "enforced match", call: toolgate.Call{Tool: "other", Args: map[string]any{"x": 3}}, action: toolgate.Allow, rule: "strict-x", shadow: []string{"big-x"}},
		{name: "default when nothing matches", call: toolgate.Call{Tool: "other", Args: map[string]any{"x": 1.0}}, action: toolgate.Review, rule: ""},
		{name: "shadow after the winner is still evaluated", call: toolgate.Call{Tool: "read_file", Annotations: ro, Args: map[string]any{"path": "a", "x": 5.0}}, action: toolgate.Allow, rule: "reads", shadow: []string{"big-x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := s.Evaluate(context.Background(), tc.call)
			if d.Action != tc.action || d.Rule != tc.rule {
				t.Fatalf("got %s by %q (%q, err %q), want %s by %q", d.Action, d.Rule, d.Reason, d.Error, tc.action, tc.rule)
			}
			if !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", d.Reason, tc.reason)
			}
			if d.AutoApproved != tc.auto {
				t.Errorf("AutoApproved = %v, want %v", d.AutoApproved, tc.auto)
			}
			if tc.err == "" && d.Error != "" || !strings.Contains(d.Error, tc.err) {
				t.Errorf("Error = %q, want it to contain %q", d.Error, tc.err)
			}
			var sh []string
			for _, r := range d.Shadow {
				sh = append(sh, r.Rule)
			}
			if strings.Join(sh, ",") != strings.Join(tc.shadow, ",") {
				t.Errorf("shadow = %v, want %v", sh, tc.shadow)
			}
			if d.Version != s.Version() || d.Label != "test" || !strings.HasPrefix(d.Version, "sha256:") || len(d.Version) != len("sha256:")+12 {
				t.Errorf("version/label = %q/%q", d.Version, d.Label)
			}
		})
	}
}

func TestEvaluateNilSetDenies(t *testing.T) {
	var s *Set
	if d := s.Evaluate(context.Background(), toolgate.Call{Tool: "x"}); d.Action != toolgate.Deny || d.Error == "" {
		t.Fatalf("nil set: %+v", d)
	}
}

func TestEvaluateCancelledContextNeverAllows(t *testing.T) {
	s := mustParse(t, "version: 1\ndefault: allow\nrules:\n  - {name: a, match: 'true', action: allow}\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := s.Evaluate(ctx, toolgate.Call{Tool: "x"})
	if d.Action != toolgate.Review || !strings.Contains(d.Error, "canceled") {
		t.Fatalf("got %+v", d)
	}
}

func TestOnErrorDeny(t *testing.T) {
	s := mustParse(t, "version: 1\non_error: deny\nrules:\n  - {name: a, match: 'args.path == \"x\"', action: allow}\n")
	d := s.Evaluate(context.Background(), toolgate.Call{Tool: "x"})
	if d.Action != toolgate.Deny || d.Rule != "a" || !strings.Contains(d.Error, `rule "a": match: no such key: path`) {
		t.Fatalf("got %+v", d)
	}
}

func TestReasonExprErrorIsStrict(t *testing.T) {
	s := mustParse(t, `version: 1
on_error: deny
rules:
  - name: a
    match: 'true'
    action: allow
    reason_expr: 'args.why'
`)
	d := s.Evaluate(context.Background(), toolgate.Call{Tool: "x"})
	if d.Action != toolgate.Deny || !strings.Contains(d.Error, "reason_expr") {
		t.Fatalf("got %+v", d)
	}
}

func TestVariables(t *testing.T) {
	when := time.Date(2026, 11, 3, 22, 0, 0, 0, time.UTC)
	c := toolgate.Call{
		Tool: "t", Server: "srv", Name: "srv__t",
		Annotations: toolgate.Annotations{Title: "T", Destructive: yes()},
		Args:        map[string]any{"n": 5, "list": []any{"a", 1.5}, "nested": map[string]any{"k": true}},
		Meta:        map[string]any{"dry_run": false},
		Client:      toolgate.Peer{Name: "cursor", Version: "1.2"},
		Model:       toolgate.Peer{Name: "claude", Version: "4"},
		Confidence:  conf(0.5),
		SessionID:   "s1",
		Time:        when,
	}
	for _, expr := range []string{
		`tool.name == "t" && tool.server == "srv" && tool.exposed == "srv__t"`,
		`tool.annotations.title == "T" && tool.annotations.destructiveHint == true`,
		`!has(tool.annotations.readOnlyHint) && !tool.annotations.?readOnlyHint.orValue(false)`,
		`args.n == 5 && args.n == 5.0 && type(args.n) == double && args.list[1] > 1`,
		`args.nested.k && args.list.size() == 2`,
		`meta.dry_run == false && !has(meta.other)`,
		`client.name == "cursor" && client.version == "1.2" && model.name == "claude" && model.version == "4"`,
		`confidence.hasValue() && confidence.value() == 0.5 && confidence.orValue(0.0) < 0.6`,
		`session.id == "s1"`,
		`now == timestamp("2026-11-03T22:00:00Z") && now.getHours() == 22`,
		`glob("a/b/c.go", "**/*.go") && !glob("a/b/c.go", "*.go") && glob(".env", ["x", "**/.env"])`,
		`path.clean("a/../b/./c") == "b/c" && path.base("/x/y.txt") == "y.txt" && path.ext("y.tar.gz") == ".gz" && path.dir("/x/y") == "/x"`,
		`shell.words("echo 'a b' && ls") == ["echo", "a b", "&&", "ls"]`,
		`shell.commands("sudo rm -rf / ; ls").exists(c, shell.unwrap(c) == ["rm", "-rf", "/"])`,
		`"A".lowerAscii() == "a" && sets.intersects(["a"], ["a", "b"])`,
		`cel.bind(x, 1, x + 1 == 2)`,
	} {
		s := mustParse(t, "version: 1\ndefault: deny\nrules:\n  - name: r\n    match: '"+strings.ReplaceAll(expr, "'", "''")+"'\n    action: allow\n")
		if d := s.Evaluate(context.Background(), c); d.Action != toolgate.Allow {
			t.Errorf("%s: got %s (err %q)", expr, d.Action, d.Error)
		}
	}
}

func TestMetaWithoutOneIsEmpty(t *testing.T) {
	s := mustParse(t, "version: 1\ndefault: deny\nrules:\n  - {name: r, match: 'meta.size() == 0 && !has(meta.dry_run)', action: allow}\n")
	if d := s.Evaluate(context.Background(), toolgate.Call{}); d.Action != toolgate.Allow {
		t.Errorf("a call without _meta: got %+v", d)
	}
}

func TestUnknownConfidence(t *testing.T) {
	s := mustParse(t, "version: 1\ndefault: deny\nrules:\n  - {name: r, match: '!confidence.hasValue()', action: allow}\n")
	for _, c := range []*float64{nil, conf(-1), conf(1.5)} {
		if d := s.Evaluate(context.Background(), toolgate.Call{Confidence: c}); d.Action != toolgate.Allow {
			t.Errorf("confidence %v: want unknown, got %+v", c, d)
		}
	}
}

func TestNowUnsetFailsClosed(t *testing.T) {
	s := mustParse(t, "version: 1\ndefault: allow\nrules:\n  - {name: r, match: 'now.getHours() > 30', action: allow}\n")
	if d := s.Evaluate(context.Background(), toolgate.Call{}); d.Action != toolgate.Review || d.Error == "" {
		t.Fatalf("got %+v", d)
	}
}

func TestCostLimit(t *testing.T) {
	s := mustParse(t, `version: 1
on_error: deny
rules:
  - name: runaway
    match: 'args.l.map(a, args.l.map(b, args.l.map(c, a + b + c))).size() > 0'
    action: allow
`)
	l := make([]any, 200)
	for i := range l {
		l[i] = float64(i)
	}
	d := s.Evaluate(context.Background(), toolgate.Call{Args: map[string]any{"l": l}})
	if d.Action != toolgate.Deny || !strings.Contains(d.Error, "cost limit") {
		t.Fatalf("got %+v", d)
	}
}

func TestParseErrors(t *testing.T) {
	data := `version: 1
default: maybe
rules:
  - name: a
    match: 'tool.nmae == "x"'
    action: allow
  - name: b
    match: "args.?path.orValue(\"\") == 1 && unknownFn()"
    action: deny
    bogus: 1
  - name: a
    match: |
      tool.name == "x" &&
        confidence < 0.3
    action: review
    auto_approve_at: 2
  - name: d
    match: >
      tool.name == "x"
      && glob(args.?p.orValue(""), "[")
    action: review
  - name: e
    match: plain && tool.server == "y"
    action: allow
    reason: x
    reason_expr: '1'
`
	_, err := Parse("f.yaml", []byte(data))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`f.yaml:2:10: default: must be allow, deny or review, got "maybe"`,
		`f.yaml:5:17: rule "a": match: undeclared reference to 'tool.nmae'`,
		`f.yaml:8:55: rule "b": match: undeclared reference to 'unknownFn'`,
		`f.yaml:10:5: rule "b": unknown key "bogus"`,
		`f.yaml:11:5: rule "a": name: duplicate rule name (first used at line 4)`,
		`f.yaml:14:20: rule "a": match: found no matching overload for '_<_' applied to '(optional_type(double), double)' (confidence is optional`,
		`f.yaml:16:22: rule "a": auto_approve_at: must be a number from 0 to 1`,
		`f.yaml:20:36: rule "d": match: bad glob pattern "[": unmatched '['`,
		`f.yaml:22:5: rule "e": reason_expr: give either reason (text) or reason_expr (CEL), not both`,
		`f.yaml:23:12: rule "e": match: undeclared reference to 'plain'`,
		`f.yaml:26:18: rule "e": reason_expr: must be a string expression, but its type is int`,
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(got), len(want), err)
	}
	for i := range min(len(got), len(want)) {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d:\n got  %s\n want %s...", i, got[i], want[i])
		}
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Errorf("errors.As: %+v", pe)
	}
}

func TestLoadTimeChecks(t *testing.T) {
	for expr, want := range map[string]string{
		`args.?p.orValue("").matches("(")`: "invalid matches argument",
		`"x"`:                              "must be a bool expression, but its type is string",
		`1 +`:                              "Syntax error",
		``:                                 "empty expression",
	} {
		_, err := Parse("l.yaml", []byte("version: 1\nrules:\n  - name: r\n    match: '"+expr+"'\n    action: deny\n"))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "l.yaml:4:") {
			t.Errorf("%s: got %v, want an l.yaml:4 error containing %q", expr, err, want)
		}
	}
}

func TestDynResults(t *testing.T) {
	s := mustParse(t, `version: 1
default: allow
rules:
  - name: shadow-err
    match: 'args.missing'
    action: deny
    mode: shadow
  - name: dyn
    match: 'args.?flag.orValue(false)'
    action: allow
    reason_expr: 'args.?why.orValue("no reason")'
`)
	d := s.Evaluate(context.Background(), toolgate.Call{Args: map[string]any{"flag": "yes"}})
	if d.Action != toolgate.Review || !strings.Contains(d.Error, "not bool") {
		t.Errorf("non-bool match: %+v", d)
	}
	if len(d.Shadow) != 1 || d.Shadow[0].Action != toolgate.Review || !strings.Contains(d.Shadow[0].Error, "no such key") {
		t.Errorf("shadow error not recorded: %+v", d.Shadow)
	}
	d = s.Evaluate(context.Background(), toolgate.Call{Args: map[string]any{"flag": true, "why": 3}})
	if d.Action != toolgate.Review || !strings.Contains(d.Error, "not string") {
		t.Errorf("non-string reason: %+v", d)
	}
	d = s.Evaluate(context.Background(), toolgate.Call{Args: map[string]any{"flag": true}})
	if d.Action != toolgate.Allow || d.Reason != "no reason" || d.Error != "" {
		t.Errorf("dyn ok: %+v", d)
	}
}

func TestExplain(t *testing.T) {
	s := mustParse(t, basicFile)
	d, steps, skipped := s.Explain(context.Background(), toolgate.Call{Tool: "run_command", Args: map[string]any{"command": "ls", "x": 9.0}})
	if d.Rule != "shell-review" {
		t.Fatalf("decision %+v", d)
	}
	var got []string
	for _, st := range steps {
		got = append(got, st.Rule+"="+st.Result)
	}
	// deny-ssh is ruled out by the tool-name index; reads and strict-x come after the winner.
	if strings.Join(got, " ") != "shell-review=matched big-x=matched" || skipped != 3 {
		t.Errorf("steps %v, skipped %d", got, skipped)
	}
}

// TestCostLimitPerExpression checks that the cost limit bounds each
// expression alone, not the sum over a call's rules (which share one
// frame): three rules that each spend most of the limit all evaluate.
func TestCostLimitPerExpression(t *testing.T) {
	const match = `args.l.map(a, args.l.map(b, a + b)).size() < 0`
	call := func(n int) toolgate.Call {
		l := make([]any, n)
		for i := range l {
			l[i] = float64(i)
		}
		return toolgate.Call{Tool: "x", Args: map[string]any{"l": l}}
	}
	one := mustParse(t, "version: 1\non_error: deny\ndefault: allow\nrules:\n  - {name: r, match: '"+match+"', action: deny}\n")
	// The largest list one rule evaluates within the limit.
	lo, hi := 1, 2000
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if d := one.Evaluate(context.Background(), call(mid)); d.Error == "" {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo == 2000 {
		t.Fatal("the cost limit never bites")
	}
	three := mustParse(t, "version: 1\non_error: deny\ndefault: allow\nrules:\n"+
		"  - {name: a, match: '"+match+"', action: deny}\n  - {name: b, match: '"+match+"', action: deny}\n  - {name: c, match: '"+match+"', action: deny}\n")
	if d := three.Evaluate(context.Background(), call(lo)); d.Action != toolgate.Allow || d.Error != "" {
		t.Fatalf("three rules within the limit each: %+v", d)
	}
	if d := three.Evaluate(context.Background(), call(lo+1)); d.Action != toolgate.Deny || !strings.Contains(d.Error, "cost limit") {
		t.Fatalf("past the limit: %+v", d)
	}
}

// TestPanicDecidesOnError: a panic while a call is decided gives
// on_error's decision with the panic as its error, not a crash.
func TestPanicDecidesOnError(t *testing.T) {
	s := mustParse(t, "version: 1\ndefault: allow\non_error: review\nrules:\n  - {name: a, match: 'true', action: allow}\n")
	d := func() (d toolgate.Decision) {
		defer s.recoverDecision(&d)
		d.Action = toolgate.Allow
		panic("assignment to entry in nil map")
	}()
	if d.Action != toolgate.Review || !strings.Contains(d.Error, "nil map") {
		t.Errorf("a panicking decision = %+v, want on_error (review) with the panic as its error", d)
	}
}
