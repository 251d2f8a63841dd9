package workspace

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/toolgate/toolgate/tools/sandbox"
)

// testSandbox returns a sandbox over root with the built-in profiles, the
// explicit "none" profile and env (a minimal one when empty). It needs
// bubblewrap, as toolgate does; the README's test command installs it.
func testSandbox(t testing.TB, root string, env ...string) *sandbox.Sandbox {
	t.Helper()
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		t.Fatalf("bubblewrap is needed to test the workspace tools: %v (apt-get install bubblewrap)", err)
	}
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(env) == 0 {
		env = []string{"PATH=" + DefaultPath, "HOME=/tmp", "LANG=C.UTF-8"}
	}
	sb, err := sandbox.New(sandbox.Options{
		Bwrap:     bwrap,
		Workspace: real,
		Protect:   sandbox.DefaultProtect,
		Env:       env,
		Profiles:  []sandbox.Profile{{Name: sandbox.None, Unsandboxed: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb
}
