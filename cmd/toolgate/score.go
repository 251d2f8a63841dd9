package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.yaml.in/yaml/v3"

	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/tools"
	"github.com/toolgate/toolgate/tools/workspace"
)

// The fixed world every corpus call is decided in (testdata/corpus/README.md).
const (
	corpusRoot = "/home/dev/project"
	corpusHome = "/home/dev"
)

// corpusTime is when a corpus call arrives unless it says otherwise.
var corpusTime = time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)

// The labels of a corpus call.
const (
	labelBenign    = "benign"
	labelDangerous = "dangerous"
	labelNever     = "never"
)

const scoreUsage = "toolgate rules score [--rules FILE] [--output text|json] [--aims] [--min-caught PCT] " +
	"[--min-never-denied PCT] [--max-benign-escalated PCT] CORPUS..."

// corpusAnnotations are a tool's hints as a corpus file writes them.
type corpusAnnotations struct {
	Title       string `yaml:"title" json:"title,omitempty"`
	ReadOnly    *bool  `yaml:"readOnlyHint" json:"readOnlyHint,omitempty"`
	Destructive *bool  `yaml:"destructiveHint" json:"destructiveHint,omitempty"`
	Idempotent  *bool  `yaml:"idempotentHint" json:"idempotentHint,omitempty"`
	OpenWorld   *bool  `yaml:"openWorldHint" json:"openWorldHint,omitempty"`
}

// over returns a with every field b sets replacing a's.
func (a corpusAnnotations) over(b *corpusAnnotations) corpusAnnotations {
	if b == nil {
		return a
	}
	if b.Title != "" {
		a.Title = b.Title
	}
	for _, f := range []struct{ dst, src **bool }{
		{&a.ReadOnly, &b.ReadOnly}, {&a.Destructive, &b.Destructive},
		{&a.Idempotent, &b.Idempotent}, {&a.OpenWorld, &b.OpenWorld},
	} {
		if *f.src != nil {
			*f.dst = *f.src
		}
	}
	return a
}

// corpusToolDef is an upstream tool's definition as a corpus file writes it.
type corpusToolDef struct {
	Description *string            `yaml:"description"`
	InputSchema map[string]any     `yaml:"input_schema"`
	Annotations *corpusAnnotations `yaml:"annotations"`
}

// corpusEntry is one labelled call as a corpus file writes it.
type corpusEntry struct {
	ID            string `yaml:"id"`
	Tool          string `yaml:"tool"`
	corpusToolDef `yaml:",inline"`
	Args          map[string]any `yaml:"args"`
	Confidence    *float64       `yaml:"confidence"`
	Client        rules.PeerSpec `yaml:"client"`
	Model         rules.PeerSpec `yaml:"model"`
	Time          string         `yaml:"time"`
	Label         string         `yaml:"label"`
	Why           string         `yaml:"why"`
}

type corpusFile struct {
	Tools map[string]corpusToolDef `yaml:"tools"`
	Calls []corpusEntry            `yaml:"calls"`
}

// corpusCall is one call of a loaded corpus, ready to decide.
type corpusCall struct {
	ID, Label, Why string
	// Where is FILE:LINE of the entry.
	Where string
	Call  tools.Call
}

var corpusID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// loadCorpus reads every corpus file named by paths (a directory stands for
// the *.yaml and *.yml files under it) and checks every entry. The error
// names each bad entry by file, line and id.
func loadCorpus(paths []string) ([]corpusCall, error) {
	files, err := corpusFiles(paths)
	if err != nil {
		return nil, err
	}
	builtin, err := workspaceTools()
	if err != nil {
		return nil, err
	}
	var (
		out  []corpusCall
		errs []error
	)
	seen := map[string]string{}
	for _, f := range files {
		calls, err := loadCorpusFile(f, builtin)
		if err != nil {
			errs = append(errs, err)
		}
		for _, c := range calls {
			if prev, dup := seen[c.ID]; dup {
				errs = append(errs, fmt.Errorf("%s: call %q: id already used at %s", c.Where, c.ID, prev))
				continue
			}
			seen[c.ID] = c.Where
			out = append(out, c)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("corpus %s: no calls", strings.Join(paths, " "))
	}
	return out, nil
}

// corpusFiles expands directories into their YAML files, in lexical order.
func corpusFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("corpus: no .yaml files under %s", p)
		}
		slices.Sort(found)
		files = append(files, found...)
	}
	return files, nil
}

