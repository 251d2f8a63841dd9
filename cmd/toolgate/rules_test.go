package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/rules"
)

// runRulesCLI runs `toolgate rules ARGS...` in-process from the repo root's
// point of view (fixtures are in ../../testdata/rules).
func runRulesCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), append([]string{"rules"}, args...), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

const fixtures = "../../testdata/rules/"

func TestRulesCheck(t *testing.T) {
	out, _, err := runRulesCLI(t, "check", fixtures+"good.yaml", "@default")
	if err != nil {
		t.Fatalf("check good: %v", err)
	}
	for _, want := range []string{"good.yaml: ok: 4 rules, version sha256:", `label "example"`, "@default: ok: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, errOut, err := runRulesCLI(t, "check", fixtures+"good.yaml", fixtures+"bad.yaml")
	if !errors.Is(err, errFailed) || exitCode(err, &bytes.Buffer{}) != 1 {
		t.Fatalf("check bad: err %v", err)
	}
	if !strings.Contains(out, "good.yaml: ok") {
		t.Errorf("good file not reported ok alongside the bad one:\n%s", out)
	}
	want := []string{
		fixtures + `bad.yaml:3:11: on_error: must be review or deny: an evaluation error never allows a call`,
		fixtures + `bad.yaml:6:17: rule "typo": match: undeclared reference to 'tool.nmae' (did you mean 'tool.name'?)`,
		fixtures + `bad.yaml:11:42: rule "wrong-type": match: found no matching overload for '_>_' applied to '(int, string)'`,
		fixtures + `bad.yaml:14:24: rule "confidence-misuse": match: found no matching overload for '_<_'`,
		fixtures + `bad.yaml:16:5: rule "confidence-misuse": unknown key "colour"`,
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d error lines, want %d:\n%s", len(lines), len(want), errOut)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d:\n got  %s\n want %s", i, lines[i], w)
		}
	}
}

func TestRulesTest(t *testing.T) {
	out, _, err := runRulesCLI(t, "test", fixtures+"good.yaml", fixtures+"cases.yaml")
	if err != nil {
		t.Fatalf("test: %v\n%s", err, out)
	}
	if strings.Count(out, "PASS: ") != 7 || !strings.Contains(out, "PASS: 6/6") || strings.Contains(out, "FAIL") {
		t.Errorf("unexpected output:\n%s", out)
	}

	out, _, err = runRulesCLI(t, "test", fixtures+"good.yaml", fixtures+"failing_cases.yaml")
	if !errors.Is(err, errFailed) {
		t.Fatalf("failing cases: err %v", err)
	}
	for _, want := range []string{
		"PASS: passes (" + fixtures + "failing_cases.yaml:2)",
		"FAIL: wrong expectation (" + fixtures + "failing_cases.yaml:5)",
		`action is review, want allow; rule is rule "shell-review", want rule "reads"`,
		"PASS: 1/2", "FAIL: 1/2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, _, err = runRulesCLI(t, "test", "-q", "@default", "../../rules/testdata/default_cases.yaml")
	if err != nil || strings.Contains(out, "FAIL") || !strings.Contains(out, "PASS: ") {
		t.Errorf("default pack cases: %v\n%s", err, out)
	}
}

func TestRulesEval(t *testing.T) {
	out, _, err := runRulesCLI(t, "eval", fixtures+"good.yaml", "--call",
		`{"tool":"write_file","server":"workspace","args":{"path":"a","content":"a fairly long piece of content"}}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"action:  review\n",
		"rule:    (none: the default applied)\n",
		`version: sha256:`, "(example)",
		"shadow:  try-deny-big-writes would deny: large write\n",
		"  try-deny-big-writes  matched (shadow)\n",
		"(3 other rules not evaluated",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, _, err = runRulesCLI(t, "eval", "--json", "--call", `{"tool":"run_command","args":{"command":"make"},"confidence":0.95}`, fixtures+"good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Decision toolgate.Decision `json:"decision"`
		Steps    []rules.Step      `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if got.Decision.Action != toolgate.Allow || !got.Decision.AutoApproved || got.Decision.Rule != "shell-review" || len(got.Steps) == 0 {
		t.Errorf("json decision: %+v", got)
	}

	if _, _, err := runRulesCLI(t, "eval", fixtures+"good.yaml", "--call", `{"tool": "x", "bogus": 1}`); !errors.Is(err, errUsage) {
		t.Errorf("unknown call key: %v", err)
	}
}

func TestRulesDefaultAndUsage(t *testing.T) {
	out, _, err := runRulesCLI(t, "default")
	if err != nil || !bytes.Equal([]byte(out), rules.DefaultSource()) {
		t.Errorf("default: %v", err)
	}
	for _, args := range [][]string{{}, {"nope"}, {"check"}, {"test", "x"}, {"eval", "x"}} {
		if _, _, err := runRulesCLI(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: err %v, want usage", args, err)
		}
	}
	if _, _, err := runRulesCLI(t, "check", "-h"); err != nil {
		t.Errorf("-h: %v", err)
	}
}
