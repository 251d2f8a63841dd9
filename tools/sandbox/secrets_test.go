package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testSecret stands for the rules' secret class (package rules imports this
// one): .env files but not .env.example, *.key, and .aws directories.
func testSecret(rel string) bool {
	base := strings.ToLower(path.Base(rel))
	return base == ".env" || base == ".aws" || strings.HasSuffix(base, ".key")
}

// secretsFixture is a workspace holding secrets, harmless look-alikes and
// a secret in a skipped directory, and a sandbox that masks the secrets.
type secretsFixture struct {
	*fixture
	base string
}

// The contents of the workspace's files; the SECRET- ones must never be
// read inside.
var secretFiles = map[string]string{
	".env":                  "SECRET-DOTENV",
	".env.example":          "EXAMPLE-VISIBLE",
	"sub/.aws/credentials":  "SECRET-AWS",
	"sub/.aws/config":       "SECRET-AWS-CONFIG",
	"deep/a/b/c/Server.KEY": "SECRET-KEY",
	"sub/notes.txt":         "NOTES-VISIBLE",
	"node_modules/p/.env":   "SKIPPED-VISIBLE",
	".git/.env":             "SKIPPED-GIT-VISIBLE",
}

func newSecretsFixture(t *testing.T) *secretsFixture {
	t.Helper()
	f := newFixture(t)
	for rel, content := range secretFiles {
		p := filepath.Join(f.ws, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, p, content)
	}
	// A loop, a link out, and a secret name that is a link to a file that
	// is not: the walk follows none of them, and masks no link (a mount
	// would mask what it points to).
	for link, target := range map[string]string{"sub/up": "..", "root": "/", "link.key": "sub/notes.txt"} {
		if err := os.Symlink(target, filepath.Join(f.ws, link)); err != nil {
			t.Fatal(err)
		}
	}
	o := f.sb.o
	o.Secret = testSecret
	// A profile without the workspace that mounts part of it.
	o.Profiles = append(o.Profiles, Profile{Name: "reads-sub", Workspace: NoAccess, Read: []string{filepath.Join(f.ws, "sub")}})
	f.sb = newSandbox(t, o)
	return &secretsFixture{fixture: f, base: filepath.Dir(f.ws)}
}

// TestWorkspaceSecretsMasked: in both built-in profiles, a secret file of
// the workspace reads as empty and a secret directory as empty, whichever
// way the command reaches them (a name the rules could read, a computed
// word, a glob, a program); look-alikes, other files and skipped
// directories stay readable.
func TestWorkspaceSecretsMasked(t *testing.T) {
	f := newSecretsFixture(t)
	reads := []string{
		"cat .env sub/.aws/credentials sub/.aws/config deep/a/b/c/Server.KEY",
		`x=.e; cat ${x}nv; cat $(printf 'sub/.a%s/credentials' ws)`,
		"cat .e?v */.aws/* deep/*/*/*/*.KEY; grep -r SECRET . 2>&1",
		"tar cf - . 2>/dev/null | strings",
		"ls -la sub/.aws; find . -name '*.KEY' -size +0",
		"cat sub/up/.env sub/up/sub/.aws/credentials; cat root" + f.ws + "/.env",
	}
	if py, err := os.Stat("/usr/bin/python3"); err == nil && !py.IsDir() {
		reads = append(reads, `python3 -c 'print(open(".e"+"nv").read())'`)
	}
	out, code := f.run(t, "reads-sub", "cat "+filepath.Join(f.ws, "sub", "notes.txt")+" "+filepath.Join(f.ws, "sub", ".aws", "*"))
	if !strings.Contains(out, "NOTES-VISIBLE") || strings.Contains(out, "SECRET-") {
		t.Errorf("a profile that reads part of the workspace (exit %d):\n%s", code, out)
	}
	for _, profile := range []string{ReadOnly, WorkspaceWrite} {
		for _, script := range reads {
			out, _ := f.run(t, profile, script)
			if strings.Contains(out, "SECRET-") {
				t.Errorf("%s: %s read a secret:\n%s", profile, script, out)
			}
		}
		out, code := f.run(t, profile, "cat .env.example sub/notes.txt node_modules/p/.env .git/.env; test ! -s .env && test -e .env && test -d sub/.aws && test -z \"$(ls -A sub/.aws)\"")
		for _, want := range []string{"EXAMPLE-VISIBLE", "NOTES-VISIBLE", "SKIPPED-VISIBLE", "SKIPPED-GIT-VISIBLE"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("%s: want %s, an empty .env and an empty sub/.aws (exit %d):\n%s", profile, want, code, out)
			}
		}
	}
}