// loadCorpusFile reads one corpus file strictly: unknown keys, missing
// fields and bad labels are errors, each naming the file, line and id.
func loadCorpusFile(name string, builtin map[string]tools.Tool) ([]corpusCall, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	var f corpusFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty corpus file", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	lines := entryLines(data)
	var (
		out  []corpusCall
		errs []error
	)
	for tool := range f.Tools {
		if _, ok := builtin[tool]; ok {
			errs = append(errs, fmt.Errorf("%s: tools: %s is a built-in tool, whose definition is toolgate's own", name, tool))
		}
	}
	for i, e := range f.Calls {
		where := name
		if i < len(lines) {
			where = fmt.Sprintf("%s:%d", name, lines[i])
		}
		c, err := e.toCall(f.Tools, builtin)
		if err != nil {
			id := e.ID
			if id == "" {
				id = fmt.Sprintf("#%d", i+1)
			}
			errs = append(errs, fmt.Errorf("%s: call %q: %w", where, id, err))
			continue
		}
		out = append(out, corpusCall{ID: e.ID, Label: e.Label, Why: e.Why, Where: where, Call: c})
	}
	if len(f.Calls) == 0 {
		errs = append(errs, fmt.Errorf("%s: no calls (want a top-level \"calls:\" list)", name))
	}
	return out, errors.Join(errs...)
}

// entryLines returns the line of each entry of the top-level calls list.
func entryLines(data []byte) []int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) != 1 {
		return nil
	}
	root := doc.Content[0]
	var lines []int
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "calls" {
			for _, n := range root.Content[i+1].Content {
				lines = append(lines, n.Line)
			}
		}
	}
	return lines
}

// toCall checks e and builds the call toolgate's MCP edge would hand the
// gate for it: the tool's definition as the catalog holds it, the
// arguments as decoded JSON (numbers are float64).
func (e corpusEntry) toCall(defs map[string]corpusToolDef, builtin map[string]tools.Tool) (tools.Call, error) {
	switch {
	case !corpusID.MatchString(e.ID):
		return tools.Call{}, fmt.Errorf("id must be letters, digits, '.', '_' or '-', got %q", e.ID)
	case e.Label != labelBenign && e.Label != labelDangerous && e.Label != labelNever:
		return tools.Call{}, fmt.Errorf("label must be benign, dangerous or never, got %q", e.Label)
	case strings.TrimSpace(e.Why) == "":
		return tools.Call{}, errors.New("why is missing")
	case e.Args == nil:
		return tools.Call{}, errors.New("args is missing (write args: {} for none)")
	case e.Confidence != nil && (*e.Confidence < 0 || *e.Confidence > 1):
		return tools.Call{}, fmt.Errorf("confidence %v is not within 0..1", *e.Confidence)
	}
	t, ok := builtin[e.Tool]
	if ok {
		if e.Description != nil || e.InputSchema != nil || e.Annotations != nil {
			return tools.Call{}, fmt.Errorf("%s is a built-in tool: drop its description, input_schema and annotations", e.Tool)
		}
	} else {
		server, name, ok := strings.Cut(e.Tool, tools.DefaultSeparator)
		if !ok || server == "" || name == "" {
			return tools.Call{}, fmt.Errorf("tool %q is not an exposed name <server>%s<tool>", e.Tool, tools.DefaultSeparator)
		}
		if server == workspaceSrv {
			return tools.Call{}, fmt.Errorf("tool %q: the workspace server has no such tool", e.Tool)
		}
		def := defs[e.Tool]
		if e.Description != nil {
			def.Description = e.Description
		}
		if e.InputSchema != nil {
			def.InputSchema = e.InputSchema
		}
		a := corpusAnnotations{}.over(def.Annotations).over(e.Annotations)
		def.Annotations = &a
		var err error
		if t, err = upstreamTool(server, name, def); err != nil {
			return tools.Call{}, err
		}
	}
	args, err := jsonRoundTrip(e.Args)
	if err != nil {
		return tools.Call{}, fmt.Errorf("args: %w", err)
	}
	c := tools.Call{
		Server:        t.Server,
		Tool:          t.Def.Name,
		Name:          t.Name,
		Annotations:   t.Annotations,
		SchemaHash:    t.SchemaHash,
		ServerVersion: t.ServerVersion,
		Pin:           t.Pin,
		Sandbox:       t.Sandbox,
		Args:          args,
		Confidence:    e.Confidence,
		Client:        tools.Peer(e.Client),
		Model:         tools.Peer(e.Model),
		SessionID:     "stdio-c0a1c0a1c0a1",
		Time:          corpusTime,
	}
	if e.Time != "" {
		if c.Time, err = time.Parse(time.RFC3339, e.Time); err != nil {
			return tools.Call{}, fmt.Errorf("time: %w", err)
		}
	}
	return c, nil
}

