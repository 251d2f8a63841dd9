package main

// Issue 4's crash proof at the server level: SIGKILL `toolgate serve` while
// agents are calling tools, then check that every call the upstream received
// has its audit row, and that the hash chain still verifies.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/toolgatetest"
)

// durServe is a `toolgate serve --http 127.0.0.1:0` this test owns, so it
// can kill it.
type durServe struct {
	cmd    *exec.Cmd
	stderr *toolgatetest.SyncBuffer
	url    string
	exited chan struct{}
	err    error // set when exited is closed
}

func durStart(t *testing.T, cfgPath string) *durServe {
	t.Helper()
	s := &durServe{stderr: &toolgatetest.SyncBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(toolgateBin, "serve", "--config", cfgPath, "--http", "127.0.0.1:0")
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("toolgate stderr:\n%s", s.stderr.String())
		}
	})
	listening := regexp.MustCompile(`msg=listening url=(http://\S+/mcp)`)
	toolgatetest.EventuallyWithin(t, "toolgate to log its URL", 30*time.Second, func() bool {
		select {
		case <-s.exited:
			t.Fatalf("toolgate exited early: %v\n%s", s.err, s.stderr.String())
		default:
		}
		m := listening.FindStringSubmatch(s.stderr.String())
		if m != nil {
			s.url = m[1]
		}
		return m != nil
	})
	return s
}

// durLines returns the lines of path, waiting until it stops growing (the
// upstream may still be reading requests toolgate wrote before it died).
func durLines(t *testing.T, path string) []string {
	t.Helper()
	var last []byte
	for stable := 0; stable < 3; {
		time.Sleep(200 * time.Millisecond)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) == string(last) {
			stable++
		} else {
			stable, last = 0, b
		}
	}
	return strings.Fields(string(last))
}

func TestServeKill9LeavesEveryForwardedCallRecorded(t *testing.T) {
	// The dead process's spool must hold calls the log does not, for the
	// reader below (audit export) to import them first. The writer imports
	// every 20 ms, so a kill can land just after an import: then the
	// scenario is run again, as it did not reach what it tests.
	var (
		db, received string
		pending      int64
	)
	for attempt := 1; pending == 0; attempt++ {
		if attempt > 3 {
			t.Fatal("in 3 runs the killed toolgate's spool never held anything the log lacked; the test did not reach its recovery")
		}
		db, received, pending = kill9UnderLoad(t, t.TempDir())
	}
	ids := durLines(t, received)
	rows := recordRows(t, db)
	if left, _ := filepath.Glob(filepath.Join(db+audit.SpoolSuffix, "*")); len(left) != 0 {
		t.Errorf("the dead process's spool was not deleted once imported: %v", left)
	}
	inFlight := 0
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("upstream received %s twice", id)
		}
		seen[id] = true
		switch st, ok := rows[id]; {
		case !ok:
			t.Errorf("upstream received %s but the audit log has no row for it", id)
		case st == toolgate.StatusStarted:
			inFlight++
		case st != toolgate.StatusOK:
			t.Errorf("call %s: audit status %q, want started or ok", id, st)
		}
	}
	t.Logf("upstream received %d calls; audit rows %d; %d received calls were in flight (status started) at the kill; %d spooled bytes not yet in the log",
		len(ids), len(rows), inFlight, pending)
	if inFlight == 0 {
		t.Error("no received call was in flight when toolgate was killed; the kill did not land mid-load")
	}

	// verify exits non-zero on a broken chain, which rvCLI reports.
	if verify := rvCLI(t, nil, "audit", "verify", "--db", db); !strings.HasPrefix(verify, "OK: ") ||
		!strings.Contains(verify, fmt.Sprintf("%d calls verified", len(rows))) {
		t.Errorf("audit verify: %s", verify)
	}
}

// kill9UnderLoad starts toolgate with its audit log in dir, has 16
// callers call an upstream that records each call on receipt, SIGKILLs
// toolgate mid-load, and returns the log, the upstream's record of what it
// received, and how many spooled bytes the log lacks.
func kill9UnderLoad(t *testing.T, dir string) (db, received string, pending int64) {
	t.Helper()
	rulesFile := filepath.Join(dir, "allow.yaml")
	if err := os.WriteFile(rulesFile, []byte("version: 1\nlabel: kill9\ndefault: allow\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db = filepath.Join(dir, "audit.db")
	received = filepath.Join(dir, "received.log")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up:\n    command: %q\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n",
		upstreamBin, rulesFile, db))
	srv := durStart(t, cfg)

	// 4 sessions x 4 callers; each call is recorded by the upstream on
	// receipt, then held 50 ms, so calls are in flight when the kill lands.
	const sessions, callers, enough = 4, 4, 150
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for s := range sessions {
		tr, err := transport.NewStreamableHTTP(srv.url, transport.WithHTTPLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		c, _ := connect(t, tr)
		for w := range callers {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					id := fmt.Sprintf("s%d-w%d-%05d", s, w, i)
					res, err := callTool(ctx, c, "up__record", map[string]any{"file": received, "id": id, "ms": 50}, "")
					if err != nil {
						return // toolgate is gone
					}
					if res.IsError {
						t.Errorf("call %s: %s", id, resultText(res))
						return
					}
				}
			})
		}
	}

	toolgatetest.EventuallyWithin(t, fmt.Sprintf("the upstream to receive %d calls", enough), 60*time.Second, func() bool {
		b, _ := os.ReadFile(received)
		return strings.Count(string(b), "\n") >= enough
	})
	if err := srv.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-srv.exited
	if !strings.Contains(fmt.Sprint(srv.err), "killed") {
		t.Errorf("toolgate exit: %v, want killed by SIGKILL", srv.err)
	}
	stop()
	wg.Wait()

	return db, received, spoolPending(t, db)
}

// spoolPending is how many bytes of records the spools of the log at db
// hold beyond what the log records having imported, read without opening
// the log through toolgate (which would import them). A spool is
// allocated ahead and its records end at the zeros after the last one.
func spoolPending(t *testing.T, db string) int64 {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	spools, _ := filepath.Glob(filepath.Join(db+audit.SpoolSuffix, "*"))
	var pending int64
	for _, p := range spools {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var done int64
		if err := raw.QueryRow(`SELECT coalesce(max(imported), 0) FROM spools WHERE name = ?`, filepath.Base(p)).Scan(&done); err != nil {
			t.Fatal(err)
		}
		pending += max(0, int64(len(bytes.TrimRight(b, "\x00")))-done)
	}
	return pending
}

// recordRows maps the id argument of every call of the upstream's record
// tool in the log at db to the call's status (`audit export`).
func recordRows(t *testing.T, db string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	out := rvCLI(t, nil, "audit", "export", "--format", "jsonl", "--db", db)
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			Tool   string
			Status string
			Args   struct{ ID string }
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		if r.Tool == "record" {
			rows[r.Args.ID] = r.Status
		}
	}
	return rows
}
