package main

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeSandboxKeepsHostFiles: with the embedded default rules, the
// user creates, on the host while a command of the agent runs, a .github
// with a workflow and a CODEOWNERS, a CLAUDE.md and an .envrc, where none
// was. toolgate cannot tell them from what the run made, so the protected
// ones leave their place (nothing made during a run stays where tools read
// it as code or policy), but nothing is deleted: .github and its
// CODEOWNERS stay where they are (only the protected path itself is
// watched), and the workflow, CLAUDE.md and .envrc are kept in the
// quarantine directory the result names, from where the user can move them
// back.
func TestServeSandboxKeepsHostFiles(t *testing.T) {
	f := sbSetup(t, "")
	if out, err := exec.Command("git", "-C", f.ws, "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)
	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := callTool(ctx, f.c, "workspace__run_command",
			map[string]any{"command": "touch started; while [ ! -e host-done ]; do sleep 0.05; done; echo waited"}, "")
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{text: resultText(res)}
	}()
	for {
		if _, err := os.Stat(filepath.Join(f.ws, "started")); err == nil {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("the command ended before the host wrote: %v %s", r.err, r.text)
		case <-time.After(20 * time.Millisecond):
		}
	}
	files := map[string]string{".github/workflows/ci.yml": "on: push\n", ".github/CODEOWNERS": "* @me\n", "CLAUDE.md": "# mine\n", ".envrc": "use flake\n", "host-done": ""}
	for _, rel := range []string{".github/workflows/ci.yml", ".github/CODEOWNERS", "CLAUDE.md", ".envrc", "host-done"} {
		p := filepath.Join(f.ws, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[rel]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !strings.Contains(r.text, "waited") {
		t.Fatalf("the command did not run to its end: %s", r.text)
	}
	if b, err := os.ReadFile(filepath.Join(f.ws, ".github", "CODEOWNERS")); err != nil || string(b) != "* @me\n" {
		t.Errorf(".github/CODEOWNERS = %q, %v; want it left in place:\n%s", b, err, r.text)
	}
	quarantine := filepath.Join(f.ws, ".toolgate", "quarantine")
	for _, rel := range []string{".github/workflows", "CLAUDE.md", ".envrc"} {
		if _, err := os.Lstat(filepath.Join(f.ws, rel)); err == nil {
			t.Errorf("%s, which appeared during the run, is still in place", rel)
		}
		if !strings.Contains(r.text, "toolgate removed "+filepath.Join(f.ws, rel)+":") {
			t.Errorf("the result does not say %s was taken away:\n%s", rel, r.text)
		}
	}
	kept, _ := filepath.Glob(filepath.Join(quarantine, "2*"))
	if len(kept) != 1 {
		t.Fatalf("quarantine holds %q, want one directory for the run", kept)
	}
	if !strings.Contains(r.text, "it is kept in "+kept[0]) {
		t.Errorf("the result does not say where they went (%s):\n%s", kept[0], r.text)
	}
	for _, rel := range []string{".github/workflows/ci.yml", "CLAUDE.md", ".envrc"} {
		if b, err := os.ReadFile(filepath.Join(kept[0], rel)); err != nil || string(b) != files[rel] {
			t.Errorf("kept %s = %q, %v; want %q", rel, b, err, files[rel])
		}
	}
	// git does not offer what was kept for a commit.
	if out, err := exec.Command("git", "-C", f.ws, "status", "--porcelain", "--untracked-files=all").CombinedOutput(); err != nil || strings.Contains(string(out), "quarantine") {
		t.Errorf("git status lists the quarantine (%v):\n%s", err, out)
	}
	// A later command can neither read the kept .envrc (a secret name,
	// masked there too) nor change it.
	rel, _ := filepath.Rel(f.ws, filepath.Join(kept[0], ".envrc"))
	out, _ := f.run(t, `python3 -c "
n=`+hexName(rel)+`
print('read:', open(n).read())
open(n,'w').write('PWNED')"`)
	if !strings.Contains(out, "sandbox: ") || strings.Contains(out, "use flake") {
		t.Errorf("a later run did not run, or read the kept .envrc:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(kept[0], ".envrc")); string(b) != files[".envrc"] {
		t.Errorf("a later run changed the kept .envrc to %q", b)
	}
}

// hexName is Python that yields name, which the rules do not see in it.
func hexName(name string) string {
	return "bytes.fromhex('" + hex.EncodeToString([]byte(name)) + "').decode()"
}

// TestServeSandboxSymlinkedModuleConfig: with the embedded default rules, a
// command (allowed: the names it writes are computed) makes a submodule git
// directory whose config is a link to README.md, which the agent may write.
// What a run makes under .git/modules goes to the quarantine when it ends,
// and the result says so. The same link made on the host cannot be held by
// a mount, so every later writable run is refused until it is gone, and
// the refusal says a command may have made it and what to remove; once
// the user removes it, runs start again.
func TestServeSandboxSymlinkedModuleConfig(t *testing.T) {
	f := sbSetup(t, "")
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)
	h := hexName
	out, isErr := f.run(t, `python3 -c "import os; j=os.path.join; d=`+h(".git/modules/x")+`; [os.makedirs(j(d, s), exist_ok=True) for s in ('objects','refs')]; `+
		`open(j(d, 'HEAD'),'w').write('ref: refs/heads/main'); os.symlink(`+h("../../../README.md")+`, j(d, 'con'+'fig')); print('made')"`)
	if !strings.Contains(out, "made") {
		t.Fatalf("the command did not run (the rules no longer allow it, so this test shows nothing):\n%s", out)
	}
	if modules := filepath.Join(f.ws, ".git", "modules"); !isErr || !strings.Contains(out, "toolgate removed "+modules) {
		t.Errorf("the run that made .git/modules/x: isError %v, want %s taken away in:\n%s", isErr, modules, out)
	}
	x := filepath.Join(f.ws, ".git", "modules", "x")
	link := filepath.Join(x, "config")
	if err := os.MkdirAll(x, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(x, "HEAD"), []byte("ref: refs/heads/main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../README.md", link); err != nil {
		t.Fatal(err)
	}
	out, isErr = f.run(t, "echo ok > notes.txt")
	for _, want := range []string{"is a symlink", "A command of the agent may have made it", "rm " + link} {
		if !isErr || !strings.Contains(out, want) {
			t.Errorf("the next run: isError %v, want %q in:\n%s", isErr, want, out)
		}
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if out, isErr := f.run(t, "echo ok > notes.txt"); isErr {
		t.Errorf("a run after the user removed the link failed:\n%s", out)
	}
}

// TestServeSandboxGitlinkRepository: with the embedded default rules, the
// agent puts a repository of its own at a submodule's path (attack round
// 18: git init --separate-git-dir and git add, a .gitmodules with ignore =
// none only in the index, a filter in the separate git directory's config). After the
// run that changed the index, toolgate takes the submodule's .git into the
// quarantine and says so, and git status at the root, run as an
// unsandboxed shell server runs it (with toolgate's command-line git
// config), runs no filter of the agent's.
func TestServeSandboxGitlinkRepository(t *testing.T) {
	f := sbSetup(t, "")
	if err := os.RemoveAll(filepath.Join(f.ws, ".git")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "first"}} {
		if out, err := exec.Command("git", append([]string{"-C", f.ws, "-c", "user.name=u", "-c", "user.email=u@x"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v %s", args, err, out)
		}
	}
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)
	marker := filepath.Join(f.dir, "hook-ran")
	out, _ := f.run(t, "git init -q --separate-git-dir=gd lib && cd lib && echo x > R && git add R && "+
		"git -c user.name=u -c user.email=u@x commit -qm i && cd .. && git add lib && git ls-files -s")
	if !strings.Contains(out, "160000") {
		t.Fatalf("the command did not add the gitlink (the rules no longer allow it, so this test shows nothing):\n%s", out)
	}
	dotGit := filepath.Join(f.ws, "lib", ".git")
	if !strings.Contains(out, "toolgate removed "+dotGit+":") {
		t.Errorf("the result does not say %s was taken away:\n%s", dotGit, out)
	}
	if _, err := os.Lstat(dotGit); err == nil {
		t.Errorf("%s is still in place", dotGit)
	}
	kept, _ := filepath.Glob(filepath.Join(f.ws, ".toolgate", "quarantine", "2*", "lib", "dot-git"))
	if len(kept) != 1 {
		t.Errorf("the quarantine holds %q, want lib/dot-git", kept)
	}
	// The rest of the plant, as round 18 did it: a script puts the
	// .gitmodules in the index.
	mk := "import subprocess\n" +
		"gm='[submodule \"lib\"]\\n\\tpath = lib\\n\\turl = ./lib\\n\\tignore = none\\n'\n" +
		"oid=subprocess.run(['git','hash-object','-w','--stdin'],input=gm,capture_output=True,text=True,check=True).stdout.strip()\n" +
		"subprocess.run(['git','update-index','--add','--cacheinfo','100644,%s,.gitmodules'%oid],check=True)\n" +
		"print(subprocess.run(['git','show',':.gitmodules'],capture_output=True,text=True).stdout)\n"
	for path, content := range map[string]string{
		"mk.py":              mk,
		"gd/config":          "[core]\n\trepositoryformatversion = 0\n\tbare = false\n[filter \"x\"]\n\tclean = \"sh -c 'touch " + marker + "; cat'\"\n",
		"lib/.gitattributes": "R filter=x\n",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		res, err := callTool(ctx, f.c, "workspace__write_file", map[string]any{"path": path, "content": content}, "")
		cancel()
		if err != nil || res.IsError {
			t.Fatalf("write_file %s: %v %s", path, err, resultText(res))
		}
	}
	if out, _ := f.run(t, "python3 mk.py && touch lib/R"); !strings.Contains(out, "ignore = none") {
		t.Fatalf("the command did not put .gitmodules in the index:\n%s", out)
	}
	if f.serverStatusRan(t, marker) {
		t.Error("git status at the root ran the filter the agent planted in a submodule's git directory")
	}
}

// TestServeSandboxGitlinkGitDirectoryHeld: with the embedded default
// rules, the agent appends a filter to the config of a repository the user
// keeps at a submodule's path with its .git a directory (attack round 19,
// F3: the index left alone, .gitmodules asking for the submodule). The run
// finds the config read-only, and git status at the root, run as an
// unsandboxed shell server runs it, runs no filter of the agent's.
func TestServeSandboxGitlinkGitDirectoryHeld(t *testing.T) {
	f := sbSetup(t, "")
	if err := os.RemoveAll(filepath.Join(f.ws, ".git")); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(f.ws, "lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	for path, content := range map[string]string{
		"lib/R":       "r\n",
		".gitmodules": "[submodule \"lib\"]\n\tpath = lib\n\turl = ./lib\n\tignore = none\n",
	} {
		if err := os.WriteFile(filepath.Join(f.ws, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"-C", lib, "init", "-q"}, {"-C", lib, "add", "R"}, {"-C", lib, "commit", "-q", "-m", "r"},
		{"-C", f.ws, "init", "-q"}, {"-C", f.ws, "add", "-A"}, {"-C", f.ws, "commit", "-q", "-m", "first"}} {
		if out, err := exec.Command("git", append([]string{"-c", "user.name=u", "-c", "user.email=u@x"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v %s", args, err, out)
		}
	}
	if out, _ := exec.Command("git", "-C", f.ws, "ls-files", "-s", "lib").CombinedOutput(); !strings.HasPrefix(string(out), "160000") {
		t.Fatalf("lib is not a gitlink:\n%s", out)
	}
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)
	marker := filepath.Join(f.dir, "filter-ran")
	plant := "[filter \"x\"]\n\tclean = \"sh -c 'touch " + marker + "; cat'\"\n"
	out, _ := f.run(t, `python3 -c "
for n, s in ((`+hexName("lib/.git/config")+`, `+hexName(plant)+`), (`+hexName("lib/.gitattributes")+`, 'R filter=x\n')):
    try:
        open(n, 'a').write(s); print('wrote', n)
    except OSError as e:
        print('refused', e)
"`)
	if !strings.Contains(out, "refused [Errno 30] Read-only file system") || !strings.Contains(out, "wrote lib/.gitattributes") {
		t.Errorf("the run did not find lib/.git/config read-only (or did not run):\n%s", out)
	}
	later := time.Now().Add(2 * time.Second) // R's new mtime makes it stat-dirty
	if err := os.Chtimes(filepath.Join(lib, "R"), later, later); err != nil {
		t.Fatal(err)
	}
	if f.serverStatusRan(t, marker) {
		t.Error("git status at the root ran the filter the agent appended to the config of the repository at a submodule's path")
	}
}

// serverStatusRan runs git status at the workspace's root as an
// unsandboxed shell server does (with toolgate's command-line git config)
// and reports whether marker exists after.
func (f *sbFixture) serverStatusRan(t *testing.T, marker string) bool {
	t.Helper()
	status := exec.Command("git", "status", "--short")
	status.Dir = f.ws
	status.Env = append(os.Environ(), "HOME="+f.home, "GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=diff.ignoreSubmodules",
		"GIT_CONFIG_VALUE_0=all", "GIT_CONFIG_KEY_1=core.fsmonitor", "GIT_CONFIG_VALUE_1=false")
	if b, err := status.CombinedOutput(); err != nil {
		t.Fatalf("git status: %v %s", err, b)
	}
	_, err := os.Lstat(marker)
	return err == nil
}