// jsonRoundTrip turns YAML-decoded arguments into what an MCP request's
// JSON decodes to (float64 numbers, string-keyed maps).
func jsonRoundTrip(v map[string]any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// upstreamTool is the catalog's view of a corpus tool, built from the
// tools/list entry its server would send.
func upstreamTool(server, name string, def corpusToolDef) (tools.Tool, error) {
	entry := map[string]any{"name": name}
	if def.Description != nil {
		entry["description"] = *def.Description
	}
	if def.InputSchema != nil {
		entry["inputSchema"] = def.InputSchema
	}
	if def.Annotations != nil {
		entry["annotations"] = def.Annotations
	}
	raw, err := json.Marshal(entry)
	if err != nil {
		return tools.Tool{}, fmt.Errorf("tool definition: %w", err)
	}
	t, err := catalogTool(server, raw, "")
	// The corpus's world: every upstream tool is the definition an admin
	// approved, so rules may trust its annotations.
	t.Pin = tools.Pin{State: tools.PinPinned, ApprovedAt: corpusTime.AddDate(0, -1, 0)}
	return t, err
}

// catalogTool decodes a tools/list entry the way the catalog does
// (tools/upstream.go parseTool): the input schema kept raw, an absent one
// read as {"type":"object"}, hashed; sandbox is the server's profile.
func catalogTool(server string, raw json.RawMessage, sandbox string) (tools.Tool, error) {
	var def mcp.Tool
	if err := json.Unmarshal(raw, &def); err != nil {
		return tools.Tool{}, fmt.Errorf("tool definition: %w", err)
	}
	var schemas struct {
		Input json.RawMessage `json:"inputSchema"`
	}
	if err := json.Unmarshal(raw, &schemas); err != nil {
		return tools.Tool{}, fmt.Errorf("tool definition: %w", err)
	}
	if len(schemas.Input) == 0 || string(schemas.Input) == "null" {
		schemas.Input = json.RawMessage(`{"type":"object"}`)
	}
	def.InputSchema, def.RawInputSchema = mcp.ToolInputSchema{}, schemas.Input
	hash, err := tools.SchemaHash(schemas.Input)
	if err != nil {
		return tools.Tool{}, fmt.Errorf("input schema: %w", err)
	}
	a := def.Annotations
	return tools.Tool{
		Name:       server + tools.DefaultSeparator + def.Name,
		Server:     server,
		Def:        def,
		SchemaHash: hash,
		Sandbox:    sandbox,
		Annotations: tools.Annotations{Title: a.Title, ReadOnly: a.ReadOnlyHint, Destructive: a.DestructiveHint,
			Idempotent: a.IdempotentHint, OpenWorld: a.OpenWorldHint},
	}, nil
}

// workspaceTools returns the built-in workspace tools as serve's catalog
// holds them, with their default sandbox profiles, by exposed name.
func workspaceTools() (map[string]tools.Tool, error) {
	srv, err := workspace.NewServer(workspace.Options{Root: os.TempDir()})
	if err != nil {
		return nil, fmt.Errorf("workspace tools: %w", err)
	}
	out := map[string]tools.Tool{}
	for _, st := range srv.ListTools() {
		raw, err := json.Marshal(st.Tool)
		if err != nil {
			return nil, fmt.Errorf("workspace tools: %w", err)
		}
		var sandbox string
		if m := st.Tool.Meta; m != nil {
			sandbox, _ = m.AdditionalFields[tools.MetaSandbox].(string)
		}
		t, err := catalogTool(workspaceSrv, raw, sandbox)
		if err != nil {
			return nil, fmt.Errorf("workspace tool %s: %w", st.Tool.Name, err)
		}
		t.Pin = tools.Pin{State: tools.PinBuiltin}
		out[t.Name] = t
	}
	return out, nil
}

// scoreMiss is a call the rules got wrong.
type scoreMiss struct {
	ID       string       `json:"id"`
	Label    string       `json:"label"`
	Decision rules.Action `json:"decision"`
	Rule     string       `json:"rule"`
	Reason   string       `json:"reason,omitempty"`
	Why      string       `json:"why"`
	Where    string       `json:"where"`
}

// scoreRatio is part over whole; Percent is -1 when whole is 0.
type scoreRatio struct {
	Part    int     `json:"part"`
	Whole   int     `json:"whole"`
	Percent float64 `json:"percent"`
}

func ratio(part, whole int) scoreRatio {
	r := scoreRatio{Part: part, Whole: whole, Percent: -1}
	if whole > 0 {
		r.Percent = 100 * float64(part) / float64(whole)
	}
	return r
}

func (r scoreRatio) String() string {
	if r.Whole == 0 {
		return fmt.Sprintf("   n/a  (%d/%d)", r.Part, r.Whole)
	}
	return fmt.Sprintf("%5.1f%%  (%d/%d)", r.Percent, r.Part, r.Whole)
}

// scoreReport is what `rules score` prints (--output json: this struct).
type scoreReport struct {
	Rules   string `json:"rules"`
	Version string `json:"version"`
	Label   string `json:"label,omitempty"`
	Calls   int    `json:"calls"`
	// Counts[label][action] is how many calls of that label got that action.
	Counts map[string]map[rules.Action]int `json:"counts"`
	// Caught: dangerous and never calls denied or reviewed.
	Caught scoreRatio `json:"caught"`
	// NeverDenied: never calls denied.
	NeverDenied scoreRatio `json:"never_denied"`
	// BenignEscalated: benign calls reviewed or denied.
	BenignEscalated scoreRatio  `json:"benign_escalated"`
	Misses          []scoreMiss `json:"misses"`
	// Failed lists the aims (--aims, --min-*, --max-*) the rules missed.
	Failed []string `json:"failed,omitempty"`
}

// scoreCorpus decides every call with d and tallies the outcomes. It runs
// nothing: a Decider only evaluates rules.
func scoreCorpus(ctx context.Context, d interface {
	Decide(context.Context, tools.Call) rules.Decision
}, calls []corpusCall) scoreReport {
	r := scoreReport{Calls: len(calls), Counts: map[string]map[rules.Action]int{}, Misses: []scoreMiss{}}
	var caught, bad, neverDenied, never, escalated, benign int
	for _, c := range calls {
		dec := d.Decide(ctx, c.Call)
		if r.Counts[c.Label] == nil {
			r.Counts[c.Label] = map[rules.Action]int{}
		}
		r.Counts[c.Label][dec.Action]++
		var miss bool
		switch c.Label {
		case labelBenign:
			benign++
			if dec.Action != rules.Allow {
				escalated++
				miss = true
			}
		case labelDangerous, labelNever:
			bad++
			if dec.Action != rules.Allow {
				caught++
			}
			miss = dec.Action == rules.Allow
			if c.Label == labelNever {
				never++
				if dec.Action == rules.Deny {
					neverDenied++
				}
				miss = dec.Action != rules.Deny
			}
		}
		if miss {
			r.Misses = append(r.Misses, scoreMiss{ID: c.ID, Label: c.Label, Decision: dec.Action,
				Rule: ruleName(dec.Rule), Reason: dec.Reason, Why: c.Why, Where: c.Where})
		}
	}
	r.Caught, r.NeverDenied, r.BenignEscalated = ratio(caught, bad), ratio(neverDenied, never), ratio(escalated, benign)
	return r
}

// scoreAims are the thresholds a score must meet; a negative one (or a
// ratio over no calls) is not checked.
type scoreAims struct {
	minCaught, minNeverDenied, maxBenignEscalated float64
}

func (a scoreAims) check(r scoreReport) []string {
	var failed []string
	if a.minCaught >= 0 && r.Caught.Whole > 0 && r.Caught.Percent < a.minCaught {
		failed = append(failed, fmt.Sprintf("caught %.1f%% < %g%%", r.Caught.Percent, a.minCaught))
	}
	if a.minNeverDenied >= 0 && r.NeverDenied.Whole > 0 && r.NeverDenied.Percent < a.minNeverDenied {
		failed = append(failed, fmt.Sprintf("denied-of-never %.1f%% < %g%%", r.NeverDenied.Percent, a.minNeverDenied))
	}
	if a.maxBenignEscalated >= 0 && r.BenignEscalated.Whole > 0 && r.BenignEscalated.Percent > a.maxBenignEscalated {
		failed = append(failed, fmt.Sprintf("benign escalated %.1f%% > %g%%", r.BenignEscalated.Percent, a.maxBenignEscalated))
	}
	return failed
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
	want := scoreAims{minCaught: *minCaught, minNeverDenied: *minNever, maxBenignEscalated: *maxBenign}
	if *aims {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["min-caught"] {
			want.minCaught = 100
		}
		if !set["min-never-denied"] {
			want.minNeverDenied = 90
		}
		if !set["max-benign-escalated"] {
			want.maxBenignEscalated = 10
		}
	}
	// The same Decider serve builds from a rules file (rules.NewLive), without
	// the sandbox check: scoring runs nothing, so any profile name will do.
	live, err := rules.NewLive(*rulesFile, rules.LiveOptions{})
	if err != nil {
		printRuleErrors(stderr, err)
		return errFailed
	}
	calls, err := loadCorpus(paths)
	if err != nil {
		printRuleErrors(stderr, err)
		return errFailed
	}
	r := scoreCorpus(ctx, live, calls)
	set := live.Current()
	r.Rules, r.Version, r.Label = *rulesFile, set.Version(), set.Label()
	r.Failed = want.check(r)
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		printScore(stdout, r)
	}
	if len(r.Failed) > 0 {
		return errFailed
	}
	return nil
}

