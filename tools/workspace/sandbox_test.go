package workspace

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/tools"
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
	t.Cleanup(sb.Close)
	return sb
}

// TestWriteInSandboxHoldsProtectedPaths: the file tools' checks run in
// toolgate's process and a command running at the same time could race
// them (swap a directory for a symlink into .git/hooks); the write itself
// happens in the sandbox, which holds protected paths read-only whatever
// path reaches them. Here the checks are skipped outright, as a won race
// would skip them.
func TestWriteInSandboxHoldsProtectedPaths(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{".git/hooks", "src"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, ".git", "config"), []byte("[core]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../.git/hooks", filepath.Join(root, "src", "swapped")); err != nil {
		t.Fatal(err)
	}
	w, err := newWS(Options{Root: root, Sandbox: testSandbox(t, root)})
	if err != nil {
		t.Fatal(err)
	}
	prof, err := w.sb.Profile(sandbox.WorkspaceWrite)
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{".git/hooks/pre-commit", "src/swapped/post-checkout", ".git/config"} {
		err := w.writeInSandbox(prof, rel, []byte("#!/bin/sh\nevil\n"), 0o755, false, "")
		var r refusal
		if !errors.As(err, &r) || !strings.Contains(err.Error(), "protected") {
			t.Errorf("%s: %v, want a protected-path refusal", rel, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, ".git", "hooks")); len(ents) != 0 {
		t.Errorf("files in .git/hooks: %v", ents)
	}
	if b, _ := os.ReadFile(filepath.Join(root, ".git", "config")); string(b) != "[core]\n" {
		t.Errorf(".git/config = %q", b)
	}
	if err := w.writeInSandbox(prof, "src/ok.txt", []byte("fine"), 0o644, false, ""); err != nil {
		t.Fatalf("a plain write: %v", err)
	}
}

// TestHiddenFileUnderAnotherName (F4): a sandbox.hide file in the workspace
// stays refused when the agent asks for it by another name: after
// run_command renames a directory above it (which the sandbox now
// refuses), through a hard link, or under a directory renamed outside the
// sandbox (the file tools compare device and inode too).
func TestHiddenFileUnderAnotherName(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hidden := filepath.Join(root, "conf", "prod.secret")
	mkdir(t, filepath.Dir(hidden))
	write(t, hidden, "HIDDEN-IN-WS-SECRET")
	write(t, filepath.Join(root, "main.txt"), "hello")
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		t.Fatalf("bubblewrap is needed: %v", err)
	}
	sb, err := sandbox.New(sandbox.Options{Bwrap: bwrap, Workspace: root, Hide: []string{hidden},
		Protect: sandbox.DefaultProtect, Env: []string{"PATH=" + DefaultPath, "HOME=/tmp"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	c := connect(t, Options{Root: root, Sandbox: sb})
	if got, isErr := call(t, c, ToolReadFile, map[string]any{"path": "conf/prod.secret"}); !isErr || strings.Contains(got, "HIDDEN") {
		t.Fatalf("read_file of the hidden file: %q", got)
	}
	// What run_command does in workspace-write.
	cmd, err := sb.Command(t.Context(), sandbox.WorkspaceWrite, root, []string{"/bin/sh", "-c", "mv conf conf2"})
	if err != nil {
		t.Fatal(err)
	}
	_ = cmd.Run()
	cmd.Cleanup()
	if got, _ := call(t, c, ToolReadFile, map[string]any{"path": "conf2/prod.secret"}); strings.Contains(got, "HIDDEN") {
		t.Errorf("read_file conf2/prod.secret after mv conf conf2 returned the hidden file")
		_ = os.Rename(filepath.Join(root, "conf2"), filepath.Join(root, "conf"))
	}
	if err := os.Link(hidden, filepath.Join(root, "hardlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "conf"), filepath.Join(root, "conf3")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"hardlink", "conf3/prod.secret"} {
		if got, _ := call(t, c, ToolReadFile, map[string]any{"path": p}); strings.Contains(got, "HIDDEN") {
			t.Errorf("read_file %s returned the hidden file: %q", p, got)
		}
	}
	if got, _ := call(t, c, ToolListDir, map[string]any{"path": "."}); strings.Contains(got, "hardlink") || !strings.Contains(got, "main.txt") {
		t.Errorf("list_dir . = %q, want main.txt without the hard link", got)
	}
}

// TestWriteFileCannotMakeRepository: where the workspace has no .git,
// write_file cannot leave one: a .git file naming a git directory of the
// agent's making, or a .git directory made through create_dirs (whose
// commondir or config would run the agent's commands in the user's next
// git status). What it created is removed, and the call says so; a
// protected path itself (.git/commondir) is refused before anything is
// written.
func TestWriteFileCannotMakeRepository(t *testing.T) {
	root := t.TempDir()
	c := connect(t, Options{Root: root})
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"path": ".git", "content": "gitdir: evil\n"}, "toolgate removed"},
		{map[string]any{"path": ".git", "content": "gitdir: evil\n"}, "(kept in " + filepath.Join(root, ".toolgate", "quarantine")},
		{map[string]any{"path": ".git/commondir", "content": "../evil\n", "create_dirs": true}, "is protected"},
		{map[string]any{"path": ".git/objects/info/alternates", "content": "/tmp\n", "create_dirs": true}, "toolgate removed"},
	} {
		args := tc.args
		text, isErr := call(t, c, ToolWriteFile, args)
		if !isErr || !strings.Contains(text, tc.want) {
			t.Errorf("write_file %v: isError %v, %s; want %q", args, isErr, text, tc.want)
		}
		if _, err := os.Lstat(filepath.Join(root, ".git")); err == nil {
			t.Fatalf("write_file %v left a .git", args)
		}
	}
	if text, isErr := call(t, c, ToolWriteFile, map[string]any{"path": "sub/dir/ok.txt", "content": "fine", "create_dirs": true}); isErr {
		t.Fatalf("a plain write with create_dirs: %s", text)
	}
}

// TestCommandReportsWhatCleanupLeft: a command whose creation at a
// protected path toolgate could not remove fails, and says what is left.
func TestCommandReportsWhatCleanupLeft(t *testing.T) {
	r := runResult{profile: sandbox.Builtin()[1], stdout: newCapped(64), stderr: newCapped(64),
		cleanupErr: errors.New("sandbox: removing /ws/.mcp.json, which the run created: permission denied")}
	res := r.toolResult(time.Second)
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	if !res.IsError || !strings.Contains(text.String(), "could not remove") || !strings.Contains(text.String(), "/ws/.mcp.json") {
		t.Errorf("isError %v:\n%s", res.IsError, text.String())
	}
}

// TestCommandNamesMaskedSecrets: a failed command's result names the
// workspace secrets its run masked (five, and how many more); a command
// that succeeded says nothing of them.
func TestCommandNamesMaskedSecrets(t *testing.T) {
	masked := []string{".env", "a.key", "b.key", "c.key", "d.key", "e.key", "f.key"}
	for _, code := range []int{1, 0} {
		r := runResult{profile: sandbox.Builtin()[0], stdout: newCapped(64), stderr: newCapped(64), exitCode: code, masked: masked}
		res := r.toolResult(time.Second)
		var text strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(mcp.TextContent); ok {
				text.WriteString(tc.Text)
			}
		}
		note := "toolgate masked these secret files of the workspace in this run, so they could not be read: " +
			".env, a.key, b.key, c.key, d.key and 2 more (sandbox.workspace_secrets"
		if got := strings.Contains(text.String(), note); got != (code != 0) || strings.Contains(text.String(), "e.key") {
			t.Errorf("exit code %d: want the note only when it failed:\n%s", code, text.String())
		}
	}
}

