package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
)

// TestServeSessionsShareReviews: two agent sessions over stdio, each its own
// toolgate on one audit log. Starting the second must leave the first's
// waiting review alone; the first's call runs once approved from a
// terminal. (That a dead process's reviews are expired once its lease runs
// out is tested in audit.)
func TestServeSessionsShareReviews(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  channels: [cli]\n")
	stderrA := &syncBuffer{}
	trA := transport.NewStdioWithOptions(toolgateBin, nil, []string{"serve", "--config", cfg}, transport.WithCommandStderrWriter(stderrA))
	a, _ := connect(t, trA)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	call := rvStart(a, ctx, "from session A", "")
	ids := rvWaitPending(t, db, 1)

	// Session B starts on the same log, and works.
	b, _, _ := startStdio(t, cfg)
	if out := mustCall(t, b, "up__stats", nil); !strings.Contains(out, "pid") {
		t.Fatalf("session B: %s", out)
	}
	// B answered a call, so its start-up sweep of orphan reviews has run.
	if got := rvWaitPending(t, db, 1); got[0] != ids[0] {
		t.Fatalf("pending after B started: %v, want %v", got, ids)
	}
	if !call.pending() {
		t.Fatalf("A's call ended when B started: %s", resultText(call.wait(t)))
	}
	rvCLI(t, nil, "review", "approve", ids[0], "--db", db)
	if res := call.wait(t); res.IsError || !strings.Contains(resultText(res), "from session A") {
		t.Fatalf("A's approved call: %s", resultText(res))
	}
	if t.Failed() {
		t.Logf("session A stderr:\n%s", stderrA.String())
	}
}
