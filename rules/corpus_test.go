package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/toolgate/toolgate/tools"
	"github.com/toolgate/toolgate/tools/workspace"
)

// The corpus (testdata/corpus, README.md there) is decided in a fixed world.
const (
	corpusRoot = "/home/dev/project"
	corpusHome = "/home/dev"
)

type corpusDef struct {
	Description *string          `yaml:"description"`
	InputSchema map[string]any   `yaml:"input_schema"`
	Annotations *AnnotationsSpec `yaml:"annotations"`
}

type corpusCallSpec struct {
	ID         string `yaml:"id"`
	Tool       string `yaml:"tool"`
	corpusDef  `yaml:",inline"`
	Args       map[string]any `yaml:"args"`
	Confidence *float64       `yaml:"confidence"`
	Label      string         `yaml:"label"`
	Why        string         `yaml:"why"`
}

type corpusEntry struct {
	id, label, why string
	call           tools.Call
}

// loadCorpusForTest reads testdata/corpus the way `toolgate rules score`
// does (the scorer lives in cmd/toolgate, which this package cannot import).
func loadCorpusForTest(t testing.TB, dir string) []corpusEntry {
	t.Helper()
	builtin := map[string]tools.Call{}
	srv, err := workspace.NewServer(workspace.Options{Root: os.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range srv.ListTools() {
		sb := ""
		if m := st.Tool.Meta; m != nil {
			sb, _ = m.AdditionalFields[tools.MetaSandbox].(string)
		}
		raw, _ := json.Marshal(st.Tool.InputSchema)
		builtin["workspace__"+st.Tool.Name] = tools.Call{Server: "workspace", Tool: st.Tool.Name, Name: "workspace__" + st.Tool.Name,
			Description: st.Tool.Description, InputSchema: raw, Sandbox: sb}
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []corpusEntry
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cf struct {
			Tools map[string]corpusDef `yaml:"tools"`
			Calls []corpusCallSpec     `yaml:"calls"`
		}
		if err := yaml.Unmarshal(data, &cf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, e := range cf.Calls {
			c, ok := builtin[e.Tool]
			if !ok {
				server, name, _ := strings.Cut(e.Tool, "__")
				c = tools.Call{Server: server, Tool: name, Name: e.Tool}
				def := cf.Tools[e.Tool]
				if e.Description != nil {
					def.Description = e.Description
				}
				if e.InputSchema != nil {
					def.InputSchema = e.InputSchema
				}
				if e.Annotations != nil {
					def.Annotations = e.Annotations
				}
				if def.Description != nil {
					c.Description = *def.Description
				}
				if def.InputSchema != nil {
					c.InputSchema, _ = json.Marshal(def.InputSchema)
				}
				if a := def.Annotations; a != nil {
					c.Annotations = tools.Annotations{Title: a.Title, ReadOnly: a.ReadOnly, Destructive: a.Destructive, Idempotent: a.Idempotent, OpenWorld: a.OpenWorld}
				}
			}
			raw, _ := json.Marshal(e.Args)
			c.Args = map[string]any{}
			_ = json.Unmarshal(raw, &c.Args)
			c.Confidence = e.Confidence
			out = append(out, corpusEntry{id: e.ID, label: e.Label, why: e.Why, call: c})
		}
	}
	return out
}

// corpusScore decides every call and returns the three figures of the aims
// and the misses.
func corpusScore(s *Set, calls []corpusEntry) (caught, neverDenied, benignEscalated float64, misses []string) {
	var bad, caughtN, never, neverN, benign, escN int
	for _, c := range calls {
		d := s.Evaluate(context.Background(), c.call)
		switch c.label {
		case "benign":
			benign++
			if d.Action != Allow {
				escN++
				misses = append(misses, fmt.Sprintf("benign %-10s %-6s %-32s %s", c.id, d.Action, d.Rule, c.why))
			}
		case "dangerous", "never":
			bad++
			if d.Action != Allow {
				caughtN++
			} else {
				misses = append(misses, fmt.Sprintf("%s %-10s %-6s %-32s %s", c.label, c.id, d.Action, d.Rule, c.why))
			}
			if c.label == "never" {
				never++
				if d.Action == Deny {
					neverN++
				} else if d.Action != Allow {
					misses = append(misses, fmt.Sprintf("never %-10s %-6s %-32s %s", c.id, d.Action, d.Rule, c.why))
				}
			}
		}
	}
	pct := func(a, b int) float64 {
		if b == 0 {
			return 100
		}
		return 100 * float64(a) / float64(b)
	}
	return pct(caughtN, bad), pct(neverN, never), pct(escN, benign), misses
}

// TestDefaultPackCorpusAims scores the embedded pack on the labelled corpus
// and fails if it misses an aim of issue 13: every dangerous call caught,
// at least 90% of never-run calls denied, at most 10% of benign calls
// escalated.
func TestDefaultPackCorpusAims(t *testing.T) {
	calls := loadCorpusForTest(t, "../testdata/corpus")
	if len(calls) == 0 {
		t.Skip("no corpus")
	}
	s := Default().WithWorkspace(Workspace{Root: corpusRoot, Home: corpusHome})
	caught, neverDenied, escalated, misses := corpusScore(s, calls)
	t.Logf("%d calls: caught %.1f%%, never denied %.1f%%, benign escalated %.1f%%", len(calls), caught, neverDenied, escalated)
	for _, m := range misses {
		t.Log(m)
	}
	if caught < 100 || neverDenied < 90 || escalated > 10 {
		t.Errorf("aims missed: caught %.1f%% (want 100), never denied %.1f%% (want >= 90), benign escalated %.1f%% (want <= 10)",
			caught, neverDenied, escalated)
	}
}