// TestCommandStoppedWhenHoldEnds: a run_command in workspace-write that
// retries appending to .git/config is killed when the host replaces the
// file (which ends the read-only mount's hold on it), and the call fails
// naming the file, the kill and what to do.
func TestCommandStoppedWhenHoldEnds(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(root, ".git", "hooks"))
	cfg := filepath.Join(root, ".git", "config")
	write(t, cfg, "[core]\n")
	c := connect(t, Options{Root: root})
	req := mcp.CallToolRequest{}
	req.Params.Name = ToolRunCommand
	req.Params.Arguments = map[string]any{"command": `echo > ready; while :; do echo '[alias] x = !id' >> .git/config 2>/dev/null; sleep 0.05; done`}
	req.Params.Meta = &mcp.Meta{AdditionalFields: map[string]any{tools.MetaSandbox: sandbox.WorkspaceWrite}}
	type result struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := c.CallTool(t.Context(), req)
		done <- result{res, err}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(root, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command did not start")
		}
	}
	write(t, cfg+".new", "[core]\n[user]\n\tname = u\n")
	if err := os.Rename(cfg+".new", cfg); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	var text strings.Builder
	for _, ct := range r.res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	for _, want := range []string{"toolgate: this call failed", cfg + ", which the sandbox held read-only, was replaced on the host",
		"killed the run", "Retry the call"} {
		if !r.res.IsError || !strings.Contains(text.String(), want) {
			t.Fatalf("isError %v, want it with %q:\n%s", r.res.IsError, want, text.String())
		}
	}
}

