package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeSessionsShareReviews: two agent sessions over stdio, each its own
// toolgate on one audit log. Starting the second must leave the first's
// waiting review alone; the first's call runs once approved from a
// terminal. (That a dead process's reviews are expired once its lease runs
// out is tested in audit.)
func TestServeSessionsShareReviews(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  channels: [cli]\n")
	stderrA := &toolgatetest.SyncBuffer{}
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

// TestServeSIGTERMAnswersWaitingReviews: on SIGTERM, an agent whose call
// waits for a review gets an answer at once, and the review is recorded as
// cancelled, not left pending.
func TestServeSIGTERMAnswersWaitingReviews(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  channels: [cli]\n")
	cmd := exec.Command(toolgateBin, "serve", "--config", cfg)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr := &toolgatetest.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	lines := make(chan map[string]any, 8)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["id"] != nil {
				lines <- m
			}
		}
		close(lines)
	}()
	for _, l := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"waits"}}}`,
	} {
		if _, err := io.WriteString(stdin, l+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	toolgatetest.EventuallyWithin(t, "the audit log", 20*time.Second, func() bool { _, err := os.Stat(db); return err == nil })
	ids := rvWaitPending(t, db, 1)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	for m := range lines {
		if m["id"] == float64(2) {
			res = m
			break
		}
	}
	text, isErr := callResult(res)
	if !isErr || !strings.Contains(text, "toolgate refused") {
		t.Fatalf("the waiting call got %v; stderr:\n%s", res, stderr.String())
	}
	_ = cmd.Wait()
	r := rvAuditRow(t, db, ids[0])
	if r.Status != "refused" || r.Review == nil || r.Review.Channel != "cancelled" {
		t.Fatalf("after SIGTERM the review is %s with %+v", r.Status, r.Review)
	}
}
