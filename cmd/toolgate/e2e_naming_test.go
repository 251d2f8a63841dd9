package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/tools"
)

// fixtureLongName is testdata/upstream's 90-character tool name (--fidelity).
var fixtureLongName = "a_tool_name_that_goes_on_" + strings.Repeat("and_on_", 8) + "_until_90"

var claudeToolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// TestNamingE2E: through the built binary, an unprefixed server's tools keep
// their names, names Claude refuses (90 characters, '.', '/') are exposed
// shortened and valid, a call by the exposed name reaches the upstream
// under its own name, the audit row holds both names, and `tools names`
// prints the mapping.
func TestNamingE2E(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	allow := filepath.Join(dir, "allow.yaml")
	cfg := writeConfig(t, fmt.Sprintf(`servers:
  up: {command: %q, args: [--fidelity], prefix: false}
  other: {command: %q}
workspace: {enabled: false}
rules: {file: %q}
audit: {path: %q}
`, upstreamBin, upstreamBin, allow, db))
	if err := os.WriteFile(allow, []byte("version: 1\nlabel: naming\ndefault: allow\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	c, _, _ := startStdio(t, cfg)
	listed := rawTools(t, c)
	want := map[string]string{ // exposed -> upstream name
		"echo":        "echo",
		"other__echo": "echo",
		tools.ExposedName("up", "__", fixtureLongName, false): fixtureLongName,
		tools.ExposedName("up", "__", "files.read", false):    "files.read",
		tools.ExposedName("up", "__", "repo/list", false):     "repo/list",
	}
	for name := range listed {
		if !claudeToolName.MatchString(name) {
			t.Errorf("listed tool name %q is not valid for Claude", name)
		}
	}
	for exposed := range want {
		if _, ok := listed[exposed]; !ok {
			t.Errorf("%q not listed; have %d tools", exposed, len(listed))
		}
	}
	long := tools.ExposedName("up", "__", fixtureLongName, false)
	if len(long) != tools.MaxNameLen || !strings.HasPrefix(long, fixtureLongName[:40]) {
		t.Errorf("90-character name exposed as %q", long)
	}
	if got := mustCall(t, c, long, nil); got != "long" {
		t.Errorf("%s returned %q, want long", long, got)
	}
	dotted := tools.ExposedName("up", "__", "files.read", false)
	if got := mustCall(t, c, dotted, nil); got != "files.read" {
		t.Errorf("%s returned %q, want files.read", dotted, got)
	}

	// The audit row maps the exposed name to the server's own.
	waitForRows := func() map[string][2]string {
		rows := map[string][2]string{}
		for _, r := range records(t, db) {
			if r.Outcome != nil {
				rows[r.Name] = [2]string{r.Server, r.Tool}
			}
		}
		return rows
	}
	var rows map[string][2]string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if rows = waitForRows(); len(rows) == 2 {
			break
		}
	}
	if rows[long] != [2]string{"up", fixtureLongName} || rows[dotted] != [2]string{"up", "files.read"} {
		t.Errorf("audit rows (exposed -> server, tool) = %v", rows)
	}

	// tools names prints the same mapping.
	var names []struct{ Exposed, Server, Tool, How string }
	if err := json.Unmarshal([]byte(rvCLI(t, nil, "tools", "names", "--config", cfg, "--output", "json")), &names); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	how := map[string]string{}
	for _, n := range names {
		got[n.Exposed] = n.Tool
		how[n.Exposed] = n.How
	}
	for exposed, orig := range want {
		if got[exposed] != orig {
			t.Errorf("tools names: %q -> %q, want %q", exposed, got[exposed], orig)
		}
	}
	if how["echo"] != "unchanged" || how["other__echo"] != "prefixed" || how[long] != "renamed" {
		t.Errorf("tools names how = %v", how)
	}
}

// TestNamingCollisionRefused: two unprefixed servers exposing one name is
// refused at start, naming both servers and the tool; so is tools names.
func TestNamingCollisionRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf(`servers:
  one: {command: %q, prefix: false}
  two: {command: %q, prefix: false}
workspace: {enabled: false}
audit: {path: %q}
`, upstreamBin, upstreamBin, filepath.Join(dir, "audit.db")))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, args := range [][]string{{"serve", "--config", cfg}, {"tools", "names", "--config", cfg}} {
		cmd := exec.CommandContext(ctx, toolgateBin, args...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("toolgate %s succeeded with colliding names:\n%s", args[0], out)
		}
		msg := string(out)
		if !strings.Contains(msg, `tool name "echo" is listed by server "one" (tool "echo") and by server "two" (tool "echo"): neither is exposed`) {
			t.Errorf("toolgate %s: error does not name both servers and the tool:\n%s", args[0], msg)
		}
	}
}