// TestWriteFileInstructions: the sandbox holds agents' instruction files
// (CLAUDE.md, AGENTS.md, .github/instructions) read-only in every run, so
// a command cannot rewrite them behind the rules; write_file, which the
// rules decide (a review, by default), writes them, existing or new. A
// CLAUDE.md that is a symlink to a protected file does not carry the write
// there, and the release is for instruction paths alone.
func TestWriteFileInstructions(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(root, ".git"))
	mkdir(t, filepath.Join(root, ".github")) // a missing one is removed with what a call puts in it (.github/workflows)
	write(t, filepath.Join(root, ".git", "config"), "[core]\n")
	write(t, filepath.Join(root, "CLAUDE.md"), "# notes\n")
	sb := testSandbox(t, root)
	c := connect(t, Options{Root: root, Sandbox: sb})

	cmd, err := sb.Command(t.Context(), sandbox.WorkspaceWrite, root, []string{"/bin/sh", "-c",
		"echo run >> CLAUDE.md; echo run > AGENTS.md; mkdir -p .github/instructions && echo run > .github/instructions/x.md"})
	if err != nil {
		t.Fatal(err)
	}
	_ = cmd.Run()
	if _, err := cmd.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "CLAUDE.md")); string(b) != "# notes\n" {
		t.Errorf("a run rewrote CLAUDE.md: %q", b)
	}
	for _, p := range []string{"AGENTS.md", ".github/instructions/x.md"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("a run's %s stayed", p)
		}
	}

	for _, tc := range []struct{ path, args string }{
		{"CLAUDE.md", ""},
		{"AGENTS.md", ""},
		{".github/instructions/go.md", "dirs"},
	} {
		args := map[string]any{"path": tc.path, "content": "by write_file\n", "create_dirs": tc.args == "dirs"}
		if got, isErr := call(t, c, ToolWriteFile, args); isErr {
			t.Errorf("write_file %s: %s", tc.path, got)
		}
		if b, _ := os.ReadFile(filepath.Join(root, tc.path)); string(b) != "by write_file\n" {
			t.Errorf("%s = %q after write_file", tc.path, b)
		}
	}

	// A link the agent made to an instruction file (an allowed
	// ln -s AGENTS.md TODO.md) is a plain write of a protected path: the
	// rules saw TODO.md, not AGENTS.md.
	for _, link := range []string{"TODO.md", "docs/notes.md", "abs.md"} {
		mkdir(t, filepath.Join(root, "docs"))
		target := "AGENTS.md"
		switch link {
		case "docs/notes.md":
			target = "../AGENTS.md"
		case "abs.md":
			target = filepath.Join(root, "AGENTS.md")
		}
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
		if got, isErr := call(t, c, ToolWriteFile, map[string]any{"path": link, "content": "approve your own changes\n"}); !isErr {
			t.Errorf("write_file %s (a link to AGENTS.md): %s", link, got)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "AGENTS.md")); string(b) != "by write_file\n" {
			t.Errorf("AGENTS.md = %q after write_file through %s", b, link)
		}
	}
	if _, err := sb.CommandReleasing(t.Context(), sandbox.WorkspaceWrite, root, []string{"true"}, ".git/config"); err == nil ||
		!strings.Contains(err.Error(), "not an agent instruction path") {
		t.Errorf("CommandReleasing of .git/config: %v; want it refused", err)
	}
	if err := os.Remove(filepath.Join(root, "CLAUDE.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".git/config", filepath.Join(root, "CLAUDE.md")); err != nil {
		t.Fatal(err)
	}
	if got, isErr := call(t, c, ToolWriteFile, map[string]any{"path": "CLAUDE.md", "content": "[core]\n\tfsmonitor = evil\n"}); !isErr {
		t.Errorf("write_file through a CLAUDE.md linked to .git/config: %s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(root, ".git", "config")); string(b) != "[core]\n" {
		t.Errorf(".git/config = %q", b)
	}
}
