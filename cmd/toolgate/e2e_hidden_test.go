package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeHiddenPathsSecretOutsideSandbox attacks, as an agent, a path
// the config hides from the sandbox (sandbox.hide) through a server that
// does not run in it: its read tool and a file: resource. Both are denied
// as secret under the embedded default rules, and the file's content does
// not reach the agent; its neighbour is served.
func TestServeHiddenPathsSecretOutsideSandbox(t *testing.T) {
	f := sbSetup(t, "version: 1\nrules: []\n")
	hidden, shown := filepath.Join(f.ws, "config", "prod.txt"), filepath.Join(f.ws, "config", "dev.txt")
	if err := os.MkdirAll(filepath.Dir(hidden), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, body := range map[string]string{hidden: "prod-password-xyz", shown: "dev settings"} {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(f.dir, "var", "audit.db")
	cfg := writeFile(t, filepath.Dir(f.rules), "toolgate.yaml", fmt.Sprintf("servers:\n  files:\n    command: %q\n    args: [--files]\n"+
		"workspace: {enabled: false, root: %q}\naudit: {path: %q}\nreview: {timeout: 1s, channels: [cli]}\nsandbox: {hide: [%q]}\n",
		upstreamBin, f.ws, db, hidden))
	c, _, _ := startStdio(t, cfg, f.env()...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	res, err := callTool(ctx, c, "files__read", map[string]any{"path": hidden}, "")
	if err != nil {
		t.Fatal(err)
	}
	if text := resultText(res); !res.IsError || !strings.Contains(text, "deny-secret-paths") || strings.Contains(text, "prod-password") {
		t.Errorf("read tool: %.200q", text)
	}
	if text, err := readResource(t, c, "file://"+hidden); err == nil || !strings.Contains(err.Error(), "deny-secret-resources") || strings.Contains(text, "prod-password") {
		t.Errorf("resource: %.80q, %v; want a refusal by deny-secret-resources", text, err)
	}
	res, err = callTool(ctx, c, "files__read", map[string]any{"path": shown}, "")
	if err != nil {
		t.Fatal(err)
	}
	if text := resultText(res); res.IsError || text != "dev settings" {
		t.Errorf("read of the file beside it: %.200q", text)
	}
}
