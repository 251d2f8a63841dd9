package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// gitFixture is a workspace that is a git repository, and a sandbox that
// masks its secrets (testSecret) and runs git with an identity.
func gitFixture(t *testing.T, initArgs ...string) *fixture {
	t.Helper()
	bwrap, base := bwrapAndBase(t)
	f := &fixture{ws: filepath.Join(base, "ws"), home: filepath.Join(base, "home")}
	for _, d := range []string{f.ws, f.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.git(t, append([]string{"init", "-q"}, initArgs...)...)
	f.sb = newSandbox(t, Options{Bwrap: bwrap, Workspace: f.ws, Home: f.home, Protect: DefaultProtect, Secret: testSecret,
		Env: []string{"PATH=/usr/bin:/bin", "HOME=" + f.home, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t"}})
	return f
}

// put writes the workspace files in files (path to content).
func (f *fixture) put(t *testing.T, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(f.ws, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, p, content)
	}
}

// masked runs cat on each of rels in profile and returns the ones that
// cannot be read (a masked file is an unreadable one), and the run's
// Masked. No run may see a SECRET- content.
func (f *fixture) masked(t *testing.T, profile string, rels ...string) (empty, masked []string) {
	t.Helper()
	for _, rel := range rels {
		out, _ := f.run(t, profile, "cat -- "+rel+" 2>/dev/null; true")
		if strings.Contains(out, "SECRET-") {
			t.Errorf("%s: a run read %s: %q", profile, rel, out)
		}
		if out == "" {
			empty = append(empty, rel)
		}
	}
	c, err := f.sb.Command(t.Context(), profile, f.ws, []string{"true"})
	if err != nil {
		t.Fatal(err)
	}
	return empty, c.Masked
}

// TestWorkspaceSecretsHeldByGit: a secret-named file whose content git
// holds (committed, or added and not committed) is readable in the runs
// and to the file tools, and git add -A takes it; one git does not hold
// (untracked, or a committed file changed since) is masked, and so is
// the hard link of one to another secret name. A run's Masked lists what
// it masks.
func TestWorkspaceSecretsHeldByGit(t *testing.T) {
	f := gitFixture(t)
	f.put(t, map[string]string{"testdata/server.key": "FIXTURE-KEY", ".gitignore": ".env\n", "main.txt": "x"})
	f.git(t, "add", "-A")
	f.git(t, "commit", "-qm", "fixture")
	f.put(t, map[string]string{".env": "SECRET-DOTENV", "staged.key": "STAGED-KEY"})
	f.git(t, "add", "staged.key")
	for link, target := range map[string]string{"copy.key": "testdata/server.key", "env.key": ".env"} {
		if err := os.Link(filepath.Join(f.ws, target), filepath.Join(f.ws, link)); err != nil {
			t.Fatal(err)
		}
	}
	all := []string{".env", "copy.key", "env.key", "staged.key", "testdata/server.key"}
	for _, profile := range []string{ReadOnly, WorkspaceWrite} {
		empty, masked := f.masked(t, profile, all...)
		if want := []string{".env", "env.key"}; !slices.Equal(empty, want) || !slices.Equal(masked, want) {
			t.Errorf("%s: empty inside %q, Masked %q; want both %q", profile, empty, masked, want)
		}
	}
	for rel, want := range map[string]bool{".env": true, "env.key": true, "testdata/server.key": false, "copy.key": false, "staged.key": false} {
		if got := f.sb.Hidden(filepath.Join(f.ws, rel)); got != want {
			t.Errorf("Hidden(%s) = %v, want %v", rel, got, want)
		}
	}
	// git add -A takes the fixture (before, it met a character device);
	// env.key is the run's to drop from the index, not to add.
	if out, code := f.run(t, WorkspaceWrite, "git rm -q --cached staged.key && rm staged.key copy.key && "+
		"echo env.key >> .gitignore && git add -A && git commit -qm run && git status --porcelain"); code != 0 || out != "" {
		t.Errorf("git add -A in a run: exit %d:\n%s", code, out)
	}

	// A changed working copy is masked again, and unmasked once it holds
	// what git holds again.
	write(t, filepath.Join(f.ws, "testdata/server.key"), "SECRET-CHANGED-KEY")
	if empty, masked := f.masked(t, ReadOnly, "testdata/server.key"); len(empty) != 1 || !slices.Contains(masked, "testdata/server.key") {
		t.Errorf("a committed file changed since reads %q, Masked %q: want it masked", empty, masked)
	}
	if !f.sb.Hidden(filepath.Join(f.ws, "testdata/server.key")) {
		t.Errorf("a committed file changed since is not hidden from the file tools")
	}
	write(t, filepath.Join(f.ws, "testdata/server.key"), "FIXTURE-KEY")
	if empty, _ := f.masked(t, ReadOnly, "testdata/server.key"); len(empty) != 0 {
		t.Errorf("the fixture, back as committed, is masked")
	}
}

// TestWorkspaceSecretsHeldCache: a walk hashes a secret file again when
// it changed since it was last hashed, even when its size and
// modification time are the same (its change time is not), and not when
// it did not.
func TestWorkspaceSecretsHeldCache(t *testing.T) {
	f := gitFixture(t)
	f.put(t, map[string]string{"a.key": "FIXTURE-AAA", ".env": "SECRET-ENV"})
	f.git(t, "add", "a.key")
	f.git(t, "commit", "-qm", "a")
	f.sb.now = func() time.Time { return time.Now().Add(time.Hour) }
	p := filepath.Join(f.ws, "a.key")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if out, hashed := f.sb.unheldIn([]string{"a.key", ".env"}); !slices.Equal(out, []string{".env"}) || hashed != 2 {
		t.Fatalf("first walk: mask %q after %d hashes; want .env after 2", out, hashed)
	}
	if out, hashed := f.sb.unheldIn([]string{"a.key", ".env"}); !slices.Equal(out, []string{".env"}) || hashed != 0 {
		t.Fatalf("second walk: mask %q after %d hashes; want .env after none", out, hashed)
	}
	write(t, p, "SECRET-AAAA")
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if out, _ := f.sb.unheldIn([]string{"a.key", ".env"}); !slices.Equal(out, []string{"a.key", ".env"}) {
		t.Errorf("after a same-size write with the old mtime: mask %q; want both", out)
	}
	if out, _ := f.masked(t, ReadOnly, "a.key"); len(out) != 1 {
		t.Errorf("the changed a.key is readable in a run")
	}
}

// TestWorkspaceSecretsHeldFailClosed: git's holding a content counts only
// when it is in the workspace's own object store, read as it is, with an
// object format toolgate knows, and for a file no larger than it hashes;
// else the file stays masked.
func TestWorkspaceSecretsHeldFailClosed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, f *fixture, other string)
	}{
		{"objects/info/alternates names another store", func(t *testing.T, f *fixture, other string) {
			f.put(t, map[string]string{".git/objects/info/alternates": filepath.Join(other, ".git", "objects") + "\n"})
		}},
		{"objects/pack is a symlink to another store", func(t *testing.T, f *fixture, other string) {
			f.git(t, "-C", other, "gc", "-q")
			if err := os.RemoveAll(filepath.Join(f.ws, ".git/objects/pack")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(other, ".git/objects/pack"), filepath.Join(f.ws, ".git/objects/pack")); err != nil {
				t.Fatal(err)
			}
		}},
		{".git/objects is a symlink to another store", func(t *testing.T, f *fixture, other string) {
			if err := os.RemoveAll(filepath.Join(f.ws, ".git/objects")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(other, ".git/objects"), filepath.Join(f.ws, ".git/objects")); err != nil {
				t.Fatal(err)
			}
		}},
		{"an unknown object format", func(t *testing.T, f *fixture, other string) {
			f.git(t, "add", "-f", "secret.key")
			f.put(t, map[string]string{".git/config": "[core]\n\trepositoryformatversion = 1\n[extensions]\n\tobjectFormat = sha512\n"})
		}},
		{"over the size hashed", func(t *testing.T, f *fixture, other string) {
			f.put(t, map[string]string{"secret.key": "SECRET-" + strings.Repeat("x", maxKnownBytes)})
			f.git(t, "add", "-f", "secret.key")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := gitFixture(t)
			other := filepath.Join(filepath.Dir(f.ws), "other")
			if err := os.MkdirAll(other, 0o755); err != nil {
				t.Fatal(err)
			}
			f.git(t, "-C", other, "init", "-q")
			f.put(t, map[string]string{"secret.key": "SECRET-KEY", "../other/secret.key": "SECRET-KEY"})
			f.git(t, "-C", other, "add", "secret.key")
			f.git(t, "-C", other, "commit", "-qm", "x")
			tc.setup(t, f, other)
			if empty, masked := f.masked(t, ReadOnly, "secret.key"); len(empty) != 1 || !slices.Equal(masked, []string{"secret.key"}) {
				t.Errorf("secret.key is not masked (Masked %q)", masked)
			}
			if !f.sb.Hidden(filepath.Join(f.ws, "secret.key")) {
				t.Errorf("secret.key is not hidden from the file tools")
			}
		})
	}
}

