package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeCaseTwinKeysRefused: a server that decodes its arguments into a
// struct (the test upstream's run_script, as typed mcp-go handlers do)
// takes a key's value from any key equal to it but for letter case, the
// last one (Go's encoding/json), while the rules read keys as spelled. With
// the embedded rules, a read-only script is allowed and runs; the same
// call with a twin key holding another script (spelled with a long s, or
// capitals) is refused, and so is a workdir under a key spelled with a
// Kelvin sign or in capitals alone, at the top or in an object argument, which the rules do not read as the
// declared workdir: nothing runs, and the log records the refusals.
func TestServeCaseTwinKeysRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := shellServerConfig(t, dir)
	c, _, _ := startStdio(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := callTool(ctx, c, "sh__run_script", map[string]any{"script": "echo hi"}, "")
	if err != nil || res.IsError || strings.TrimSpace(resultText(res)) != "hi" {
		t.Fatalf("echo hi: %v %s; want it allowed and run", err, resultText(res))
	}
	marker := filepath.Join(dir, "PWNED")
	calls := []map[string]any{{"script": "pwd", "wor\u212adir": "/"}, {"script": "pwd", "WORKDIR": "/"},
		{"script": "pwd", "options": map[string]any{"WorkDir": "/"}}}
	for _, twin := range []string{"\u017fcript", "SCRIPT", "Script"} {
		calls = append(calls, map[string]any{"script": "echo hi", twin: "touch " + marker})
	}
	for _, args := range calls {
		res, err := callTool(ctx, c, "sh__run_script", args, "")
		if err != nil {
			t.Fatal(err)
		}
		if text := resultText(res); !res.IsError || !strings.Contains(text, "read such keys otherwise than the rules") {
			t.Errorf("%v: %s; want the call refused, saying why", args, text)
		}
		if _, err := os.Stat(marker); err == nil || strings.TrimSpace(resultText(res)) == "/" {
			t.Fatalf("%v: the script under the other key ran", args)
		}
	}
	list := rvCLI(t, nil, "audit", "list", "--db", filepath.Join(filepath.Dir(cfg), "audit.db"))
	if n := strings.Count(list, "toolgate:arguments"); n != len(calls) {
		t.Errorf("audit list shows %d refusals by toolgate:arguments, want %d:\n%s", n, len(calls), list)
	}
}
