package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeDefaultPackGitCommondir (F2): with the embedded default rules,
// the agent copies the repository's objects into evil/, writes evil/config
// with a core.fsmonitor command, and points .git/commondir at evil, by
// write_file and by a script run_command runs. Whatever each call's
// outcome, the user's next git status in the workspace runs nothing, and
// git still finds its own config.
func TestServeDefaultPackGitCommondir(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed: %v", err)
	}
	f := sbSetup(t, "")
	userGit := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = f.ws
		cmd.Env = append(os.Environ(), f.env()...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	userGit("init", "-q")
	userGit("add", "-A")
	userGit("commit", "-q", "-m", "first")
	f.startDefaultPack(t)
	marker := filepath.Join(f.dir, "PWNED-commondir")
	write := func(path, content string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := callTool(ctx, f.c, "workspace__write_file", map[string]any{"path": path, "content": content}, "")
		if err != nil {
			t.Fatalf("write_file %s: %v", path, err)
		}
		return resultText(res)
	}

	out, isErr := f.run(t, "mkdir -p evil && cp -r .git/objects .git/refs .git/HEAD evil/")
	if isErr || !strings.Contains(out, "sandbox: workspace-write") {
		t.Fatalf("copying the repository (routine, workspace-write): %s", out)
	}
	t.Logf("evil/config: %s", write("evil/config", "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tfsmonitor = \"touch "+marker+"; false\"\n"))
	t.Logf(".git/commondir by write_file: %s", write(".git/commondir", "../evil\n"))
	t.Logf("the script: %s", write("x.sh", "printf '../evil\\n' > .git/commondir\necho done\n"))
	out, _ = f.run(t, "sh x.sh")
	t.Logf(".git/commondir by a script: %s", out)

	if b, err := os.ReadFile(filepath.Join(f.ws, ".git", "commondir")); err == nil {
		t.Errorf(".git/commondir exists after the calls: %q", b)
	}
	if got := strings.TrimSpace(userGit("rev-parse", "--git-common-dir")); got != ".git" {
		t.Errorf("git's common directory is %q", got)
	}
	userGit("status")
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the user's git status ran the command the agent planted through .git/commondir")
	}
}
