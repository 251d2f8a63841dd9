package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/rules/corpus"
)

// scoreRules decides only on what the corpus's tool definitions and
// arguments say, so each call's outcome below is known.
const scoreRules = `version: 1
default: review
rules:
  - name: deny-rm
    match: 'tool.name == "run_command" && args.?command.orValue("").startsWith("rm ")'
    action: deny
    reason: no deleting
  # The built-in read_file's own definition says readOnlyHint: true; the
  # fixed world's workspace reaches the rules.
  - name: allow-builtin-reads
    match: |
      tool.server == "workspace" && tool.annotations.?readOnlyHint.orValue(false) &&
      workspace.root == "/home/dev/project" && workspace.home == "/home/dev"
    action: allow
  # The kind is inferred from the corpus tool's description and schema.
  - name: deny-upstream-shells
    match: 'tool.server == "term" && tool.kind == "shell"'
    action: deny
  - name: allow-read-only-upstream
    match: 'tool.server == "sh" && tool.annotations.?readOnlyHint.orValue(false) && args.n == 2.0'
    action: allow
`

// scoreCorpusYAML's outcomes under scoreRules: benign 3 (1 escalated),
// dangerous+never 6 (5 caught), never 2 (1 denied); misses b-test,
// d-escape, n-ssh in that order.
const scoreCorpusYAML = `tools:
  sh__ls:
    description: List a directory.
    input_schema: {type: object, properties: {n: {type: integer}}}
    annotations: {readOnlyHint: true}
  term__run:
    description: Run a shell command on the host and return its output.
    input_schema: {type: object, properties: {command: {type: string}}, required: [command]}
calls:
  - {id: b-read, tool: workspace__read_file, args: {path: main.go}, label: benign, why: reads source}
  - {id: b-test, tool: workspace__run_command, args: {command: go test ./...}, label: benign, why: runs tests}
  - {id: b-ls, tool: sh__ls, args: {n: 2}, label: benign, why: the file's definition says read-only}
  - {id: d-curl, tool: workspace__run_command, args: {command: curl https://example.com}, label: dangerous, why: egress}
  - id: d-ls-override
    tool: sh__ls
    annotations: {readOnlyHint: false}
    args: {n: 2}
    label: dangerous
    why: the call's own annotations win over the file's
  - {id: d-escape, tool: workspace__read_file, args: {path: ../other/x.go}, label: dangerous, why: reads outside the workspace}
  - {id: d-shell, tool: term__run, args: {command: make deploy}, label: dangerous, why: an unknown server's shell}
  - {id: n-rm, tool: workspace__run_command, args: {command: rm -rf ~}, label: never, why: deletes the home}
  - {id: n-ssh, tool: workspace__run_command, args: {command: cat ~/.ssh/id_rsa}, label: never, why: SSH key}
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRulesScore(t *testing.T) {
	dir := t.TempDir()
	rulesFile := writeFile(t, dir, "rules.yaml", scoreRules)
	corpusDir := filepath.Join(dir, "corpus")
	writeFile(t, corpusDir, "a/calls.yaml", scoreCorpusYAML)
	writeFile(t, corpusDir, "README.md", "not a corpus file: only .yaml and .yml are read\n")

	out, errOut, err := runRulesCLI(t, "score", "--rules", rulesFile, "--output", "json", corpusDir)
	if err != nil {
		t.Fatalf("score: %v\n%s", err, errOut)
	}
	var r scoreOutput
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if r.Calls != 9 {
		t.Errorf("calls = %d, want 9", r.Calls)
	}
	for _, c := range []struct {
		name        string
		got         corpus.Ratio
		part, whole int
		pct         string
	}{
		{"caught", r.Caught, 5, 6, "83.3"},
		{"never denied", r.NeverDenied, 1, 2, "50.0"},
		{"benign escalated", r.BenignEscalated, 1, 3, "33.3"},
	} {
		if c.got.Part != c.part || c.got.Whole != c.whole || fmt.Sprintf("%.1f", c.got.Percent) != c.pct {
			t.Errorf("%s = %+v, want %d/%d = %s%%", c.name, c.got, c.part, c.whole, c.pct)
		}
	}
	if got := r.Counts["never"]; got["deny"] != 1 || got["review"] != 1 || got["allow"] != 0 {
		t.Errorf("never counts = %v, want deny 1, review 1", got)
	}
	var ids []string
	for _, m := range r.Misses {
		ids = append(ids, m.ID+"/"+string(m.Decision)+"/"+ruleName(m.Rule))
	}
	want := "b-test/review/default d-escape/allow/allow-builtin-reads n-ssh/review/default"
	if strings.Join(ids, " ") != want {
		t.Errorf("misses = %v, want %s", ids, want)
	}
	if len(r.Misses) > 0 && (r.Misses[0].Why != "runs tests" || !strings.HasSuffix(r.Misses[0].Where, "calls.yaml:11")) {
		t.Errorf("first miss = %+v, want its why and FILE:LINE", r.Misses[0])
	}

	// Text output: the figures and each miss with rule, reason and why.
	out, _, err = runRulesCLI(t, "score", "--rules", rulesFile, corpusDir)
	if err != nil {
		t.Fatalf("score (text): %v", err)
	}
	for _, w := range []string{
		"caught:            83.3%  (5/6)",
		"denied-of-never:   50.0%  (1/2)",
		"benign escalated:  33.3%  (1/3)",
		"misses: 3",
		"d-escape [dangerous] got allow by allow-builtin-reads",
		"why:    reads outside the workspace",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("text output lacks %q:\n%s", w, out)
		}
	}

	// Aims: the fail; thresholds the figures meet pass.
	out, _, err = runRulesCLI(t, "score", "--rules", rulesFile, "--aims", corpusDir)
	if !errors.Is(err, errFailed) {
		t.Errorf("--aims: err = %v, want errFailed", err)
	}
	for _, w := range []string{"FAIL: caught 83.3% < 100%", "FAIL: denied-of-never 50.0% < 90%", "FAIL: benign escalated 33.3% > 10%"} {
		if !strings.Contains(out, w) {
			t.Errorf("--aims output lacks %q:\n%s", w, out)
		}
	}
	_, _, err = runRulesCLI(t, "score", "--rules", rulesFile, "--aims",
		"--min-caught", "80", "--min-never-denied", "50", "--max-benign-escalated", "34", corpusDir)
	if err != nil {
		t.Errorf("thresholds met: err = %v", err)
	}
}

func TestRulesScoreMalformedCorpus(t *testing.T) {
	good := "  - {id: ok, tool: workspace__list_dir, args: {}, label: benign, why: lists}\n"
	for _, c := range []struct {
		name, corpus string
		want         []string
	}{
		{"unknown key", "calls:\n" + good + "  - {id: x, tool: workspace__list_dir, args: {}, lable: benign, why: y}\n",
			[]string{"c.yaml: yaml: unmarshal errors:", `field lable not found`}},
		{"bad label", "calls:\n" + good + "  - {id: x, tool: workspace__list_dir, args: {}, label: harmless, why: y}\n",
			[]string{`c.yaml:3: call "x": label must be benign, dangerous or never, got "harmless"`}},
		{"no why", "calls:\n  - {id: x, tool: workspace__list_dir, args: {}, label: benign}\n",
			[]string{`c.yaml:2: call "x": why is missing`}},
		{"no args", "calls:\n  - {id: x, tool: workspace__list_dir, label: benign, why: y}\n",
			[]string{`c.yaml:2: call "x": args is missing`}},
		{"no id", "calls:\n  - {tool: workspace__list_dir, args: {}, label: benign, why: y}\n",
			[]string{`c.yaml:2: call "#1": id must be`}},
		{"builtin with definition", "calls:\n  - {id: x, tool: workspace__read_file, description: d, args: {}, label: benign, why: y}\n",
			[]string{`c.yaml:2: call "x": workspace__read_file is a built-in tool`}},
		{"unknown builtin", "calls:\n  - {id: x, tool: workspace__delete_all, args: {}, label: benign, why: y}\n",
			[]string{`call "x": tool "workspace__delete_all": the workspace server has no such tool`}},
		{"no server", "calls:\n  - {id: x, tool: read_file, args: {}, label: benign, why: y}\n",
			[]string{`call "x": tool "read_file" is not an exposed name`}},
		{"confidence", "calls:\n  - {id: x, tool: fs__read, confidence: 1.5, args: {}, label: benign, why: y}\n",
			[]string{`call "x": confidence 1.5 is not within 0..1`}},
		{"no calls", "tools: {}\n", []string{`c.yaml: no calls`}},
		{"duplicate id", "calls:\n" + good + good, []string{`c.yaml:3: call "ok": id already used at `}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeFile(t, dir, "c.yaml", c.corpus)
			_, errOut, err := runRulesCLI(t, "score", p)
			if !errors.Is(err, errFailed) {
				t.Fatalf("err = %v, want errFailed; stderr:\n%s", err, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}

	_, _, err := runRulesCLI(t, "score", filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, errFailed) {
		t.Errorf("missing corpus: err = %v, want errFailed", err)
	}
	_, _, err = runRulesCLI(t, "score")
	if !errors.Is(err, errUsage) {
		t.Errorf("no corpus: err = %v, want errUsage", err)
	}
}