// TestWorkspaceSecretsHeldSHA256: in a SHA-256 repository, loose and
// packed, a committed fixture is found.
func TestWorkspaceSecretsHeldSHA256(t *testing.T) {
	f := gitFixture(t, "--object-format=sha256")
	f.put(t, map[string]string{"a.key": "FIXTURE-A", "b.key": "FIXTURE-B", ".env": "SECRET-ENV"})
	f.git(t, "add", "a.key")
	f.git(t, "commit", "-qm", "a")
	f.git(t, "gc", "-q")
	f.git(t, "add", "b.key")
	if empty, masked := f.masked(t, ReadOnly, "a.key", "b.key", ".env"); !slices.Equal(empty, []string{".env"}) || !slices.Equal(masked, []string{".env"}) {
		t.Errorf("empty inside %q, Masked %q; want .env", empty, masked)
	}
}

func TestObjectFormat(t *testing.T) {
	for cfg, want := range map[string]string{
		"":                         "sha1",
		"[core]\n\tbare = false\n": "sha1",
		"[extensions]\n\tobjectformat = sha256\n":      "sha256",
		"[Extensions]\n ObjectFormat=\"SHA256\" # x\n": "sha256",
		"[extensions] objectFormat = sha256\n":         "sha256",
		"[core]\n\tobjectformat = sha256\n":            "sha1",
		"[extensions]\n\tobjectformat = sha512\n":      "unknown",
		"[extensions\n": "unknown",
	} {
		long, ok := objectFormat([]byte(cfg))
		got := map[bool]string{false: "sha1", true: "sha256"}[long]
		if !ok {
			got = "unknown"
		}
		if got != want {
			t.Errorf("objectFormat(%q) = %s, want %s", cfg, got, want)
		}
	}
}

