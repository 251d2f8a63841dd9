package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeRelativePathsWhereTheServerRuns: an unsandboxed stdio server
// that runs outside workspace.root (here toolgate's own directory, which
// holds its config and audit log, as a service's often does) opens a
// relative path there. The embedded default rules judge the path the
// server opens: "toolgate.yaml" and "audit.db" are toolgate's own files
// and denied, not workspace files that allow-workspace-reads allows, and
// "ws/notes.txt" is the workspace file it names.
func TestServeRelativePathsWhereTheServerRuns(t *testing.T) {
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "notes.txt"), []byte("workspace notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "toolgate.yaml")
	body := fmt.Sprintf("servers:\n  up: {command: %q, cwd: %q}\nworkspace: {enabled: false, root: %q}\naudit: {path: %q}\nreview: {timeout: 2s}\n",
		upstreamBin, dir, ws, filepath.Join(dir, "audit.db"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, _ := startStdio(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []string{"toolgate.yaml", "audit.db", "./audit.db-wal"} {
		res, err := callTool(ctx, c, "up__read", map[string]any{"path": p}, "")
		if err != nil {
			t.Fatal(err)
		}
		if text := resultText(res); !res.IsError || !strings.Contains(text, "refused") || strings.Contains(text, "servers:") {
			t.Errorf("read %s: %s; want it denied as toolgate's own file", p, text)
		}
	}
	res, err := callTool(ctx, c, "up__read", map[string]any{"path": "ws/notes.txt"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if text := resultText(res); res.IsError || !strings.Contains(text, "workspace notes") {
		t.Errorf("read ws/notes.txt: %s; want the workspace file read", text)
	}
}

// TestServeEveryCommandArgumentRead: a shell server's tool that runs a
// post_command after its command has both read by the embedded default
// rules: a secret read in the second is denied as in the first, and
// nothing of it reaches the agent; two harmless ones still run.
func TestServeEveryCommandArgumentRead(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("API_KEY=sk-live-123"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, _ := startStdio(t, shellServerConfig(t, dir))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := callTool(ctx, c, "sh__exec", map[string]any{"command": "ls", "post_command": "cat .env"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if text := resultText(res); !res.IsError || !strings.Contains(text, "deny-secret-paths") || strings.Contains(text, "sk-live") {
		t.Errorf("post_command cat .env: %s; want it denied by deny-secret-paths", text)
	}
	res, err = callTool(ctx, c, "sh__exec", map[string]any{"command": "echo first", "post_command": "echo second"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if text := resultText(res); res.IsError || !strings.Contains(text, "first\nsecond") {
		t.Errorf("two echo commands: %s; want both run", text)
	}
}

// TestServeOptionSpellingsRunNothing: commands on an unsandboxed shell
// server that run code or read a secret through an option's spelling
// (an abbreviation, a value in the option's own word, a list file) are
// refused, and do nothing.
func TestServeOptionSpellingsRunNothing(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		".env":        "API_KEY=sk-live-123\n",
		"payload.txt": strings.Repeat("touch PWNED-sort\n", 4096), // past sort -S 1k: it spills, through --co
		"list":        ".env\x00",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A bare repository the agent made below the root (in a sandbox, where
	// it runs nothing), whose config runs a command wherever git finds it.
	plantBareRepository(t, filepath.Join(dir, "evil"), dir, filepath.Join(dir, "PWNED-git"))
	c, _, _ := startStdio(t, shellServerConfig(t, dir))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, command := range []string{
		"git -C evil status",
		"sort --co=sh -S 1k payload.txt",
		`env -S'sh -c "touch PWNED-env"' true`,
		"sort --files0-from=list",
		"date -f.env",
	} {
		res, err := callTool(ctx, c, "sh__exec", map[string]any{"command": command}, "")
		if err != nil {
			t.Fatal(err)
		}
		if text := resultText(res); !res.IsError || strings.Contains(text, "sk-live") {
			t.Errorf("%s: %s; want it refused", command, text)
		}
	}
	for _, f := range []string{"PWNED-sort", "PWNED-env", "PWNED-git"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s exists: a refused command ran", f)
		}
	}
	res, err := callTool(ctx, c, "sh__exec", map[string]any{"command": "sort payload.txt"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if text := resultText(res); res.IsError || !strings.Contains(text, "touch PWNED-sort") {
		t.Errorf("sort payload.txt: %s; want it run", text)
	}
}

// shellServerConfig writes a config with one unsandboxed shell server (the
// test upstream's exec tool) run in dir, the workspace, and a review that
// nobody answers in time.
func shellServerConfig(t *testing.T, dir string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "toolgate.yaml")
	body := fmt.Sprintf("servers:\n  sh: {command: %q, args: [--shell], cwd: %q}\nworkspace: {enabled: false, root: %q}\naudit: {path: %q}\nreview: {timeout: 1s}\n",
		upstreamBin, dir, dir, filepath.Join(filepath.Dir(cfg), "audit.db"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestServeGitUsesNoPlantedBareRepository: git in a stdio server toolgate
// starts takes no bare repository it finds where it runs (an agent can make
// one with git init --bare, and its config runs code); here the rules allow
// git status, run at the workspace's root, which such a repository is.
func TestServeGitUsesNoPlantedBareRepository(t *testing.T) {
	dir := t.TempDir()
	evil := filepath.Join(dir, "evil")
	marker := filepath.Join(dir, "PWNED")
	plantBareRepository(t, evil, evil, marker)
	c, _, _ := startStdio(t, shellServerConfig(t, evil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := callTool(ctx, c, "sh__exec", map[string]any{"command": "git status"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("git status ran the planted repository's fsmonitor: %s", resultText(res))
	}
	if text := resultText(res); !strings.Contains(text, "safe.bareRepository") {
		t.Errorf("git status: %s; want git's refusal of the bare repository", text)
	}
}

// TestServeGitRunsNoPlantedSubmoduleConfig: a submodule whose git
// directory the agent made (git init --separate-git-dir, git add) has a
// config that runs code (core.fsmonitor, a clean filter); git status and
// git diff at the workspace's root, which the rules allow, must not run it.
func TestServeGitRunsNoPlantedSubmoduleConfig(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "PWNED")
	lib := filepath.Join(dir, "lib")
	gitIn(t, dir, "init", "-q")
	gitIn(t, dir, "commit", "-q", "--allow-empty", "-m", "root")
	gitIn(t, dir, "init", "-q", "--separate-git-dir=gd", "lib")
	if err := os.WriteFile(filepath.Join(lib, "R"), []byte("r"), 0o600); err != nil {
		t.Fatal(err)
	}
	gitIn(t, lib, "add", "R")
	gitIn(t, lib, "commit", "-q", "-m", "lib")
	gitIn(t, dir, "add", "lib")
	run := "touch " + marker
	gitIn(t, dir, "config", "-f", "gd/config", "core.fsmonitor", run+"; false")
	gitIn(t, dir, "config", "-f", "gd/config", "filter.x.clean", "sh -c '"+run+"; cat'")
	if err := os.WriteFile(filepath.Join(lib, ".gitattributes"), []byte("* filter=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, _ := startStdio(t, shellServerConfig(t, dir))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, command := range []string{"git status", "git diff"} {
		later := time.Now().Add(2 * time.Second) // R's new mtime makes it stat-dirty
		if err := os.Chtimes(filepath.Join(lib, "R"), later, later); err != nil {
			t.Fatal(err)
		}
		res, err := callTool(ctx, c, "sh__exec", map[string]any{"command": command}, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError {
			t.Fatalf("%s: %s; want it run", command, resultText(res))
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%s ran the planted submodule's config: %s", command, resultText(res))
		}
	}
}

// gitIn runs git in dir as a user named u; the test fails if it fails.
func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=u", "-c", "user.email=u@example.com"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// plantBareRepository makes evil (absolute) a bare repository, as an agent
// can in a sandbox, whose config makes git at worktree touch marker
// (core.fsmonitor) wherever git takes it for its repository.
func plantBareRepository(t *testing.T, evil, worktree, marker string) {
	t.Helper()
	gitIn(t, filepath.Dir(evil), "init", "-q", "--bare", evil)
	for _, kv := range [][2]string{{"core.bare", "false"}, {"core.worktree", worktree}, {"core.fsmonitor", "touch " + marker + "; false"}} {
		gitIn(t, filepath.Dir(evil), "config", "-f", filepath.Join(evil, "config"), kv[0], kv[1])
	}
}

// TestServeServerStartsOutsideTheWorkspace: the agent's client starts
// toolgate in the project, the workspace, whose files the agent's
// commands write. A stdio server without cwd starts in the home
// directory instead, so what it loads from its directory (npx's
// ./node_modules, python -m's modules; here a file its tool reads by a
// relative path) is not the agent's; a cwd set in the workspace is warned
// about.
func TestServeServerStartsOutsideTheWorkspace(t *testing.T) {
	dir := t.TempDir()
	ws, home := filepath.Join(dir, "ws"), filepath.Join(dir, "home")
	for d, text := range map[string]string{ws: "planted by the agent", home: "the user's"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "where.txt"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// start serves up with extra (more of its YAML fields) and reads
	// where.txt through it.
	start := func(command, extra string) (string, *toolgatetest.SyncBuffer) {
		t.Helper()
		c, stderr := serveAllowAll(t, dir, ws, home, command, extra)
		res, err := callTool(t.Context(), c, "up__read", map[string]any{"path": "where.txt"}, "")
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		return resultText(res), stderr
	}
	const warning = "this server's cwd is in a path a sandboxed command can write"
	if text, stderr := start(upstreamBin, ""); !strings.Contains(text, "the user's") || strings.Contains(stderr.String(), warning) {
		t.Fatalf("a server without cwd read %q; want the home directory's file, and no warning\n%s", text, stderr)
	}
	for _, cwd := range []string{ws, "."} {
		if text, stderr := start(upstreamBin, fmt.Sprintf(", cwd: %q", cwd)); !strings.Contains(text, "planted by the agent") || !strings.Contains(stderr.String(), warning) {
			t.Fatalf("a server with its cwd %s in the workspace read %q, or was not warned about:\n%s", cwd, text, stderr)
		}
	}
	// Profile none is no sandbox: such a server starts in the home too.
	if text, stderr := start(upstreamBin, ", sandbox: none"); !strings.Contains(text, "the user's") {
		t.Fatalf("a server in profile none read %q; want the home directory's file\n%s", text, stderr)
	}
	// A relative command is the one in the server's directory, never the
	// agent's of that name in the workspace.
	srv, marker := filepath.Join(dir, "srv"), filepath.Join(dir, "PWNED")
	for d, bin := range map[string]string{srv: "#!/bin/sh\nexec " + upstreamBin + " \"$@\"\n", ws: "#!/bin/sh\ntouch " + marker + "\nexec " + upstreamBin + " \"$@\"\n"} {
		if err := os.MkdirAll(filepath.Join(d, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "bin", "server"), []byte(bin), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// (srv holds no where.txt: the server's read fails there.)
	if text, stderr := start("./bin/server", fmt.Sprintf(", cwd: %q", srv)); !strings.Contains(text, "no such file") {
		t.Fatalf("./bin/server with its cwd outside the workspace read %q; want srv's where.txt, which is not there\n%s", text, stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("./bin/server ran the workspace's bin/server")
	}
}

// TestServeWarnsAboutServerArgsAndEnvInTheWorkspace: an unsandboxed stdio
// server's args and env that name a path the agent can write (a script,
// a module on PYTHONPATH, a file NODE_OPTIONS requires, a library for
// LD_PRELOAD) are warned about at start, as its cwd and command are; its
// options, a served directory, and paths outside the workspace are not.
func TestServeWarnsAboutServerArgsAndEnvInTheWorkspace(t *testing.T) {
	dir := t.TempDir()
	ws, home, srv := filepath.Join(dir, "ws"), filepath.Join(dir, "home"), filepath.Join(dir, "srv")
	for _, d := range []string{filepath.Join(ws, "lib"), home, srv} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// start serves up with extra (more of its YAML fields) and returns
	// serve's stderr once it serves.
	start := func(extra string) string {
		t.Helper()
		c, stderr := serveAllowAll(t, dir, ws, home, upstreamBin, extra)
		toolgatetest.EventuallyWithin(t, "toolgate serving", 10*time.Second, func() bool { return strings.Contains(stderr.String(), "toolgate serving") })
		_ = c.Close()
		return stderr.String()
	}
	const warning = "names a path a sandboxed command can write"
	for _, c := range []struct{ extra, field string }{
		{fmt.Sprintf(", args: [\"-name\", \"up\", %q]", filepath.Join(ws, "server.py")), "args[2]"},
		{fmt.Sprintf(", cwd: %q, args: [\"-name\", \"up\", \"../ws/server.py\"]", srv), "args[2]"},
		{fmt.Sprintf(", args: [\"-name\", \"up\", \"--\", \"--directory\", %q, \"run\", \"server.py\"]", ws), "args[4]"},
		{fmt.Sprintf(", env: {PYTHONPATH: %q}", "/usr/lib/python3:"+filepath.Join(ws, "lib")), "env.PYTHONPATH"},
		{fmt.Sprintf(", env: {NODE_OPTIONS: %q}", "--require "+filepath.Join(ws, "x.js")), "env.NODE_OPTIONS"},
		{fmt.Sprintf(", env: {LD_PRELOAD: %q}", filepath.Join(ws, "x.so")), "env.LD_PRELOAD"},
		// Profile none is no sandbox.
		{fmt.Sprintf(", sandbox: none, args: [%q]", filepath.Join(ws, "server.py")), "args[0]"},
	} {
		if stderr := start(c.extra); !strings.Contains(stderr, "this server's "+c.field+" "+warning) {
			t.Errorf("a server with%s was not warned about its %s:\n%s", c.extra, c.field, stderr)
		}
	}
	for _, extra := range []string{
		fmt.Sprintf(", args: [\"-name\", \"up\", \"--\", \"--port\", \"3\", %q, %q]", filepath.Join(srv, "server.py"), ws),
		fmt.Sprintf(", env: {LANG: C, PYTHONPATH: %q, DATA_DIR: %q}", srv, ws),
		// A sandboxed server runs confined, with what it loads.
		fmt.Sprintf(", sandbox: workspace-write, args: [%q], env: {PYTHONPATH: %q}", filepath.Join(ws, "server.py"), filepath.Join(ws, "lib")),
	} {
		if stderr := start(extra); !strings.Contains(stderr, "toolgate serving") || strings.Contains(stderr, warning) {
			t.Errorf("a server with%s was warned about, or did not start:\n%s", extra, stderr)
		}
	}
}

// serveAllowAll starts toolgate serve, as the agent's client would from
// the workspace ws with HOME home, on a config in dir whose server up runs
// command with extra (more of its YAML fields) and whose rules allow
// everything; it returns the connected client and serve's stderr.
func serveAllowAll(t *testing.T, dir, ws, home, command, extra string) (*client.Client, *toolgatetest.SyncBuffer) {
	t.Helper()
	rulesFile, cfg := filepath.Join(dir, "allow.yaml"), filepath.Join(dir, "toolgate.yaml")
	body := fmt.Sprintf("servers:\n  up: {command: %q%s}\nworkspace: {enabled: true}\nrules: {file: %q}\naudit: {path: %q}\nsandbox: {profiles: {none: {}}}\n",
		command, extra, rulesFile, filepath.Join(dir, "audit.db"))
	for f, text := range map[string]string{rulesFile: "version: 1\ndefault: allow\nrules: []\n", cfg: body} {
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stderr := &toolgatetest.SyncBuffer{}
	tr := transport.NewStdioWithOptions(toolgateBin, nil, []string{"serve", "--config", cfg},
		transport.WithCommandStderrWriter(stderr),
		transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Dir, cmd.Env = ws, append(os.Environ(), "HOME="+home)
			return cmd, nil
		}))
	c, _ := connectAs(t, tr, serveTestClient)
	return c, stderr
}
