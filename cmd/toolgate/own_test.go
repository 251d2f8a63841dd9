package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/rules"
)

// TestOwnFilesDeniedToCalls: with the embedded pack, a call that writes or
// deletes one of toolgate's own files is denied wherever the config puts
// them: the audit log, each of SQLite's files beside it (clobbering the
// WAL loses the transactions not yet checkpointed) and a spool, the rules
// and the config, the archives and every secret file the config names.
// The log here is outside the home directory, where no pattern of the
// pack names it: only the paths serve hands the rules do.
func TestOwnFilesDeniedToCalls(t *testing.T) {
	db := "/srv/toolgate/audit.db"
	cfg := &config.Config{Rules: config.Rules{File: "/etc/toolgate/rules.yaml"}}
	cfg.Audit.ArchiveDir = "/srv/toolgate/archive"
	cfg.Metrics.AuthTokenFile = "/etc/toolgate/metrics.token"
	cfg.HTTP.ReviewerTokenFile = "/etc/toolgate/reviewer.token"
	cfg.Workspace.Root = "/home/u/proj"
	env := mapEnv{"HOME": "/home/u"}
	ws := rulesWorkspace(cfg, env, ownFiles("/etc/toolgate/toolgate.yaml", cfg, db), nil)
	pack := rules.Default().WithWorkspace(ws)
	fsWrite := func(p string) toolgate.Call {
		return toolgate.Call{Server: "fs", Tool: "write_file", Name: "fs__write_file",
			InputSchema: []byte(`{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}}}`),
			Args:        map[string]any{"path": p, "content": "x"}}
	}
	for _, p := range []string{db, db + "-wal", db + "-shm", db + "-journal",
		filepath.Join(db+audit.SpoolSuffix, "0123456789abcdef"), "/etc/toolgate/rules.yaml", "/etc/toolgate/toolgate.yaml",
		"/srv/toolgate/archive/2026-12.tar.gz", "/etc/toolgate/metrics.token", "/etc/toolgate/reviewer.token"} {
		for _, c := range []toolgate.Call{fsWrite(p), {Server: "desktop", Tool: "start_process", Name: "desktop__start_process",
			InputSchema: []byte(`{"type":"object","properties":{"command":{"type":"string"}}}`),
			Args:        map[string]any{"command": "truncate -s 0 " + p}}} {
			if d := pack.Evaluate(context.Background(), c); d.Action != toolgate.Deny {
				t.Errorf("%s %v: %s by %s (%s), want deny", c.Name, c.Args, d.Action, d.Rule, d.Reason)
			}
		}
	}
}