// BenchmarkUnheld times the look-up of 40 secret files in git (20
// committed, packed; 20 never added) that follows the walk, with the
// blob ids of the last walk (warm: files unchanged for a few seconds)
// and without (cold: each file read and hashed).
func BenchmarkUnheld(b *testing.B) {
	ws, err := filepath.EvalSymlinks(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	f := &fixture{ws: ws}
	var files, keys []string
	for i := range 20 {
		key, env := filepath.Join(fmt.Sprintf("pkg%02d", i), "server.key"), filepath.Join(fmt.Sprintf("pkg%02d", i), ".env")
		if err := os.MkdirAll(filepath.Join(ws, filepath.Dir(key)), 0o755); err != nil {
			b.Fatal(err)
		}
		for rel, content := range map[string]string{key: strings.Repeat(fmt.Sprintf("KEY %d\n", i), 200), env: fmt.Sprintf("TOKEN=%d\n", i)} {
			if err := os.WriteFile(filepath.Join(ws, rel), []byte(content), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		files, keys = append(files, key, env), append(keys, key)
	}
	for _, args := range [][]string{{"init", "-q"}, append([]string{"add", "--"}, keys...), {"commit", "-qm", "keys"}, {"gc", "-q"}} {
		if out, err := f.gitTry(args...); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	sb, err := New(Options{Bwrap: "bwrap", Workspace: ws, Secret: testSecret})
	if err != nil {
		b.Fatal(err)
	}
	sb.now = func() time.Time { return time.Now().Add(time.Hour) }
	for _, cold := range []bool{true, false} {
		b.Run(map[bool]string{true: "cold", false: "warm"}[cold], func(b *testing.B) {
			for b.Loop() {
				if cold {
					sb.sums = nil
				}
				if out, _ := sb.unheldIn(files); len(out) != 20 {
					b.Fatalf("%d to mask, want 20", len(out))
				}
			}
		})
	}
}
