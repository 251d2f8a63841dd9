package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeSandboxIgnoresWorkspaceOnPATH: a directory of the workspace on
// toolgate's PATH (an activated .venv, direnv's PATH_add) holds a bwrap
// and a git an agent's command wrote there. toolgate runs neither (it
// would run them unconfined, as the user): it leaves that directory out
// of its PATH, says so, and sandboxes the call with the real bwrap.
func TestServeSandboxIgnoresWorkspaceOnPATH(t *testing.T) {
	realBwrap, err := exec.LookPath("bwrap")
	if err != nil {
		t.Skip("bwrap not installed")
	}
	f := sbSetup(t, allowAllIn("workspace-write"))
	bin := filepath.Join(f.ws, ".venv", "bin")
	marker := filepath.Join(f.dir, "PWNED")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, real := range map[string]string{"bwrap": realBwrap, "git": "/usr/bin/git"} {
		script := fmt.Sprintf("#!/bin/sh\necho %s >> %s\nexec %s \"$@\"\n", name, marker, real)
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := f.config("")
	f.c, _, f.stderr = startStdio(t, cfg, append(f.env(), "PATH="+bin+string(filepath.ListSeparator)+os.Getenv("PATH"))...)
	if text, isErr := f.run(t, "echo sandboxed > made.txt"); isErr {
		t.Fatalf("run_command: %s", text)
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Fatalf("toolgate ran the workspace's %s", b)
	}
	if log := f.stderr.String(); !strings.Contains(log, "left out of toolgate's PATH") || !strings.Contains(log, bin) ||
		!strings.Contains(log, "bwrap="+realBwrap) {
		t.Fatalf("toolgate's log does not say it left %s out, or names another bwrap:\n%s", bin, log)
	}
}
