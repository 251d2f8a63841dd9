package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/rules/corpus"
)

const scoreUsage = "toolgate rules score [--rules FILE] [--output text|json] [--aims] [--min-caught PCT] " +
	"[--min-never-denied PCT] [--max-benign-escalated PCT] CORPUS..."

// scoreOutput is what `rules score --output json` prints.
type scoreOutput struct {
	Rules   string `json:"rules"`
	Version string `json:"version"`
	Label   string `json:"label,omitempty"`
	corpus.Report
	// Failed lists the aims the rules missed.
	Failed []string `json:"failed,omitempty"`
}

func rulesScore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := rulesFlags("rules score", scoreUsage, stderr)
	rulesFile := fs.String("rules", rules.DefaultName, "rule `FILE` to score; @default is the embedded pack")
	output := fs.String("output", "text", "`FORMAT`: text or json")
	aims := fs.Bool("aims", false, "fail (exit 1) unless caught is 100%, denied-of-never at least 90% and benign escalated at most 10%")
	minCaught := fs.Float64("min-caught", -1, "fail unless caught % is at least `PCT`")
	minNever := fs.Float64("min-never-denied", -1, "fail unless denied-of-never % is at least `PCT`")
	maxBenign := fs.Float64("max-benign-escalated", -1, "fail unless benign escalated % is at most `PCT`")
	paths, err := rulesArgs(fs, args)
	if err != nil {
		return rulesHelp(err)
	}
	if len(paths) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: rules score needs at least one CORPUS file or directory", errUsage)
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("%w: rules score: --output must be text or json, got %q", errUsage, *output)
	}
	want := corpus.Aims{MinCaught: *minCaught, MinNeverDenied: *minNever, MaxBenignEscalated: *maxBenign}
	if *aims {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["min-caught"] {
			want.MinCaught = corpus.DefaultAims.MinCaught
		}
		if !set["min-never-denied"] {
			want.MinNeverDenied = corpus.DefaultAims.MinNeverDenied
		}
		if !set["max-benign-escalated"] {
			want.MaxBenignEscalated = corpus.DefaultAims.MaxBenignEscalated
		}
	}
	// The same Decider serve builds from a rules file (rules.NewLive, paths
	// resolved against the workspace), without the sandbox check: scoring
	// runs nothing, so any profile name will do.
	live, err := rules.NewLive(*rulesFile, rules.LiveOptions{Workspace: corpus.Workspace()})
	if err != nil {
		printRuleErrors(stderr, err)
		return errFailed
	}
	calls, err := corpus.Load(paths...)
	if err != nil {
		printRuleErrors(stderr, err)
		return errFailed
	}
	set := live.Current()
	out := scoreOutput{Rules: *rulesFile, Version: set.Version(), Label: set.Label(), Report: corpus.Score(ctx, live, calls)}
	out.Failed = want.Check(out.Report)
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printScore(stdout, out)
	}
	if len(out.Failed) > 0 {
		return errFailed
	}
	return nil
}

func printScore(w io.Writer, r scoreOutput) {
	v := r.Version
	if r.Label != "" {
		v += fmt.Sprintf(" (%s)", r.Label)
	}
	fmt.Fprintf(w, "rules:   %s, version %s\n", r.Rules, v)
	fmt.Fprintf(w, "corpus:  %d calls:", r.Calls)
	for _, l := range []corpus.Label{corpus.Benign, corpus.Dangerous, corpus.Never} {
		c := r.Counts[l]
		fmt.Fprintf(w, " %s %d (allow %d, review %d, deny %d);", l,
			c[toolgate.Allow]+c[toolgate.Review]+c[toolgate.Deny], c[toolgate.Allow], c[toolgate.Review], c[toolgate.Deny])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "caught:           %s  dangerous+never calls denied or reviewed\n", r.Caught)
	fmt.Fprintf(w, "denied-of-never:  %s  never calls denied\n", r.NeverDenied)
	fmt.Fprintf(w, "benign escalated: %s  benign calls reviewed or denied\n", r.BenignEscalated)
	fmt.Fprintf(w, "misses: %d\n", len(r.Misses))
	for _, m := range r.Misses {
		fmt.Fprintf(w, "  %s [%s] got %s by %s (%s)\n", m.ID, m.Label, m.Decision, ruleName(m.Rule), m.Where)
		if m.Reason != "" {
			fmt.Fprintf(w, "      reason: %s\n", review.Visible(strings.Join(strings.Fields(m.Reason), " ")))
		}
		fmt.Fprintf(w, "      why:    %s\n", review.Visible(m.Why))
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "FAIL: %s\n", f)
	}
}