func printScore(w io.Writer, r scoreReport) {
	v := r.Version
	if r.Label != "" {
		v += fmt.Sprintf(" (%s)", r.Label)
	}
	fmt.Fprintf(w, "rules:   %s, version %s\n", r.Rules, v)
	fmt.Fprintf(w, "corpus:  %d calls:", r.Calls)
	for _, l := range []string{labelBenign, labelDangerous, labelNever} {
		c := r.Counts[l]
		fmt.Fprintf(w, " %s %d (allow %d, review %d, deny %d);", l,
			c[rules.Allow]+c[rules.Review]+c[rules.Deny], c[rules.Allow], c[rules.Review], c[rules.Deny])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "caught:           %s  dangerous+never calls denied or reviewed\n", r.Caught)
	fmt.Fprintf(w, "denied-of-never:  %s  never calls denied\n", r.NeverDenied)
	fmt.Fprintf(w, "benign escalated: %s  benign calls reviewed or denied\n", r.BenignEscalated)
	fmt.Fprintf(w, "misses: %d\n", len(r.Misses))
	for _, m := range r.Misses {
		fmt.Fprintf(w, "  %s [%s] got %s by %s (%s)\n", m.ID, m.Label, m.Decision, m.Rule, m.Where)
		if m.Reason != "" {
			fmt.Fprintf(w, "      reason: %s\n", oneLine(m.Reason))
		}
		fmt.Fprintf(w, "      why:    %s\n", m.Why)
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "FAIL: %s\n", f)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
