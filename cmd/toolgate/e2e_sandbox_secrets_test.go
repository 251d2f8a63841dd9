package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The workspace's own secrets, and a look-alike that holds none.
var wsSecretFiles = map[string]string{
	".env":                 "DATABASE_URL=WS-DOTENV-SECRET",
	"sub/.aws/credentials": "aws_secret_access_key = WS-AWS-SECRET",
	"deploy/tls.pem":       "-----BEGIN PRIVATE KEY----- WS-PEM-SECRET",
	".env.example":         "DATABASE_URL=EXAMPLE-PLACEHOLDER",
}

// wsSecretsSetup is a sandbox fixture whose workspace holds wsSecretFiles.
func wsSecretsSetup(t *testing.T, rulesYAML string) *sbFixture {
	t.Helper()
	f := sbSetup(t, rulesYAML)
	for rel, content := range wsSecretFiles {
		p := filepath.Join(f.ws, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// wsSecretsIntact fails the test unless the workspace's files are on the
// host as they were written.
func (f *sbFixture) wsSecretsIntact(t *testing.T, after string) {
	t.Helper()
	for rel, content := range wsSecretFiles {
		if b, err := os.ReadFile(filepath.Join(f.ws, rel)); err != nil || string(b) != content {
			t.Errorf("after %s, %s on the host is %q, %v; want %q", after, rel, b, err, content)
		}
	}
}

// TestServeSandboxWorkspaceSecretsDefaultPack: with the embedded default
// rules, the commands that read the workspace's .env without naming it
// (python3 -c with a computed name, a computed shell word: both allowed
// without a human) run, and find it empty; the look-alike .env.example is
// read.
func TestServeSandboxWorkspaceSecretsDefaultPack(t *testing.T) {
	f := wsSecretsSetup(t, "")
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)
	for _, cmd := range []string{
		`python3 -c 'print(open(".e"+"nv").read()); print(open("sub/.a"+"ws/credentials").read())'`,
		`cat ${x:-.env} ${y:-sub/.a}ws/credentials ${z:-deploy/tls.p}em`,
	} {
		out, _ := f.run(t, cmd)
		if !strings.Contains(out, "sandbox: ") {
			t.Errorf("%s did not run (the rules no longer allow it, so this test shows nothing):\n%s", cmd, out)
		}
		if strings.Contains(out, "-SECRET") {
			t.Errorf("%s read a workspace secret:\n%s", cmd, out)
		}
	}
	if out, isErr := f.run(t, "cat .env.example"); isErr || !strings.Contains(out, "EXAMPLE-PLACEHOLDER") {
		t.Errorf("the look-alike .env.example is not readable: %s", out)
	}
	f.wsSecretsIntact(t, "the runs")
}

// TestServeSandboxWorkspaceSecrets: with rules that allow everything in
// workspace-write, so what the test sees is the sandbox's doing alone, no
// command reads the workspace's secrets, nor moves, removes, overwrites or
// links them; the file tools refuse them by any name; a secret the agent
// creates is its own.
func TestServeSandboxWorkspaceSecrets(t *testing.T) {
	f := wsSecretsSetup(t, allowAllIn("workspace-write"))
	if err := os.Symlink(".env", filepath.Join(f.ws, "settings.txt")); err != nil {
		t.Fatal(err)
	}
	f.c, _, f.stderr = startStdio(t, f.config(""), f.env()...)
	for _, cmd := range []string{
		`python3 -c 'print(open(".e"+"nv").read()); print(open("sub/.a"+"ws/credentials").read())'`,
		`x=.e; cat ${x}nv sub/.a*/* deploy/*.pem settings.txt; grep -r SECRET . 2>&1`,
		"mv .env moved; cat moved", "rm .env", "rm -rf sub deploy", "ln .env linked; cat linked",
		"echo X > .env", "mv sub/.aws aws; cat aws/credentials", "mv sub sub2; cat sub2/.aws/credentials",
	} {
		out, _ := f.run(t, cmd)
		if strings.Contains(out, "-SECRET") {
			t.Errorf("%s read a workspace secret:\n%s", cmd, out)
		}
		f.wsSecretsIntact(t, cmd)
	}
	if out, isErr := f.run(t, "cat .env.example"); isErr || !strings.Contains(out, "EXAMPLE-PLACEHOLDER") {
		t.Errorf("the look-alike .env.example is not readable: %s", out)
	}
	for _, p := range []string{".env", "settings.txt", "sub/.aws/credentials", "deploy/tls.pem"} {
		res, err := callTool(t.Context(), f.c, "workspace__read_file", map[string]any{"path": p}, "")
		if err != nil {
			t.Fatal(err)
		}
		if !res.IsError || strings.Contains(resultText(res), "-SECRET") {
			t.Errorf("read_file %s was not refused: %s", p, resultText(res))
		}
	}
	if out, isErr := f.run(t, "echo MINE > mine.pem && cat mine.pem"); isErr || !strings.Contains(out, "MINE") {
		t.Errorf("a secret file the agent made is not readable to it: %s", out)
	}
}

// TestServeSandboxWorkspaceSecretsVisible: sandbox.workspace_secrets:
// visible lets runs read the workspace's .env (a dev server that needs
// it), and toolgate says so at start.
func TestServeSandboxWorkspaceSecretsVisible(t *testing.T) {
	f := wsSecretsSetup(t, allowAllIn("read-only"))
	f.c, _, f.stderr = startStdio(t, f.config("sandbox: {workspace_secrets: visible}\n"), f.env()...)
	if out, _ := f.run(t, "cat .env"); !strings.Contains(out, "WS-DOTENV-SECRET") {
		t.Errorf("with workspace_secrets: visible, .env is not readable:\n%s", out)
	}
	if !strings.Contains(f.stderr.String(), "workspace_secrets is visible") {
		t.Errorf("the start log does not say the secrets are visible:\n%s", f.stderr.String())
	}
}

// TestServeSandboxWorkspaceSecretsInGit: a secret-named fixture committed
// to the workspace's git, and one sandbox.workspace_secrets_visible lists,
// are readable in the runs and to the file tools, and git add -A commits
// around the masked ones; the untracked secrets stay masked, refused to
// read_file, and named in a failed run's result; a malformed pattern
// keeps toolgate from starting.
func TestServeSandboxWorkspaceSecretsInGit(t *testing.T) {
	f := wsSecretsSetup(t, allowAllIn("workspace-write"))
	for rel, content := range map[string]string{
		"testdata/server.key": "FIXTURE-KEY-COMMITTED",
		"config/dev.pem":      "DEV-PEM-LISTED",
		".gitignore":          ".env\ndeploy/\nsub/\n",
	} {
		p := filepath.Join(f.ws, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "testdata/server.key"}, {"commit", "-qm", "fixture"}} {
		cmd := exec.Command("git", append([]string{"-C", f.ws, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + f.home, "GIT_CONFIG_NOSYSTEM=1"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	f.c, _, f.stderr = startStdio(t, f.config("sandbox: {workspace_secrets_visible: [config/dev.pem]}\n"), f.env()...)

	if out, isErr := f.run(t, "cat testdata/server.key config/dev.pem"); isErr ||
		!strings.Contains(out, "FIXTURE-KEY-COMMITTED") || !strings.Contains(out, "DEV-PEM-LISTED") {
		t.Errorf("the committed fixture and the listed file are not readable in a run:\n%s", out)
	}
	for p, want := range map[string]string{"testdata/server.key": "FIXTURE-KEY-COMMITTED", "config/dev.pem": "DEV-PEM-LISTED", ".env": ""} {
		res, err := callTool(t.Context(), f.c, "workspace__read_file", map[string]any{"path": p}, "")
		if err != nil {
			t.Fatal(err)
		}
		if text := resultText(res); want == "" && (!res.IsError || strings.Contains(text, "-SECRET")) || want != "" && text != want {
			t.Errorf("read_file %s: %s", p, text)
		}
	}
	out, isErr := f.run(t, "cat .env deploy/tls.pem")
	if !isErr || strings.Contains(out, "-SECRET") ||
		!strings.Contains(out, "toolgate masked these secret files of the workspace in this run, so they could not be read: .env, deploy/tls.pem, sub/.aws") {
		t.Errorf("a run that failed on masked secrets does not name them, or read one:\n%s", out)
	}
	if out, isErr := f.run(t, "git add -A && git commit -qm run && git status --porcelain && git show --stat HEAD"); isErr ||
		!strings.Contains(out, "config/dev.pem") || strings.Contains(out, "?? ") || strings.Contains(out, " M ") {
		t.Errorf("git add -A in a run:\n%s", out)
	}
	f.wsSecretsIntact(t, "the runs")

	cfg := f.config("sandbox: {workspace_secrets_visible: ['config/[z-a].pem']}\n")
	cmd := exec.Command(toolgateBin, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), f.env()...)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "sandbox.workspace_secrets_visible") ||
		!strings.Contains(string(b), "[z-a]") {
		t.Errorf("serve with a malformed pattern: %v\n%s", err, b)
	}
}

// TestServeSandboxWorkspaceSecretHardLink: with the embedded default
// rules, the agent writes a script that creates .env with a placeholder
// and gives it another name (a hard link), and runs it (both allowed
// without a human). The user later puts the real secret into .env in
// place (shell >, vim: same file). The other name must not show it: a
// run that sees the workspace is refused, saying which secret has other
// names, and read_file refuses the other name; once the user removes it,
// runs work again and .env is masked.
func TestServeSandboxWorkspaceSecretHardLink(t *testing.T) {
	f := sbSetup(t, "")
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)
	mustCall(t, f.c, "workspace__write_file", map[string]any{"path": "setup.sh",
		"content": "E=.e\"nv\"; printf 'API_KEY=changeme\\n' > $E; ln $E notes.txt\n"})
	if out, isErr := f.run(t, "sh setup.sh"); isErr {
		t.Fatalf("sh setup.sh failed (the rules no longer allow it, so this test shows nothing):\n%s", out)
	}
	if fi, err := os.Stat(filepath.Join(f.ws, "notes.txt")); err != nil || fi.Sys().(*syscall.Stat_t).Nlink != 2 {
		t.Fatalf("setup.sh did not link .env to notes.txt: %v", err)
	}
	// The user's edit: in place, the file keeps both names.
	if err := os.WriteFile(filepath.Join(f.ws, ".env"), []byte("API_KEY=sk-REAL-SECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := f.run(t, "cat notes.txt")
	if strings.Contains(out, "sk-REAL") {
		t.Errorf("cat notes.txt read the secret through its other name:\n%s", out)
	}
	if !strings.Contains(out, ".env has 2 hard links") {
		t.Errorf("the refused run does not say which secret has other names:\n%s", out)
	}
	res, err := callTool(t.Context(), f.c, "workspace__read_file", map[string]any{"path": "notes.txt"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if text := resultText(res); !res.IsError || strings.Contains(text, "sk-REAL") || !strings.Contains(text, "secret file .env") {
		t.Errorf("read_file notes.txt was not refused as another name for .env: %s", text)
	}
	if err := os.Remove(filepath.Join(f.ws, "notes.txt")); err != nil {
		t.Fatal(err)
	}
	if out, isErr := f.run(t, "cat ${x:-.env}; echo ran"); !strings.Contains(out, "ran") || strings.Contains(out, "sk-REAL") {
		t.Errorf("with the other name gone, a run does not work, or reads .env (error %v):\n%s", isErr, out)
	}
}