// TestWorkspaceSecretsStayPut: in workspace-write, a masked secret cannot
// be renamed, removed, overwritten, truncated, hard-linked or replaced, nor
// the directories above it renamed; after every attempt the host's files
// are as they were. A secret a run creates is its own to read.
func TestWorkspaceSecretsStayPut(t *testing.T) {
	f := newSecretsFixture(t)
	attacks := []string{
		"mv .env x", "mv -f .env x", "rm .env", "rm -f .env", "rm -rf sub deep",
		"ln .env x", "cp -l .env x", "link .env x",
		"echo y > .env", ": > .env", "truncate -s 0 .env", "chmod 000 .env", "touch -d 2000-01-01 .env",
		"echo y > z && mv -f z .env", "echo y > z && ln -f z .env",
		"mv sub/.aws x", "rm -rf sub/.aws", "touch sub/.aws/new", "mv sub/.aws/credentials x",
		"mv sub sub2", "mv deep/a x", "mv deep/a/b/c/Server.KEY x",
	}
	for _, script := range attacks {
		out, code := f.run(t, WorkspaceWrite, "("+script+") 2>&1; cat x sub2/.aws/credentials 2>/dev/null; exit 0")
		if code != 0 || strings.Contains(out, "SECRET-") {
			t.Errorf("%s read a secret:\n%s", script, out)
		}
		for rel, content := range secretFiles {
			if !strings.HasPrefix(content, "SECRET-") {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(f.ws, rel)); err != nil || string(b) != content {
				t.Fatalf("after %q, %s on the host is %q, %v; want %q", script, rel, b, err, content)
			}
		}
	}
	out, code := f.run(t, WorkspaceWrite, "echo MINE > new.key && cat new.key")
	if code != 0 || !strings.Contains(out, "MINE") {
		t.Errorf("a secret the run made is not readable (exit %d):\n%s", code, out)
	}
	// The next run masks it: it existed when the run started.
	if out, _ := f.run(t, ReadOnly, "cat new.key"); strings.Contains(out, "MINE") {
		t.Errorf("an existing secret was read:\n%s", out)
	}
}

// TestWorkspaceSecretsFailClosed: a workspace the walk cannot search whole
// (too many entries, a directory toolgate cannot read, nesting too deep)
// refuses the run with ErrSecretWalk and says how to fix it; nothing runs.
func TestWorkspaceSecretsFailClosed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, f *secretsFixture)
		want  string
	}{
		{"too many entries", func(t *testing.T, f *secretsFixture) { f.sb.maxSecretWalk = 10 }, "more than 10 files and directories"},
		{"an unreadable directory", func(t *testing.T, f *secretsFixture) {
			if os.Geteuid() == 0 {
				t.Skip("root reads every directory")
			}
			if err := os.Chmod(filepath.Join(f.ws, "deep", "a"), 0o300); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(filepath.Join(f.ws, "deep", "a"), 0o755) })
		}, "deep/a: toolgate cannot read this directory (chmod u+rx fixes it)"},
		{"too many secrets", func(t *testing.T, f *secretsFixture) {
			for i := range maxSecretMasks {
				write(t, filepath.Join(f.ws, "sub", fmt.Sprintf("k%d.key", i)), "")
			}
		}, "more than 256 secret files and directories (sub among them)"},
		{"too deep", func(t *testing.T, f *secretsFixture) {
			if err := os.MkdirAll(filepath.Join(f.ws, strings.Repeat("d/", maxSecretDepth+2)), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "nested more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSecretsFixture(t)
			tc.setup(t, f)
			for _, profile := range []string{ReadOnly, WorkspaceWrite} {
				_, err := f.sb.Command(t.Context(), profile, f.ws, []string{"/bin/sh", "-c", "touch ran"})
				if !errors.Is(err, ErrSecretWalk) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "workspace_secrets: visible") {
					t.Errorf("%s: Command: %v; want ErrSecretWalk saying %q and how to opt out", profile, err, tc.want)
				}
			}
		})
	}
}

