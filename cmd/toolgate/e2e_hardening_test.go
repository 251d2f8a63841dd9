package main

// Issue 11's attacks on toolgate's own state and secrets, through the real
// binary: the audit log deleted while serving.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeAuditLogGone: once the audit DB is deleted (or moved away) while
// toolgate serves, the next call is refused with a message naming the
// problem and never reaches the upstream; a DB moved back lets calls run
// again.
func TestServeAuditLogGone(t *testing.T) {
	cfg, db := opsConfig(t, allowRules, "", "")
	c, _, _ := startStdio(t, cfg)
	received := filepath.Join(t.TempDir(), "received.log")
	record := func(id string) (string, bool) {
		t.Helper()
		res, err := callTool(t.Context(), c, "up__record", map[string]any{"file": received, "id": id}, "")
		if err != nil {
			t.Fatalf("call %s: %v", id, err)
		}
		return resultText(res), res.IsError
	}
	ran := func(id string) bool {
		b, err := os.ReadFile(received)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return strings.Contains(string(b), id+"\n")
	}
	refused := func(id string) {
		t.Helper()
		msg, isErr := record(id)
		if !isErr || !strings.Contains(msg, "audit log could not record this call, so it was not run") ||
			!strings.Contains(msg, "audit log "+db+" was deleted or replaced while toolgate was running; calls are refused until it is back") {
			t.Errorf("call %s with the audit log gone: isError %v, %q; want a refusal naming the problem", id, isErr, msg)
		}
		if ran(id) {
			t.Errorf("call %s reached the upstream with the audit log gone", id)
		}
	}

	if msg, isErr := record("before"); isErr || !ran("before") {
		t.Fatalf("first call: isError %v, %q", isErr, msg)
	}

	if err := os.Rename(db, db+".aside"); err != nil {
		t.Fatal(err)
	}
	refused("while-moved")
	if err := os.Rename(db+".aside", db); err != nil {
		t.Fatal(err)
	}
	if msg, isErr := record("moved-back"); isErr || !ran("moved-back") {
		t.Fatalf("call with the audit log moved back: isError %v, %q", isErr, msg)
	}

	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(db + suffix); err != nil {
			t.Fatal(err)
		}
	}
	refused("deleted")
	refused("deleted-again")
}
