package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefaultPackGuardsAuditFiles: server-filesystem runs unsandboxed and
// may write the directory that holds toolgate's audit log (a custom path,
// which no pattern of the pack names). Under the embedded default rules an
// agent that tells it to overwrite the log, SQLite's files beside it or a
// spool, or to read the log, is refused at once as touching toolgate's own
// files (not sent to a review), nothing is overwritten, and the log
// verifies.
func TestDefaultPackGuardsAuditFiles(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, allowAll)
	state := filepath.Join(fx.fsDir, "state")
	mustMkdir(t, state)
	db := filepath.Join(state, "audit.db")
	writeFSConfig(t, fx, fx.fsDir, db)
	c := goStdio(t, fx)
	if text, isErr := goCall(t, c, toolWSRead, map[string]any{"path": "note.txt"}); isErr || text != wsText {
		t.Fatalf("a read the pack allows: %q (isError %v)", text, isErr)
	}
	spools, err := filepath.Glob(db + ".spool/*")
	if err != nil || len(spools) == 0 {
		t.Fatalf("no spool beside the log after a call: %v %v", spools, err)
	}
	before := map[string][]byte{}
	for _, p := range append([]string{db, db + "-wal"}, spools...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		before[p] = b
	}
	for _, p := range []string{db, db + "-wal", db + "-shm", db + "-journal", spools[0], filepath.Join(db+".spool", "0123456789abcdef")} {
		text, isErr := goCall(t, c, "fs__write_file", map[string]any{"path": p, "content": "forged"})
		if !isErr || !strings.Contains(text, "toolgate's own files") {
			t.Errorf("write %s: %q (isError %v), want the pack's refusal", filepath.Base(p), text, isErr)
		}
	}
	if text, isErr := goCall(t, c, toolFSRead, map[string]any{"path": db}); !isErr || strings.Contains(text, "SQLite format") {
		t.Errorf("read the log: %q (isError %v), want a refusal", text, isErr)
	}
	// The refused calls are recorded, "forged" arguments and all; what
	// must not happen is a file replaced by the write, or a spool's
	// records changed (a spool is only appended to, into the zeros
	// allocated after its records).
	for p, b := range before {
		now, err := os.ReadFile(p)
		if err != nil || string(now) == "forged" || strings.HasPrefix(p, db+".spool") && !strings.HasPrefix(string(now), strings.TrimRight(string(b), "\x00")) {
			t.Errorf("%s was overwritten (%d bytes before, %d now, err %v)", p, len(b), len(now), err)
		}
	}
	if _, err := os.Stat(filepath.Join(db+".spool", "0123456789abcdef")); err == nil {
		t.Error("a forged spool was written")
	}
	if out, err := exec.Command(harness.bin, "audit", "verify", "--db", db).CombinedOutput(); err != nil {
		t.Errorf("toolgate audit verify: %v\n%s", err, out)
	}
}

// writeFSConfig writes fx's config: server-filesystem serving fsDir as
// server fs, the built-in tools on fx's workspace, the embedded rules,
// the audit log in db, and reviews answered only on the CLI, within 1s.
func writeFSConfig(t *testing.T, fx *fixture, fsDir, db string) {
	t.Helper()
	cfg := fmt.Sprintf("start_wait: 120s\nservers:\n  fs:\n    command: %q\n    args: [%q]\nworkspace: {enabled: true, root: %q}\naudit: {path: %q}\nreview: {timeout: 1s, channels: [cli]}\n",
		filepath.Join(harness.dir, "node_modules", ".bin", "mcp-server-filesystem"), fsDir, fx.wsDir, db)
	mustWrite(t, fx.config, cfg, 0o644)
}
