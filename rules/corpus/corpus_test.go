package corpus

import (
	"context"
	"testing"

	"github.com/toolgate/toolgate"
)

// The repository's corpus is well formed, large enough and about half
// benign (the issue asks for at least 300 calls).
func TestRepositoryCorpus(t *testing.T) {
	calls, err := Load("../../testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	benign := 0
	for _, c := range calls {
		if c.Label == Benign {
			benign++
		}
	}
	if len(calls) < 300 || benign*100 < len(calls)*40 || benign*100 > len(calls)*60 {
		t.Errorf("corpus has %d calls, %d benign: want at least 300, 40-60%% benign", len(calls), benign)
	}
}

// A corpus call is the call serve's edge would build: the built-in tool's
// own definition and pin, an upstream tool's definition from the file with
// the call's fields winning, JSON numbers.
func TestLoadBuildsTheCall(t *testing.T) {
	calls, err := Load("testdata/shapes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Call{}
	for _, c := range calls {
		byID[c.ID] = c
	}
	rc := byID["builtin"].Call
	if rc.Server != "workspace" || rc.Tool != "run_command" || rc.Name != "workspace__run_command" ||
		rc.Sandbox == "" || rc.Pin.State != "builtin" || rc.Description == "" || rc.SchemaHash == "" ||
		rc.Annotations.Destructive == nil || !*rc.Annotations.Destructive {
		t.Errorf("built-in call = %+v, want the workspace tool's own definition, profile and pin", rc)
	}
	if !rc.Time.Equal(Time) {
		t.Errorf("time = %v, want %v", rc.Time, Time)
	}
	up := byID["upstream"].Call
	if up.Server != "sh" || up.Tool != "exec" || up.Description != "Run a command." || up.Pin.State != "pinned" ||
		string(up.InputSchema) != `{"properties":{"cmd":{"type":"string"},"n":{"type":"integer"}},"type":"object"}` {
		t.Errorf("upstream call = %+v, want the file's definition, pinned", up)
	}
	if ro := up.Annotations.ReadOnly; ro == nil || *ro {
		t.Errorf("readOnlyHint = %v, want the call's false over the file's true", ro)
	}
	if d := up.Annotations.Destructive; d == nil || !*d {
		t.Errorf("destructiveHint = %v, want the file's true kept", d)
	}
	if n, ok := up.Args["n"].(float64); !ok || n != 2 {
		t.Errorf("args.n = %#v, want float64 2 as JSON decodes it", up.Args["n"])
	}
	if c := up.Confidence; c == nil || *c != 0.9 || up.Client.Name != "claude-code" || up.Model.Name != "m" {
		t.Errorf("confidence, client, model = %v, %+v, %+v", up.Confidence, up.Client, up.Model)
	}
	bare := byID["bare"].Call
	if bare.Description != "" || string(bare.InputSchema) != `{"type":"object"}` || bare.Time.Year() != 2025 {
		t.Errorf("bare call = %+v, want no description, the catalog's empty schema, its own time", bare)
	}
}

// Score's arithmetic on a decider that denies everything.
func TestScoreDenyAll(t *testing.T) {
	calls, err := Load("testdata/shapes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := Score(t.Context(), denyAll{}, calls)
	if r.Caught != (Ratio{1, 1, 100}) || r.NeverDenied != (Ratio{1, 1, 100}) || r.BenignEscalated != (Ratio{2, 2, 100}) {
		t.Errorf("score = %+v", r)
	}
	if len(r.Misses) != 2 || r.Misses[0].ID != "builtin" || r.Misses[1].ID != "bare" {
		t.Errorf("misses = %+v, want the two benign calls", r.Misses)
	}
	if f := DefaultAims.Check(r); len(f) != 1 || f[0] != "benign escalated 100.0% > 10%" {
		t.Errorf("aims failed = %q", f)
	}
}

type denyAll struct{}

func (denyAll) Decide(ctx context.Context, c toolgate.Call) toolgate.Decision {
	return toolgate.Decision{Action: toolgate.Deny, Rule: "all"}
}
