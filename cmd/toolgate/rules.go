package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/rules"
)

const rulesUsage = `usage:
  toolgate rules check FILE...              type-check rule files; print every error with its position
  toolgate rules test FILE CASES.yaml...    run test cases against a rule file (PASS/FAIL per case)
  toolgate rules eval FILE --call JSON      decide one call and show why
  toolgate rules default                    print the embedded default rule pack
  toolgate rules score [--rules FILE] CORPUS...
                                            decide a labelled corpus of calls; print
                                            caught %, denied-of-never %, benign escalated %
                                            and every miss
  toolgate rules history [--db PATH]        list the rule sets loaded: when in force, decisions
  toolgate rules rollback VERSION [--config FILE]
                                            write a recorded version back to the rules file

FILE may be @default, the embedded default pack. The file format, the CEL
variables and functions, the cases format and the corpus format are in docs/rules.md.`

// runRules dispatches the rules subcommands.
func runRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, rulesUsage)
		return fmt.Errorf("%w: rules: no subcommand given", errUsage)
	}
	switch args[0] {
	case "check":
		return rulesCheck(args[1:], stdout, stderr)
	case "test":
		return rulesTest(ctx, args[1:], stdout, stderr)
	case "eval":
		return rulesEval(ctx, args[1:], stdout, stderr)
	case "score":
		return rulesScore(ctx, args[1:], stdout, stderr)
	case "history", "rollback":
		return runRulesHistory(ctx, args[1:], args[0] == "rollback", osEnv{}, stdout, stderr)
	case "default":
		if len(args) > 1 {
			return fmt.Errorf("%w: rules default takes no arguments", errUsage)
		}
		_, err := stdout.Write(rules.DefaultSource())
		return err
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, rulesUsage)
		return nil
	default:
		fmt.Fprintln(stderr, rulesUsage)
		return fmt.Errorf("%w: rules: unknown subcommand %q", errUsage, args[0])
	}
}

// rulesFlags returns a FlagSet that reports its own usage and errors to stderr.
func rulesFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// rulesArgs parses flags that may come before or after positional
// arguments ("eval FILE --call JSON"); a bad flag is a usage error.
func rulesArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return pos, err
}

// printRuleErrors prints every error of a failed load, one per line.
func printRuleErrors(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(w, line)
	}
}

func rulesCheck(args []string, stdout, stderr io.Writer) error {
	fs := rulesFlags("rules check", "toolgate rules check FILE...", stderr)
	files, err := rulesArgs(fs, args)
	if err != nil {
		return rulesHelp(err)
	}
	if len(files) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: rules check needs at least one FILE", errUsage)
	}
	failed := false
	for _, f := range files {
		s, err := rules.Load(f)
		if err != nil {
			printRuleErrors(stderr, err)
			failed = true
			continue
		}
		fmt.Fprintf(stdout, "%s: ok: %s\n", f, describeRuleSet(s))
	}
	if failed {
		return errFailed
	}
	return nil
}

func describeRuleSet(s *rules.Set) string {
	d := fmt.Sprintf("%d rules, version %s", s.Len(), s.Version())
	if s.Label() != "" {
		d += fmt.Sprintf(", label %q", s.Label())
	}
	return d
}

func rulesHelp(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func rulesTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := rulesFlags("rules test", "toolgate rules test [-q] FILE CASES.yaml...", stderr)
	quiet := fs.Bool("q", false, "print only failures and the summary")
	pos, err := rulesArgs(fs, args)
	if err != nil {
		return rulesHelp(err)
	}
	if len(pos) < 2 {
		fs.Usage()
		return fmt.Errorf("%w: rules test needs a rules FILE and at least one CASES file", errUsage)
	}
	s, err := rules.Load(pos[0])
	if err != nil {
		printRuleErrors(stderr, err)
		return errFailed
	}
	pass, fail := 0, 0
	for _, cf := range pos[1:] {
		data, err := os.ReadFile(cf)
		if err != nil {
			return fmt.Errorf("rules test: %w", err)
		}
		cases, err := rules.ParseCases(cf, data)
		if err != nil {
			printRuleErrors(stderr, err)
			return errFailed
		}
		for _, c := range cases {
			if err := c.Check(c.Decide(ctx, s)); err != nil {
				fail++
				fmt.Fprintf(stdout, "FAIL: %s (%s:%d)\n      %v\n", c.Name, cf, c.Line, err)
				continue
			}
			pass++
			if !*quiet {
				fmt.Fprintf(stdout, "PASS: %s (%s:%d)\n", c.Name, cf, c.Line)
			}
		}
	}
	fmt.Fprintln(stdout, strings.Repeat("-", 80))
	fmt.Fprintf(stdout, "PASS: %d/%d\n", pass, pass+fail)
	if fail > 0 {
		fmt.Fprintf(stdout, "FAIL: %d/%d\n", fail, pass+fail)
		return errFailed
	}
	return nil
}

