package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit/pgtest"
	"github.com/toolgate/toolgate/toolgatetest"
)

// A call running when toolgate is killed stays started; it must not hold
// the archive cut back for good: the archive (no server running) and a
// restarted server close it as interrupted, and the archives and the live
// log verify as one chain.
func TestServeKill9ThenArchivePassesTheInterruptedCall(t *testing.T) {
	kill9Archive(t, filepath.Join(t.TempDir(), "audit.db"))
}

func TestServeKill9ThenArchivePassesTheInterruptedCallPostgres(t *testing.T) {
	kill9Archive(t, pgtest.DSN(t))
}

func kill9Archive(t *testing.T, db string) {
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "allow.yaml")
	if err := os.WriteFile(rulesFile, []byte("version: 1\nlabel: recover\ndefault: allow\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auditYAML := fmt.Sprintf("{path: %q}", db)
	if strings.HasPrefix(db, "postgres") {
		auditYAML = fmt.Sprintf("{driver: postgres, dsn: %q}", db)
	}
	received := filepath.Join(dir, "received.log")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up:\n    command: %q\n    timeout: 1h\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: %s\n",
		upstreamBin, rulesFile, auditYAML))

	// killMidCall starts serve, runs a call to its end and another that
	// it kills serve in the middle of (the upstream holds it for an hour).
	killMidCall := func(done, running string) {
		t.Helper()
		srv := durStart(t, cfg)
		tr, err := transport.NewStreamableHTTP(srv.url, transport.WithHTTPLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		c, _ := connect(t, tr)
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		if res, err := callTool(ctx, c, "up__record", map[string]any{"file": received, "id": done}, ""); err != nil || res.IsError {
			t.Fatalf("call %s: %v %v", done, err, res)
		}
		go func() {
			_, _ = callTool(ctx, c, "up__record", map[string]any{"file": received, "id": running, "ms": 3600e3}, "")
		}()
		toolgatetest.EventuallyWithin(t, "the upstream to receive "+running, 30*time.Second, func() bool {
			b, _ := os.ReadFile(received)
			return strings.Contains(string(b), running+"\n")
		})
		if err := srv.cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		<-srv.exited
		if rows := recordRows(t, db); rows[done] != toolgate.StatusOK || rows[running] != toolgate.StatusStarted {
			t.Fatalf("after the kill: %s is %q, %s is %q; want ok and started", done, rows[done], running, rows[running])
		}
	}
	archive := func(name string) string {
		t.Helper()
		before := time.Now().Add(time.Second).UTC().Format(time.RFC3339)
		out := rvCLI(t, nil, "audit", "archive", "--config", cfg, "--db", db, "--before", before, "--to", filepath.Join(dir, name))
		if !strings.Contains(out, "archived 2 calls") || strings.Contains(out, "held back") {
			t.Fatalf("audit archive: %s", out)
		}
		return out
	}

	// No server runs: the archive closes the call (its process is gone)
	// and takes it.
	killMidCall("done-1", "running-1")
	if out := archive("a1.db.gz"); !strings.Contains(out, "closed 1 calls left started by a stopped toolgate as interrupted") {
		t.Fatalf("audit archive did not close the interrupted call: %s", out)
	}

	// A restarted server closes the call its predecessor left at once.
	killMidCall("done-2", "running-2")
	durStart(t, cfg)
	toolgatetest.EventuallyWithin(t, "the restarted server to close running-2", 30*time.Second, func() bool {
		return recordRows(t, db)["running-2"] == toolgate.StatusInterrupted
	})
	if list := rvCLI(t, nil, "audit", "list", "--db", db); !strings.Contains(list, toolgate.StatusInterrupted) {
		t.Errorf("audit list shows no interrupted call:\n%s", list)
	}
	if out := archive("a2.db.gz"); strings.Contains(out, "closed") {
		t.Errorf("audit archive closed a call the server had closed: %s", out)
	}
	verify := rvCLI(t, nil, "audit", "verify", "--db", db, "--archive", filepath.Join(dir, "a1.db.gz"), "--archive", filepath.Join(dir, "a2.db.gz"))
	if !strings.HasPrefix(verify, "OK: 2 archives and the live log verified as one chain") {
		t.Fatalf("audit verify --archive: %s", verify)
	}
}
