package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/audit/pgtest"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// pgConfig is rvConfig with the audit log in a fresh PostgreSQL schema
// (audit.driver postgres); it returns the config's path and the DSN, which
// every audit and review command takes as --db.
func pgConfig(t *testing.T, fs *slackfake.Server, reviewYAML string) (cfgPath, dsn string) {
	t.Helper()
	dsn = pgtest.DSN(t)
	cfgPath, dbPath := rvConfig(t, fs, reviewYAML)
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("audit: {path: %q}", dbPath)
	if !strings.Contains(string(data), old) {
		t.Fatalf("config has no %s:\n%s", old, data)
	}
	data = []byte(strings.Replace(string(data), old, fmt.Sprintf("audit: {driver: postgres, dsn: %q}", dsn), 1))
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dsn
}

// TestServePostgresReplicasSlack: two toolgate processes share one
// PostgreSQL log and one Slack app. Agent A's call waits for review on A;
// Slack delivers the approval to B's connection; B records it and A, told
// by NOTIFY (or its poll), runs the call. The log is one chain, and the
// audit and review commands read it from PostgreSQL.
func TestServePostgresReplicasSlack(t *testing.T) {
	fs := slackfake.New(t)
	cfg, dsn := pgConfig(t, fs, "  timeout: 60s\n  channels: [slack, cli]\n")
	a, _, stderrA := startStdio(t, cfg, rvSlackEnv...)
	fs.WaitConnected()
	connA := fs.ConnectionIDs()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	call := rvStart(a, ctx, "from replica A", "")
	id := rvPostedID(t, fs.WaitPosts(1))

	b, _, stderrB := startStdio(t, cfg, rvSlackEnv...)
	toolgatetest.EventuallyWithin(t, "replica B's Socket Mode connection", 20*time.Second, func() bool { return fs.Connections() == 2 })
	if out := mustCall(t, b, "up__stats", nil); !strings.Contains(out, "pid") {
		t.Fatalf("replica B: %s", out)
	}
	// B answered a call, so its start-up sweep ran: A's review is A's.
	if got := rvWaitPending(t, dsn, 1); got[0] != id {
		t.Fatalf("pending after B started: %v, want [%s]", got, id)
	}
	if !call.pending() {
		t.Fatalf("A's call ended when B started: %s", resultText(call.wait(t)))
	}
	connB := slices.DeleteFunc(fs.ConnectionIDs(), func(c int) bool { return slices.Contains(connA, c) })
	if len(connB) != 1 {
		t.Fatalf("connections: A %v, all %v", connA, fs.ConnectionIDs())
	}
	fs.ClickVia(connB[0], rvClick(rvApprover, review.ActionApprove, id, ""))
	if res := call.wait(t); res.IsError || resultText(res) != "from replica A" {
		t.Fatalf("A's call after B took the approval: isError %v: %s", res.IsError, resultText(res))
	}
	if !strings.Contains(stderrB.String(), "slack verdict stored") || strings.Contains(stderrA.String(), "slack verdict stored") {
		t.Errorf("the click did not reach B alone\nA:\n%s\nB:\n%s", stderrA.String(), stderrB.String())
	}
	r := rvAuditRow(t, dsn, id)
	if rv := r.Review; r.Status != toolgate.StatusOK || rv == nil || !rv.Approved || rv.Reviewer != rvApprover {
		t.Fatalf("audit row: status %s, review %+v", r.Status, r.Review)
	}
	if out := rvCLI(t, nil, "audit", "verify", "--db", dsn); !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("audit verify: %s", out)
	}
	var list []audit.Record
	if err := json.Unmarshal([]byte(rvCLI(t, nil, "audit", "list", "--db", dsn, "--output", "json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("audit list on PostgreSQL: %d rows, %v", len(list), err)
	}
	// The CLI answers reviews in PostgreSQL too: a second call, denied
	// from the command line (the config names the log).
	call2 := rvStart(b, ctx, "from replica B", "")
	id2 := rvPostedID(t, fs.WaitPosts(2))
	rvCLI(t, nil, "review", "deny", id2, "--config", cfg, "--reason", "not now")
	if res := call2.wait(t); !res.IsError {
		t.Fatalf("denied call ran: %s", resultText(res))
	}
	rvCLI(t, nil, "audit", "verify", "--db", dsn)
}

// TestAuditMigrateToPostgres: a SQLite log written by serve is copied into
// PostgreSQL by `toolgate audit migrate`, which verifies the copy; the
// copy then answers the audit commands and takes new calls.
func TestAuditMigrateToPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  channels: [cli]\n")
	c, _, _ := startStdio(t, cfg)
	for range 3 {
		mustCall(t, c, "up__stats", nil)
	}
	c.Close()
	toolgatetest.EventuallyWithin(t, "the SQLite log's 3 calls", 20*time.Second, func() bool {
		var list []audit.Record
		_ = json.Unmarshal([]byte(rvCLI(t, nil, "audit", "list", "--db", db, "--output", "json")), &list)
		return len(list) == 3 && list[2].Status == toolgate.StatusOK
	})
	out := rvCLI(t, nil, "audit", "migrate", "--db", db, "--to", dsn)
	if !strings.Contains(out, "verified: the copy's chain ends at the source's head") || !strings.Contains(out, "calls") {
		t.Fatalf("audit migrate:\n%s", out)
	}
	if strings.Contains(out, "password") {
		t.Fatalf("audit migrate printed a password:\n%s", out)
	}
	src := rvCLI(t, nil, "audit", "verify", "--db", db, "--output", "json")
	cp := rvCLI(t, nil, "audit", "verify", "--db", dsn, "--output", "json")
	var rs, rc struct {
		OK     bool
		Report audit.VerifyReport
	}
	if err := json.Unmarshal([]byte(src), &rs); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(cp), &rc); err != nil {
		t.Fatal(err)
	}
	if !rs.OK || !rc.OK || rs.Report.Head == "" || rc.Report.Head != rs.Report.Head || rc.Report.Calls != 3 {
		t.Fatalf("verify: source %+v, copy %+v", rs, rc)
	}
	// The copy takes new calls, chained after the copied head.
	cfgPG, _ := pgConfig(t, nil, "  timeout: 60s\n  channels: [cli]\n")
	data, err := os.ReadFile(cfgPG)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPG, []byte(regexp.MustCompile(`dsn: "[^"]*"`).ReplaceAllString(string(data), fmt.Sprintf("dsn: %q", dsn))), 0o600); err != nil {
		t.Fatal(err)
	}
	c2, _, _ := startStdio(t, cfgPG)
	mustCall(t, c2, "up__stats", nil)
	c2.Close()
	toolgatetest.EventuallyWithin(t, "the new call in the copy", 20*time.Second, func() bool {
		var list []audit.Record
		_ = json.Unmarshal([]byte(rvCLI(t, nil, "audit", "list", "--db", dsn, "--output", "json")), &list)
		return len(list) == 4
	})
	if out := rvCLI(t, nil, "audit", "verify", "--db", dsn); !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("verify after a new call: %s", out)
	}
	// A second migrate into the same database refuses.
	if out := rvCLIFail(t, "audit", "migrate", "--db", db, "--to", dsn); !strings.Contains(out, "not empty") {
		t.Fatalf("second migrate: %s", out)
	}
}
