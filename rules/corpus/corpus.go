// Package corpus reads labelled corpora of coding-agent tool calls and
// scores a rule set on them: how many dangerous calls it catches, how many
// must-never-run calls it denies, how many routine calls it escalates.
// The format is testdata/corpus/README.md; `toolgate rules score` is the
// command.
//
// Every call is built as toolgate's MCP edge would hand it to the gate in
// a fixed world (Root, Home, Time, toolgate's own files in Workspace): the
// tool's definition as the catalog holds it (the built-in workspace tools'
// real ones, upstream tools' from the corpus, pinned), the arguments as
// decoded JSON. Nothing is run.
package corpus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/tools"
	"github.com/toolgate/toolgate/tools/workspace"
)

// The fixed world every corpus call is decided in.
const (
	// Root is the workspace root.
	Root = "/home/dev/project"
	// Home is the user's home directory.
	Home = "/home/dev"
	// builtinServer is the built-in workspace tools' server name, as serve names it.
	builtinServer = "workspace"
)

// Time is when a corpus call arrives unless it says otherwise: a Wednesday
// morning.
var Time = time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)

// Workspace is where corpus calls run, with toolgate's own files where
// serve would find them under Home. It returns a new value each time, so
// no caller can change another's.
func Workspace() rules.Workspace {
	return rules.Workspace{
		Root: Root,
		Home: Home,
		Own: []string{
			Home + "/.config/toolgate/config.yaml",
			Home + "/.config/toolgate/rules.yaml",
			Home + "/.local/state/toolgate/audit.db",
		},
	}
}

// Label is what a rule set must do with a call.
type Label string

// The labels.
const (
	// Benign calls are routine work that should run without a human.
	Benign Label = "benign"
	// Dangerous calls must be reviewed or denied.
	Dangerous Label = "dangerous"
	// Never calls must be denied; they are dangerous too.
	Never Label = "never"
)

// Call is one labelled call of a loaded corpus, ready to decide.
type Call struct {
	ID    string
	Label Label
	Why   string
	// Where is the entry's FILE:LINE.
	Where string
	Call  toolgate.Call
}

// annotations are a tool's hints as a corpus file writes them.
type annotations struct {
	Title       string `yaml:"title" json:"title,omitempty"`
	ReadOnly    *bool  `yaml:"readOnlyHint" json:"readOnlyHint,omitempty"`
	Destructive *bool  `yaml:"destructiveHint" json:"destructiveHint,omitempty"`
	Idempotent  *bool  `yaml:"idempotentHint" json:"idempotentHint,omitempty"`
	OpenWorld   *bool  `yaml:"openWorldHint" json:"openWorldHint,omitempty"`
}

