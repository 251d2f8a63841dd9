package main

// Issue 16's replica proof: three `toolgate serve --http` processes on one
// PostgreSQL log, 64 agents spread across them, one replica SIGKILLed
// mid-load. Every call an upstream received has its durable decision, the
// log is one chain that verifies, the dead replica's pending review is
// taken over by a live one, and a Slack click received by another replica
// ends it.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/audit/pgtest"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

func TestServeReplicasPostgresKill9(t *testing.T) {
	dsn := pgtest.DSN(t)
	fs := slackfake.New(t)
	for _, kv := range rvSlackEnv {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(rvRules), 0o600); err != nil {
		t.Fatal(err)
	}
	received := filepath.Join(dir, "received.log")
	// A short lease, so the dead replica's review is taken over within
	// seconds; the hold keeps the reviewed call waiting until the kill.
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up:\n    command: %q\nworkspace: {enabled: false}\nrules: {file: %q}\n"+
		"audit: {driver: postgres, dsn: %q, lease_ttl: 3s}\n"+
		"review:\n  timeout: 120s\n  hold: 100s\n  channels: [slack, cli]\n  slack: {channel: '#approvals', approvers: [%s], api_url: %q}\n",
		upstreamBin, rulesFile, dsn, rvApprover, fs.APIURL()))

	// Start the replicas one by one, so each Slack connection is known.
	const nReplicas = 3
	var reps []*durServe
	var conns []int
	for i := range nReplicas {
		reps = append(reps, durStart(t, cfg))
		toolgatetest.EventuallyWithin(t, fmt.Sprintf("replica %d's Socket Mode connection", i), 20*time.Second, func() bool { return fs.Connections() == i+1 })
		ids := fs.ConnectionIDs()
		conns = append(conns, slices.DeleteFunc(ids, func(c int) bool { return slices.Contains(conns, c) })[0])
	}
	const victim = 2

	// A review waiting on the victim: it must survive the kill.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	held := rvStart(httpClient(t, reps[victim].url), ctx, "survives the kill", "")
	reviewID := rvPostedID(t, fs.WaitPosts(1))

	// 64 agents, each with its own MCP session, round-robin over the
	// replicas; each call is recorded by the upstream on receipt and
	// held 20 ms, so calls are in flight when the kill lands.
	const agents, before, after = 64, 400, 200
	// The load stops between calls (a cancelled call would be recorded
	// as cancelled, which is right, but not what this test counts).
	var stopped atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for a := range agents {
		r := a % nReplicas
		c := httpClient(t, reps[r].url)
		wg.Go(func() {
			for i := 0; !stopped.Load(); i++ {
				id := fmt.Sprintf("r%d-a%02d-%05d", r, a, i)
				res, err := callTool(ctx, c, "up__record", map[string]any{"file": received, "id": id, "ms": 20}, "")
				if err != nil {
					return // its replica is gone, or the load is over
				}
				if res.IsError {
					mu.Lock()
					failures = append(failures, id+": "+resultText(res))
					mu.Unlock()
					return
				}
			}
		})
	}
	lines := func() int {
		b, _ := os.ReadFile(received)
		return strings.Count(string(b), "\n")
	}
	toolgatetest.EventuallyWithin(t, fmt.Sprintf("the upstreams to receive %d calls", before), 90*time.Second, func() bool { return lines() >= before })
	start, n0 := time.Now(), lines()
	if err := reps[victim].cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-reps[victim].exited
	toolgatetest.EventuallyWithin(t, fmt.Sprintf("%d more calls through the live replicas", after), 90*time.Second, func() bool { return lines() >= n0+after })
	t.Logf("after the kill: %d calls in %v through the 2 live replicas", lines()-n0, time.Since(start).Round(time.Millisecond))
	stopped.Store(true)
	wg.Wait()
	for _, f := range failures {
		t.Errorf("call refused: %s", f)
	}

	// Every call an upstream received has its decision in the log.
	ids := durLines(t, received)
	rows := recordRows(t, dsn)
	seen := map[string]bool{}
	inFlight := 0
	for _, id := range ids {
		if seen[id] {
			t.Errorf("an upstream received %s twice", id)
		}
		seen[id] = true
		switch st, ok := rows[id]; {
		case !ok:
			t.Errorf("an upstream received %s but the log has no decision for it", id)
		case st == toolgate.StatusStarted:
			if !strings.HasPrefix(id, fmt.Sprintf("r%d-", victim)) {
				t.Errorf("call %s on a live replica left started", id)
			}
			inFlight++
		case st != toolgate.StatusOK:
			t.Errorf("call %s: status %q, want ok (or started, on the killed replica)", id, st)
		}
	}
	t.Logf("upstreams received %d calls; %d log rows; %d were in flight on the killed replica", len(ids), len(rows), inFlight)

	// The dead replica's review: its call ended with the replica, the
	// review did not. A live replica takes it over (lease 3 s); the
	// approval, clicked on another live replica's connection, ends it
	// with a grant for the agent's retry, and the Slack message says so.
	select {
	case <-held.done:
		if held.err == nil {
			t.Fatalf("the reviewed call on the killed replica returned: %s", resultText(held.res))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the reviewed call on the killed replica still waits")
	}
	toolgatetest.EventuallyWithin(t, "a live replica to take the review over", 30*time.Second, func() bool {
		return strings.Contains(reps[0].stderr.String()+reps[1].stderr.String(), "review taken over from an ended process")
	})
	adopter, other := 0, 1
	if !strings.Contains(reps[0].stderr.String(), "review taken over") {
		adopter, other = 1, 0
	}
	if got := rvWaitPending(t, dsn, 1); got[0] != reviewID {
		t.Fatalf("pending after the takeover: %v, want [%s]", got, reviewID)
	}
	fs.ClickVia(conns[other], rvClick(rvApprover, review.ActionApprove, reviewID, ""))
	var r audit.Record
	toolgatetest.EventuallyWithin(t, "the taken-over review to end approved", 30*time.Second, func() bool {
		r = rvAuditRow(t, dsn, reviewID)
		return r.Status == toolgate.StatusGranted
	})
	if rv := r.Review; rv == nil || !rv.Approved || rv.Reviewer != rvApprover {
		t.Fatalf("review after the click: %+v", r.Review)
	}
	if up := fs.WaitUpdates(1); !slackfake.ContainsText(up, "Approved") {
		t.Errorf("message update = %v", up)
	}
	if !strings.Contains(reps[other].stderr.String(), "slack verdict stored") {
		t.Errorf("the click did not go through replica %d", other)
	}
	t.Logf("replica %d took the review over; replica %d received the click", adopter, other)

	if verify := rvCLI(t, nil, "audit", "verify", "--db", dsn); !strings.HasPrefix(verify, "OK: ") {
		t.Errorf("audit verify: %s", verify)
	}
}