// rulesEvalOutput is what `rules eval --json` prints.
type rulesEvalOutput struct {
	Decision toolgate.Decision `json:"decision"`
	Steps    []rules.Step      `json:"steps"`
	Skipped  int               `json:"skipped"`
}

func rulesEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := rulesFlags("rules eval", "toolgate rules eval FILE --call JSON|@file [--json]", stderr)
	callArg := fs.String("call", "", "the call as JSON (or YAML), or @path to read it from a file: "+
		`{"tool":"read_file","server":"workspace","args":{"path":"a.go"},"confidence":0.9,...}`)
	asJSON := fs.Bool("json", false, "print the decision and the rules considered as JSON")
	pos, err := rulesArgs(fs, args)
	if err != nil {
		return rulesHelp(err)
	}
	if len(pos) != 1 || *callArg == "" {
		fs.Usage()
		return fmt.Errorf("%w: rules eval needs one rules FILE and --call", errUsage)
	}
	s, err := rules.Load(pos[0])
	if err != nil {
		printRuleErrors(stderr, err)
		return errFailed
	}
	raw := []byte(*callArg)
	if name, ok := strings.CutPrefix(*callArg, "@"); ok {
		if raw, err = os.ReadFile(name); err != nil {
			return fmt.Errorf("rules eval: %w", err)
		}
	}
	c, err := rules.ParseCall(raw)
	if err != nil {
		return fmt.Errorf("%w: rules eval: %v", errUsage, err)
	}
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	d, steps, skipped := s.Explain(ctx, c)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rulesEvalOutput{Decision: d, Steps: steps, Skipped: skipped})
	}
	printRuleDecision(stdout, d, steps, skipped)
	return nil
}

func printRuleDecision(w io.Writer, d toolgate.Decision, steps []rules.Step, skipped int) {
	rule := d.Rule
	if rule == "" {
		rule = "(none: the default applied)"
	}
	fmt.Fprintf(w, "action:  %s\n", d.Action)
	fmt.Fprintf(w, "rule:    %s\n", rule)
	if d.Reason != "" {
		fmt.Fprintf(w, "reason:  %s\n", review.Visible(d.Reason))
	}
	if d.AutoApproved {
		fmt.Fprintf(w, "auto-approved: yes (the agent's confidence met auto_approve_at)\n")
	}
	if d.ConfidenceEffect == toolgate.ConfidenceTightenedToReview || d.ConfidenceEffect == toolgate.ConfidenceTightenedToDeny {
		fmt.Fprintf(w, "confidence: %s (the agent's stated confidence made the action stricter)\n", d.ConfidenceEffect)
	}
	if d.Error != "" {
		fmt.Fprintf(w, "error:   %s\n", review.Visible(d.Error))
	}
	v := d.Version
	if d.Label != "" {
		v += fmt.Sprintf(" (%s)", d.Label)
	}
	fmt.Fprintf(w, "version: %s\n", v)
	for _, s := range d.Shadow {
		line := fmt.Sprintf("shadow:  %s would %s", s.Rule, s.Action)
		if s.Reason != "" {
			line += ": " + s.Reason
		}
		if s.Error != "" {
			line += " [error: " + s.Error + "]"
		}
		fmt.Fprintln(w, review.Visible(line))
	}
	fmt.Fprintln(w, "why:")
	width := 0
	for _, s := range steps {
		width = max(width, len(s.Rule))
	}
	for _, s := range steps {
		mode := ""
		if s.Shadow {
			mode = " (shadow)"
		}
		line := fmt.Sprintf("  %-*s  %s%s", width, s.Rule, s.Result, mode)
		if s.Error != "" {
			line += ": " + s.Error
		}
		fmt.Fprintln(w, review.Visible(line))
	}
	if len(steps) == 0 {
		fmt.Fprintln(w, "  no rule applied to this call")
	}
	if skipped > 0 {
		fmt.Fprintf(w, "  (%d other rules not evaluated: limited to other tool names, or after the deciding rule)\n", skipped)
	}
}