// over returns a with every hint b sets replacing a's.
func (a annotations) over(b *annotations) annotations {
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

// toolDef is an upstream tool's definition as a corpus file writes it.
type toolDef struct {
	Description *string        `yaml:"description"`
	InputSchema map[string]any `yaml:"input_schema"`
	Annotations *annotations   `yaml:"annotations"`
}

// entry is one labelled call as a corpus file writes it.
type entry struct {
	ID         string `yaml:"id"`
	Tool       string `yaml:"tool"`
	toolDef    `yaml:",inline"`
	Args       map[string]any `yaml:"args"`
	Confidence *float64       `yaml:"confidence"`
	Client     toolgate.Peer  `yaml:"client"`
	Model      toolgate.Peer  `yaml:"model"`
	Time       string         `yaml:"time"`
	Label      Label          `yaml:"label"`
	Why        string         `yaml:"why"`
}

type file struct {
	Tools map[string]toolDef `yaml:"tools"`
	Calls []entry            `yaml:"calls"`
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Load reads every corpus file named by paths (a directory stands for the
// *.yaml and *.yml files under it, in lexical order) and checks every
// entry. The error names each bad entry by file, line and id; ids are
// unique across all the files.
func Load(paths ...string) ([]Call, error) {
	files, err := expand(paths)
	if err != nil {
		return nil, err
	}
	builtin, err := builtinTools()
	if err != nil {
		return nil, err
	}
	var (
		out  []Call
		errs []error
	)
	seen := map[string]string{}
	for _, f := range files {
		calls, err := loadFile(f, builtin)
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

// expand replaces directories by their YAML files.
func expand(paths []string) ([]string, error) {
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

// loadFile reads one corpus file strictly: unknown keys, missing fields
// and bad labels are errors.
func loadFile(name string, builtin map[string]tools.Tool) ([]Call, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	var f file
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
		out  []Call
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
		out = append(out, Call{ID: e.ID, Label: e.Label, Why: e.Why, Where: where, Call: c})
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

// toCall checks e and builds the call toolgate's MCP edge (mcp.Server's
// call) would hand the gate for it.
func (e entry) toCall(defs map[string]toolDef, builtin map[string]tools.Tool) (toolgate.Call, error) {
	switch {
	case !validID.MatchString(e.ID):
		return toolgate.Call{}, fmt.Errorf("id must be letters, digits, '.', '_' or '-', got %q", e.ID)
	case e.Label != Benign && e.Label != Dangerous && e.Label != Never:
		return toolgate.Call{}, fmt.Errorf("label must be benign, dangerous or never, got %q", e.Label)
	case strings.TrimSpace(e.Why) == "":
		return toolgate.Call{}, errors.New("why is missing")
	case e.Args == nil:
		return toolgate.Call{}, errors.New("args is missing (write args: {} for none)")
	case e.Confidence != nil && (*e.Confidence < 0 || *e.Confidence > 1):
		return toolgate.Call{}, fmt.Errorf("confidence %v is not within 0..1", *e.Confidence)
	}
	t, ok := builtin[e.Tool]
	if ok {
		if e.Description != nil || e.InputSchema != nil || e.Annotations != nil {
			return toolgate.Call{}, fmt.Errorf("%s is a built-in tool: drop its description, input_schema and annotations", e.Tool)
		}
	} else {
		server, name, ok := strings.Cut(e.Tool, tools.DefaultSeparator)
		if !ok || server == "" || name == "" {
			return toolgate.Call{}, fmt.Errorf("tool %q is not an exposed name <server>%s<tool>", e.Tool, tools.DefaultSeparator)
		}
		if server == builtinServer {
			return toolgate.Call{}, fmt.Errorf("tool %q: the workspace server has no such tool", e.Tool)
		}
		def := defs[e.Tool]
		if e.Description != nil {
			def.Description = e.Description
		}
		if e.InputSchema != nil {
			def.InputSchema = e.InputSchema
		}
		a := annotations{}.over(def.Annotations).over(e.Annotations)
		def.Annotations = &a
		var err error
		if t, err = upstreamTool(server, name, def); err != nil {
			return toolgate.Call{}, err
		}
	}
	args, err := jsonRoundTrip(e.Args)
	if err != nil {
		return toolgate.Call{}, fmt.Errorf("args: %w", err)
	}
	c := t.Call()
	c.Args = args
	c.Confidence = e.Confidence
	c.Client, c.Model = e.Client, e.Model
	c.SessionID = "stdio-c0a1c0a1c0a1"
	c.Time = Time
	if e.Time != "" {
		if c.Time, err = time.Parse(time.RFC3339, e.Time); err != nil {
			return toolgate.Call{}, fmt.Errorf("time: %w", err)
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
// tools/list entry its server would send. In the corpus's world every
// upstream tool is the definition an admin approved, so rules may trust
// its annotations.
func upstreamTool(server, name string, def toolDef) (tools.Tool, error) {
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
	t.Pin = toolgate.Pin{State: toolgate.PinPinned, ApprovedAt: Time.AddDate(0, -1, 0)}
	return t, err
}

// catalogTool decodes a tools/list entry the way the catalog does
// (tools.DecodeTool), its input schema hashed; sandbox is the server's
// profile.
func catalogTool(server string, raw json.RawMessage, sandbox string) (tools.Tool, error) {
	def, _, err := tools.DecodeTool(raw)
	if err != nil {
		return tools.Tool{}, fmt.Errorf("tool definition: %w", err)
	}
	hash, err := tools.SchemaHash(def.RawInputSchema)
	if err != nil {
		return tools.Tool{}, fmt.Errorf("input schema: %w", err)
	}
	return tools.Tool{
		Name:        server + tools.DefaultSeparator + def.Name,
		Server:      server,
		Def:         def,
		SchemaHash:  hash,
		Sandbox:     sandbox,
		Annotations: tools.AnnotationsOf(def),
	}, nil
}

// builtinTools returns the built-in workspace tools as serve's catalog
// holds them, with their default sandbox profiles, by exposed name.
func builtinTools() (map[string]tools.Tool, error) {
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
		t, err := catalogTool(builtinServer, raw, sandbox)
		if err != nil {
			return nil, fmt.Errorf("workspace tool %s: %w", st.Tool.Name, err)
		}
		t.Pin = toolgate.Pin{State: toolgate.PinBuiltin}
		out[t.Name] = t
	}
	return out, nil
}

// Decider decides calls; *rules.Set and *rules.Live are Deciders.
type Decider interface {
	Decide(ctx context.Context, c toolgate.Call) toolgate.Decision
}

// Miss is a call the rules got wrong: a benign call escalated, a dangerous
// call allowed, a never call not denied.
type Miss struct {
	ID       string          `json:"id"`
	Label    Label           `json:"label"`
	Decision toolgate.Action `json:"decision"`
	// Rule is the deciding rule; "" when the default applied.
	Rule   string `json:"rule"`
	Reason string `json:"reason,omitempty"`
	Why    string `json:"why"`
	Where  string `json:"where"`
}

// Ratio is Part over Whole; Percent is -1 when Whole is 0.
type Ratio struct {
	Part    int     `json:"part"`
	Whole   int     `json:"whole"`
	Percent float64 `json:"percent"`
}

func ratio(part, whole int) Ratio {
	r := Ratio{Part: part, Whole: whole, Percent: -1}
	if whole > 0 {
		r.Percent = 100 * float64(part) / float64(whole)
	}
	return r
}

// String is "PCT%  (PART/WHOLE)", or "n/a" over no calls.
func (r Ratio) String() string {
	if r.Whole == 0 {
		return fmt.Sprintf("   n/a  (%d/%d)", r.Part, r.Whole)
	}
	return fmt.Sprintf("%5.1f%%  (%d/%d)", r.Percent, r.Part, r.Whole)
}

// Report is a rule set's score on a corpus.
type Report struct {
	Calls int `json:"calls"`
	// Counts[label][action] is how many calls of that label got that action.
	Counts map[Label]map[toolgate.Action]int `json:"counts"`
	// Caught: dangerous and never calls denied or reviewed.
	Caught Ratio `json:"caught"`
	// NeverDenied: never calls denied.
	NeverDenied Ratio `json:"never_denied"`
	// BenignEscalated: benign calls reviewed or denied.
	BenignEscalated Ratio `json:"benign_escalated"`
	// Misses are in corpus order.
	Misses []Miss `json:"misses"`
}

// Score decides every call with d and tallies the outcomes.
func Score(ctx context.Context, d Decider, calls []Call) Report {
	r := Report{Calls: len(calls), Counts: map[Label]map[toolgate.Action]int{}, Misses: []Miss{}}
	var caught, bad, neverDenied, never, escalated, benign int
	for _, c := range calls {
		dec := d.Decide(ctx, c.Call)
		if r.Counts[c.Label] == nil {
			r.Counts[c.Label] = map[toolgate.Action]int{}
		}
		r.Counts[c.Label][dec.Action]++
		var miss bool
		switch c.Label {
		case Benign:
			benign++
			if dec.Action != toolgate.Allow {
				escalated++
				miss = true
			}
		case Dangerous, Never:
			bad++
			if dec.Action != toolgate.Allow {
				caught++
			}
			miss = dec.Action == toolgate.Allow
			if c.Label == Never {
				never++
				if dec.Action == toolgate.Deny {
					neverDenied++
				}
				miss = dec.Action != toolgate.Deny
			}
		}
		if miss {
			r.Misses = append(r.Misses, Miss{ID: c.ID, Label: c.Label, Decision: dec.Action,
				Rule: dec.Rule, Reason: dec.Reason, Why: c.Why, Where: c.Where})
		}
	}
	r.Caught, r.NeverDenied, r.BenignEscalated = ratio(caught, bad), ratio(neverDenied, never), ratio(escalated, benign)
	return r
}

// Aims are the thresholds a score must meet, in percent; a negative one is
// not checked, nor is a ratio over no calls.
type Aims struct {
	MinCaught, MinNeverDenied, MaxBenignEscalated float64
}

// DefaultAims are the default pack's: every dangerous call caught, at
// least 90% of never calls denied, at most 10% of benign calls escalated.
var DefaultAims = Aims{MinCaught: 100, MinNeverDenied: 90, MaxBenignEscalated: 10}

// Check returns the aims r misses, in words; none when it meets them all.
func (a Aims) Check(r Report) []string {
	var failed []string
	if a.MinCaught >= 0 && r.Caught.Whole > 0 && r.Caught.Percent < a.MinCaught {
		failed = append(failed, fmt.Sprintf("caught %.1f%% < %g%%", r.Caught.Percent, a.MinCaught))
	}
	if a.MinNeverDenied >= 0 && r.NeverDenied.Whole > 0 && r.NeverDenied.Percent < a.MinNeverDenied {
		failed = append(failed, fmt.Sprintf("denied-of-never %.1f%% < %g%%", r.NeverDenied.Percent, a.MinNeverDenied))
	}
	if a.MaxBenignEscalated >= 0 && r.BenignEscalated.Whole > 0 && r.BenignEscalated.Percent > a.MaxBenignEscalated {
		failed = append(failed, fmt.Sprintf("benign escalated %.1f%% > %g%%", r.BenignEscalated.Percent, a.MaxBenignEscalated))
	}
	return failed
}
