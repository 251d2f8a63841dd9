package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeCancelledCallRecorded: a call the agent cancels
// (notifications/cancelled) once it is forwarded is recorded as cancelled,
// saying its outcome is unknown, not as failed: the upstream may have acted
// on it, and an admin looking for failures must not pass over it.
func TestServeCancelledCallRecorded(t *testing.T) {
	t.Parallel()
	cfg, db := upstreamConfigDB(t, "")
	cfg = writeConfig(t, cfg)
	c, _, _ := startStdio(t, cfg)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := callTool(ctx, c, "up__slow", map[string]any{"seconds": 60, "steps": 1}, "")
		done <- err
	}()
	var id string
	toolgatetest.EventuallyWithin(t, "the call to be forwarded", 20*time.Second, func() bool {
		recs := idAuditList(t, db)
		if len(recs) == 1 && recs[0].Status == toolgate.StatusStarted {
			id = recs[0].ID
			return true
		}
		return false
	})
	cancel() // mcp-go's client sends notifications/cancelled
	if err := <-done; err == nil {
		t.Fatal("the cancelled call returned no error")
	}
	r := rvAuditRow(t, db, id) // waits while it is started
	if r.Status != toolgate.StatusCancelled || r.Outcome == nil ||
		!strings.HasPrefix(r.Outcome.Error, "outcome unknown: the agent cancelled the call after it was forwarded") {
		t.Fatalf("the cancelled call is recorded %s with %+v", r.Status, r.Outcome)
	}
	if out := rvCLI(t, nil, "audit", "stats", "--db", db); !strings.Contains(out, "cancelled 1") {
		t.Errorf("audit stats does not count it as cancelled:\n%s", out)
	}
}
