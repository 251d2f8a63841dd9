package main

import (
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/toolgatetest"
)

// tgRun runs the built toolgate binary and returns its combined output and
// whether it exited 0.
func tgRun(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	out, err := exec.Command(toolgateBin, args...).CombinedOutput()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatal(err)
	}
	return string(out), err == nil
}

// attackerRewrite is someone who can write the DB: an edit, then every
// event's hash recomputed, so that plain `audit verify` passes.
func attackerRewrite(t *testing.T, path, edit string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TRIGGER events_no_update;` + edit); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT seq, call_id, kind, at, body FROM events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	type event struct {
		seq, at        int64
		id, kind, body string
	}
	var evs []event
	for rows.Next() {
		var e event
		if err := rows.Scan(&e.seq, &e.id, &e.kind, &e.at, &e.body); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	rows.Close()
	// Format 2 (audit/chain.go): sha256(prev || "2\x00" || call_id || "\x00" ||
	// kind || "\x00" || at || "\x00" || body), stored raw; no prev_hash.
	var prev []byte
	for _, e := range evs {
		sum := sha256.Sum256(fmt.Appendf(prev, "2\x00%s\x00%s\x00%d\x00%s", e.id, e.kind, e.at, e.body))
		if _, err := db.Exec(`UPDATE events SET prev_hash = '', hash = ? WHERE seq = ?`, sum[:], e.seq); err != nil {
			t.Fatal(err)
		}
		prev = sum[:]
	}
}

// TestCheckpointCLI: keygen, checkpoint and verify --checkpoints through
// the built binary; a rewrite of the whole chain passes plain verify and
// fails verify --checkpoints; so does a forged checkpoint.
func TestCheckpointCLI(t *testing.T) {
	db := auditDB(t)
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(keys, "ckpt.key")
	out, ok := tgRun(t, "audit", "keygen", "--out", key)
	if !ok || !strings.Contains(out, "key id:") {
		t.Fatalf("keygen: %s", out)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	if out, ok := tgRun(t, "audit", "keygen", "--out", key); ok {
		t.Fatalf("keygen overwrote the key: %s", out)
	}
	published := filepath.Join(keys, "checkpoints.jsonl")
	for range 2 {
		if out, ok := tgRun(t, "audit", "checkpoint", "--key", key, "--db", db); !ok || !strings.Contains(out, `"sig":`) {
			t.Fatalf("checkpoint: %s", out)
		}
	}
	verify := func() (string, bool) {
		return tgRun(t, "audit", "verify", "--db", db, "--checkpoints", published, "--pubkey", key+".pub")
	}
	if out, ok := verify(); !ok || !strings.HasPrefix(out, "OK: 2 checkpoints") {
		t.Fatalf("verify --checkpoints on a clean log: %s", out)
	}

	attackerRewrite(t, db, `UPDATE events SET body = replace(body, '"by":"U-bob"', '"by":"U-mallory"') WHERE call_id = '01JNQX0004AAAAAAAAAAAAAAAA';`)
	if out, ok := tgRun(t, "audit", "verify", "--db", db); !ok {
		t.Fatalf("the attacker's rewrite should pass plain verify:\n%s", out)
	}
	if out, ok := verify(); ok || !strings.Contains(out, "log rewritten since") {
		t.Fatalf("verify --checkpoints after a rewrite:\n%s", out)
	}

	// A forged checkpoint: the attacker edits the published head.
	body, _ := os.ReadFile(published)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	forged := filepath.Join(t.TempDir(), "forged.jsonl")
	f := strings.Replace(lines[1], `"head":"`, `"head":"00`, 1)
	if err := os.WriteFile(forged, []byte(f+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, ok = tgRun(t, "audit", "verify", "--db", db, "--checkpoints", forged, "--pubkey", key+".pub")
	if ok || !strings.Contains(out, "signature does not verify") {
		t.Fatalf("verify a forged checkpoint:\n%s", out)
	}
}

// TestServeCheckpoints: serve signs a checkpoint on shutdown and publishes
// it; a key inside the workspace stops serve from starting.
func TestServeCheckpoints(t *testing.T) {
	f := sbSetup(t, allowAllIn("read-only"))
	key := filepath.Join(f.home, ".config", "toolgate", "ckpt.key")
	if out, ok := tgRun(t, "audit", "keygen", "--out", key); !ok {
		t.Fatal(out)
	}
	published := filepath.Join(f.dir, "published.jsonl")
	cfg := f.config("audit: {checkpoint: {key_file: " + key + ", interval: 1h, publish: [" + published + "]}}\n")
	cmd := exec.Command(toolgateBin, "serve", "--config", cfg, "--http", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), f.env()...)
	var stderr toolgatetest.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toolgatetest.EventuallyWithin(t, "toolgate to listen", 30*time.Second, func() bool { return strings.Contains(stderr.String(), "msg=listening") })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	out, ok := tgRun(t, "audit", "verify", "--db", f.db, "--checkpoints", published, "--pubkey", key+".pub")
	if !ok || !strings.HasPrefix(out, "OK: 1 checkpoints") {
		t.Fatalf("verify serve's shutdown checkpoint: %s\nserve:\n%s", out, stderr.String())
	}

	inWS := filepath.Join(f.ws, "ckpt.key")
	if out, ok := tgRun(t, "audit", "keygen", "--out", inWS); !ok {
		t.Fatal(out)
	}
	cfg = f.config("audit: {checkpoint: {key_file: " + inWS + "}}\n")
	cmd = exec.Command(toolgateBin, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), f.env()...)
	o, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(o), "checkpoint key "+inWS) {
		t.Fatalf("serve started with its checkpoint key in the workspace (%v):\n%s", err, o)
	}
}

// TestCheckpointWebhook: a checkpoint is POSTed to a webhook target as the
// same JSON line the file target gets; a webhook that refuses it is an
// error, while the checkpoint is still stored in the log.
func TestCheckpointWebhook(t *testing.T) {
	db := auditDB(t)
	key := filepath.Join(t.TempDir(), "k")
	if _, err := audit.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	var got []byte
	status := http.StatusNoContent
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook got %s %s", r.Method, r.Header.Get("Content-Type"))
		}
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
	}))
	defer hook.Close()
	st, err := audit.Open(t.Context(), db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	file := filepath.Join(t.TempDir(), "c.jsonl")
	cp, err := newCheckpointer(st, config.Checkpoint{KeyFile: key, Publish: []string{hook.URL, file}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cp.checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	line, _ := os.ReadFile(file)
	if c.Seq != 27 || string(got)+"\n" != string(line) {
		t.Fatalf("webhook got %s; file has %s", got, line)
	}
	status = http.StatusInternalServerError
	if _, err := cp.checkpoint(t.Context()); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("refused webhook: %v", err)
	}
	if all, err := st.Checkpoints(t.Context()); err != nil || len(all) != 2 {
		t.Fatalf("stored checkpoints: %d, %v", len(all), err)
	}
	if _, err := newCheckpointer(st, config.Checkpoint{KeyFile: key, Publish: []string{"slack"}}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("publish: slack accepted")
	}
}