// TestWorkspaceSecretsHidden: the file tools' check (Hidden) agrees with
// the mounts: an existing secret, or a path under a secret directory, is
// hidden; a look-alike, a missing secret (a run may create it), a secret
// name that is a symlink and one in a skipped directory are not.
func TestWorkspaceSecretsHidden(t *testing.T) {
	f := newSecretsFixture(t)
	for rel, want := range map[string]bool{
		".env": true, "sub/.aws": true, "sub/.aws/credentials": true, "sub/.aws/missing": true, "deep/a/b/c/Server.KEY": true,
		".env.example": false, "sub/notes.txt": false, "new.key": false, "sub/new/.env": false, "link.key": false,
		"node_modules/p/.env": false, ".git/.env": false, "sub/up/.env": false,
	} {
		if got := f.sb.Hidden(filepath.Join(f.ws, rel)); got != want {
			t.Errorf("Hidden(%s) = %v, want %v", rel, got, want)
		}
	}
}

// TestWorkspaceSecretsOff: without a Secret matcher the workspace's files
// are all readable (sandbox.workspace_secrets: visible).
func TestWorkspaceSecretsOff(t *testing.T) {
	f := newSecretsFixture(t)
	o := f.sb.o
	o.Secret = nil
	f.sb = newSandbox(t, o)
	if out, _ := f.run(t, ReadOnly, "cat .env"); !strings.Contains(out, "SECRET-DOTENV") {
		t.Errorf(".env is not readable without a matcher:\n%s", out)
	}
}

// TestSecretWalkReuse: a walk reuses the last one's listing of a directory
// only while that directory has not changed since, and had not changed for
// stableAge before that walk; a secret added, or moved in by renaming a
// directory, is found by the next walk.
func TestSecretWalkReuse(t *testing.T) {
	f := newSecretsFixture(t)
	walk := func(t *testing.T) *secretWalk {
		t.Helper()
		w, err := f.sb.walkSecrets(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(w.files)
		slices.Sort(w.dirs)
		return w
	}
	// A clock behind every directory's change time: nothing is stable.
	f.sb.now = func() time.Time { return time.Unix(0, 0) }
	all := walk(t).listed
	if w := walk(t); w.listed != all {
		t.Fatalf("the second walk read %d directories, want all %d: a directory that had just changed was trusted", w.listed, all)
	}
	// A clock an hour ahead: every directory is stable from here on.
	f.sb.now = func() time.Time { return time.Now().Add(time.Hour) }
	walk(t)
	if w := walk(t); w.listed != 0 {
		t.Fatalf("a walk of an unchanged workspace read %d directories", w.listed)
	}
	write(t, filepath.Join(f.ws, "sub", ".env"), "SECRET-NEW")
	if err := os.Rename(filepath.Join(f.ws, "deep", "a"), filepath.Join(f.ws, "sub", "a")); err != nil {
		t.Fatal(err)
	}
	w := walk(t)
	if want := []string{".env", "sub/.env", "sub/a/b/c/Server.KEY"}; !slices.Equal(w.files, want) {
		t.Errorf("secret files %q, want %q", w.files, want)
	}
	if want := []string{"sub/.aws"}; !slices.Equal(w.dirs, want) {
		t.Errorf("secret directories %q, want %q", w.dirs, want)
	}
	// sub and deep changed; sub/a, sub/a/b and sub/a/b/c are new paths.
	if w.listed != 5 {
		t.Errorf("the walk read %d directories, want 5", w.listed)
	}
}