// TestServeReplicasPostgresStalledHolder: a replica holding a reviewed call
// is stopped (SIGSTOP) past its lease; the other takes the review over,
// and the reviewer's approval there becomes a grant. The stalled replica,
// continued, reads that approval: it must not run the call (the retry
// runs it, on the grant), so the one approval runs the call once, and
// the upstream never receives a call the log says never ran.
func TestServeReplicasPostgresStalledHolder(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yaml")
	rules := "version: 1\nlabel: stalled-e2e\ndefault: allow\nrules:\n" +
		"  - name: record-needs-human\n    match: 'tool.name == \"record\"'\n    action: review\n    reason: recording needs a human\n"
	if err := os.WriteFile(rulesFile, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	received := filepath.Join(dir, "received.log")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up:\n    command: %q\nworkspace: {enabled: false}\nrules: {file: %q}\n"+
		"audit: {driver: postgres, dsn: %q, lease_ttl: 3s}\n"+
		"review:\n  timeout: 120s\n  hold: 100s\n  channels: [cli]\n", upstreamBin, rulesFile, dsn))
	holder, taker := durStart(t, cfg), durStart(t, cfg)
	c := httpClient(t, holder.url)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	args := map[string]any{"file": received, "id": "x"}
	held := &rvCall{done: make(chan struct{})}
	go func() {
		defer close(held.done)
		held.res, held.err = callTool(ctx, c, "up__record", args, "")
	}()
	reviewID := rvWaitPending(t, dsn, 1)[0]

	if err := holder.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.cmd.Process.Signal(syscall.SIGCONT) })
	toolgatetest.EventuallyWithin(t, "the other replica to take the review over", 30*time.Second, func() bool {
		return strings.Contains(taker.stderr.String(), "review taken over from an ended process")
	})
	rvCLI(t, nil, "review", "approve", reviewID, "--db", dsn)
	toolgatetest.EventuallyWithin(t, "the approval to become a grant", 30*time.Second, func() bool {
		return rvAuditRow(t, dsn, reviewID).Status == toolgate.StatusGranted
	})
	if err := holder.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the held call still waits after the stalled replica continued")
	}
	if held.err != nil || !held.res.IsError || !strings.Contains(resultText(held.res), "retry the same call") {
		t.Fatalf("the stalled replica's answer to the held call: %v %+v", held.err, held.res)
	}
	ranX := func() int {
		b, err := os.ReadFile(received)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return strings.Count(string(b), "x\n")
	}
	if n := ranX(); n != 0 {
		t.Fatalf("the stalled replica ran the call on an approval that became a grant (upstream received it %d times)", n)
	}
	if r := rvAuditRow(t, dsn, reviewID); r.Status != toolgate.StatusGranted {
		t.Fatalf("the held call is %s, want granted", r.Status)
	}

	// The retry, in the same session, runs once on the grant.
	if res, err := callTool(ctx, c, "up__record", args, ""); err != nil || res.IsError {
		t.Fatalf("the retry: %v %s", err, resultText(res))
	}
	var grants []audit.Grant
	if err := json.Unmarshal([]byte(rvCLI(t, nil, "grants", "list", "--all", "--db", dsn, "--output", "json")), &grants); err != nil ||
		len(grants) != 1 || grants[0].ReviewID != reviewID || grants[0].Uses != 1 {
		t.Fatalf("grants: %+v %v", grants, err)
	}
	if n := ranX(); n != 1 {
		t.Fatalf("one approval ran the call %d times", n)
	}
	if verify := rvCLI(t, nil, "audit", "verify", "--db", dsn); !strings.HasPrefix(verify, "OK: ") {
		t.Errorf("audit verify: %s", verify)
	}
}
