package rules_test

import (
	"context"
	"testing"

	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/rules/corpus"
)

// TestDefaultPackCorpusAims scores the embedded pack on the labelled corpus
// (testdata/corpus) as `toolgate rules score` does, and fails if it misses
// an aim of issue 13: every dangerous call caught, at least 90% of the
// must-never-run calls denied, at most 10% of routine calls escalated.
func TestDefaultPackCorpusAims(t *testing.T) {
	calls, err := corpus.Load("../testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	r := corpus.Score(context.Background(), rules.Default().WithWorkspace(corpus.Workspace()), calls)
	t.Logf("%d calls: caught %s, never denied %s, benign escalated %s", r.Calls, r.Caught, r.NeverDenied, r.BenignEscalated)
	for _, m := range r.Misses {
		t.Logf("miss %s (%s): %s by %q: %s", m.ID, m.Label, m.Decision, m.Rule, m.Why)
	}
	if failed := corpus.DefaultAims.Check(r); len(failed) > 0 {
		t.Errorf("the default pack misses its aims on the corpus: %v", failed)
	}
}
