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
	// it kills serve in the middle of (the upstream holds it for an hour),
	// calling whileRunning (if set) before the kill.
	killMidCall := func(done, running string, whileRunning func()) {
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
		toolgatetest.EventuallyWithin(t, done+"'s outcome", 30*time.Second, func() bool {
			return recordRows(t, db)[done] == toolgate.StatusOK
		})
		if whileRunning != nil {
			whileRunning()
		}
		if err := srv.cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		<-srv.exited
		if st := recordRows(t, db)[running]; st != toolgate.StatusStarted {
			t.Fatalf("after the kill: %s is %q, want started", running, st)
		}
	}
	var archives []string
	archive := func(calls int) string {
		t.Helper()
		before := time.Now().Add(time.Second).UTC().Format(time.RFC3339)
		archives = append(archives, filepath.Join(dir, fmt.Sprintf("a%d.db.gz", len(archives))))
		out := rvCLI(t, nil, "audit", "archive", "--config", cfg, "--db", db, "--before", before, "--to", archives[len(archives)-1])
		if !strings.Contains(out, fmt.Sprintf("archived %d calls", calls)) {
			t.Fatalf("audit archive: %s", out)
		}
		return out
	}

	// No server runs: the archive closes the call (its process is gone)
	// and takes it.
	killMidCall("done-1", "running-1", nil)
	if out := archive(2); !strings.Contains(out, "closed 1 calls left started by a stopped toolgate as interrupted") || strings.Contains(out, "held back") {
		t.Fatalf("audit archive did not close the interrupted call: %s", out)
	}

	// While its server lives, a running call is never closed: the cut
	// stops before it. Once it is killed, a restarted server closes the
	// call its predecessor left at once.
	killMidCall("done-2", "running-2", func() {
		if out := archive(1); strings.Contains(out, "closed") || !strings.Contains(out, "held back: call") {
			t.Errorf("audit archive while the call runs: %s", out)
		}
	})
	durStart(t, cfg)
	toolgatetest.EventuallyWithin(t, "the restarted server to close running-2", 30*time.Second, func() bool {
		return recordRows(t, db)["running-2"] == toolgate.StatusInterrupted
	})
	if list := rvCLI(t, nil, "audit", "list", "--db", db); !strings.Contains(list, toolgate.StatusInterrupted) {
		t.Errorf("audit list shows no interrupted call:\n%s", list)
	}
	if out := archive(1); strings.Contains(out, "closed") || strings.Contains(out, "held back") {
		t.Errorf("audit archive after the server closed the call: %s", out)
	}
	verify := rvCLI(t, nil, append([]string{"audit", "verify", "--db", db}, archiveFlags(archives)...)...)
	if !strings.HasPrefix(verify, "OK: 3 archives and the live log verified as one chain") {
		t.Fatalf("audit verify --archive: %s", verify)
	}
}

// archiveFlags is --archive FILE for each of files.
func archiveFlags(files []string) []string {
	var out []string
	for _, f := range files {
		out = append(out, "--archive", f)
	}
	return out
}
