package audit

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// TestCancelledOutcome: a call the agent cancelled after it was forwarded
// is recorded as cancelled, with why its outcome is unknown; the chain
// verifies, and export -> import keeps it.
func TestCancelledOutcome(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{})
	const id = "01CANCELLEDAAAAAAAAAAAAAAA"
	if err := s.Begin(ctx, testCall(id, 1), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	const why = "outcome unknown: the agent cancelled the call after it was forwarded (context canceled)"
	if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusCancelled, Error: why}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(ctx, id)
	if err != nil || r.Status != toolgate.StatusCancelled || r.Outcome == nil || r.Outcome.Error != why {
		t.Fatalf("Get = %+v, %v", r, err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	st, err := s.Stats(ctx, Filter{})
	if err != nil || st.Status[toolgate.StatusCancelled] != 1 {
		t.Fatalf("Stats = %+v, %v", st.Status, err)
	}

	var buf bytes.Buffer
	if err := WriteJSONL(&buf, s.Records(ctx, Filter{})); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, "", Options{})
	if n, err := s2.Import(ctx, bytes.NewReader(buf.Bytes())); err != nil || n != 1 {
		t.Fatalf("Import = %d, %v", n, err)
	}
	if r, err := s2.Get(ctx, id); err != nil || r.Status != toolgate.StatusCancelled || !strings.HasPrefix(r.Outcome.Error, "outcome unknown") {
		t.Fatalf("imported: %+v, %v", r, err)
	}
}
