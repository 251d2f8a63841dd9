package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/tools/sandbox/sandboxtest"
)

// fixture is a workspace, a fake home holding secrets, and a sandbox over
// them with the built-in profiles.
type fixture struct {
	ws, home, secret string
	sb               *Sandbox
}

func newFixture(t *testing.T, profiles ...Profile) *fixture {
	t.Helper()
	bwrap, base := bwrapAndBase(t)
	f := &fixture{ws: filepath.Join(base, "ws"), home: filepath.Join(base, "home")}
	for _, d := range []string{f.ws, filepath.Join(f.ws, ".git", "hooks"), filepath.Join(f.home, ".ssh"), filepath.Join(f.home, "toolchain")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.secret = filepath.Join(f.home, ".ssh", "id_ed25519")
	write(t, f.secret, "PRIVATE-KEY-MATERIAL")
	write(t, filepath.Join(f.home, "toolchain", "tool.txt"), "toolchain")
	write(t, filepath.Join(f.ws, ".git", "config"), "[core]\n")
	write(t, filepath.Join(f.ws, "main.txt"), "hello")
	write(t, filepath.Join(f.ws, "toolgate.yaml"), "rules: {file: secret-rules.yaml}\n")
	f.sb = newSandbox(t, Options{
		Bwrap:     bwrap,
		Workspace: f.ws,
		Home:      f.home,
		Hide:      []string{filepath.Join(f.home, ".ssh"), filepath.Join(f.ws, "toolgate.yaml")},
		Protect:   DefaultProtect,
		Env:       []string{"PATH=/usr/bin:/bin", "HOME=" + f.home, "VISIBLE=yes"},
		Profiles:  profiles,
	})
	return f
}

// newSandbox is New for a test, closed when the test ends.
func newSandbox(t testing.TB, o Options) *Sandbox {
	t.Helper()
	sb, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	return sb
}

// bwrapAndBase returns bubblewrap's path, failing the test without it, and
// a fresh directory with its symlinks evaluated.
func bwrapAndBase(t *testing.T) (bwrap, base string) {
	t.Helper()
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		t.Fatalf("bubblewrap is needed: %v (apt-get install bubblewrap)", err)
	}
	base, err = filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bwrap, base
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs script with sh in profile and returns its combined output and
// exit code.
func (f *fixture) run(t *testing.T, profile, script string) (string, int) {
	t.Helper()
	c, err := f.sb.Command(t.Context(), profile, f.ws, []string{"/bin/sh", "-c", script})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c.Stdout, c.Stderr = &out, &out
	err = c.Run()
	c.Kill()
	c.Cleanup() // as run_command does
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("run %q: %v", script, err)
	return "", -1
}

// TestContainment tries, from inside each built-in profile, what a hostile
// agent would: each case is a shell script and whether it must fail.
func TestContainment(t *testing.T) {
	f := newFixture(t, Profile{Name: "reads-home", Workspace: ReadAccess, Read: nil})
	port := sandboxtest.HostService(t, "HOST-SERVICE")
	if err := os.Symlink(f.secret, filepath.Join(f.ws, "key-link")); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, profile, script string
		ok                    bool   // the script must exit 0
		leak                  string // text that must not appear in the output
	}{
		{"read the workspace", ReadOnly, "cat main.txt", true, ""},
		{"write the workspace read-only", ReadOnly, "echo x > new.txt", false, ""},
		{"write through .. read-only", ReadOnly, "echo x > ../outside.txt; echo x > .git/../main.txt", false, ""},
		{"write the workspace", WorkspaceWrite, "echo x > new.txt && cat new.txt", true, ""},
		{"secret in home", WorkspaceWrite, "cat " + f.secret, false, "PRIVATE-KEY"},
		{"secret by glob", WorkspaceWrite, "cat ~/.ss*/id_*", false, "PRIVATE-KEY"},
		{"symlink into a hidden path", WorkspaceWrite, "cat key-link", false, "PRIVATE-KEY"},
		{"hidden file in the workspace", WorkspaceWrite, "cat toolgate.yaml", false, "secret-rules"},
		{"overwrite a hidden file", WorkspaceWrite, "echo rules: {} > toolgate.yaml", false, ""},
		{"/etc/shadow", ReadOnly, "cat /etc/shadow", false, "root:"},
		{"git config", WorkspaceWrite, "echo '[alias] x = !evil' >> .git/config", false, ""},
		{"git hook", WorkspaceWrite, "echo evil > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit", false, ""},
		{"replace git config", WorkspaceWrite, "mv .git/config .git/config.old", false, ""},
		{"replace .git", WorkspaceWrite, "mv .git .git-old && mkdir -p .git/hooks && cp -a .git-old/. .git/ 2>/dev/null; echo evil > .git/hooks/pre-commit && echo '[alias] x = !evil' >> .git/config", false, ""},
		{"replace .git/hooks", WorkspaceWrite, "mv .git/hooks .git/hooks-old", false, ""},
		{"agent permissions", WorkspaceWrite, "mkdir -p .claude && echo '{}' > .claude/settings.json", false, ""},
		{"cursor mcp config", WorkspaceWrite, "echo '{}' > .cursor/mcp.json", false, ""},
		{"network with bash", WorkspaceWrite, fmt.Sprintf("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d; cat <&3'", port), false, "HOST-SERVICE"},
		{"parent environment", ReadOnly, "cat /proc/1/environ /proc/$PPID/environ | tr '\\0' '\\n'; grep -l TOOLGATE_SECRET /proc/[0-9]*/environ", false, "TOOLGATE_SECRET"},
		{"other processes through /proc/*/root", ReadOnly, "cat /proc/[0-9]*/root" + f.secret, false, "PRIVATE-KEY"},
		{"host processes", ReadOnly, "ls /proc | grep -E '^[0-9]+$' | wc -l | grep -qx '[1-9]' && test -z \"$(ls /proc/[0-9]*/exe 2>/dev/null | grep -v -E '^/proc/[0-9]/exe$')\"", true, ""},
		{"raw disk", ReadOnly, "ls /dev/sd* /dev/vd* /dev/nvme* 2>/dev/null | grep .", false, ""},
		{"environment", ReadOnly, "test \"$VISIBLE\" = yes && env | grep -v -E '^(PATH|HOME|VISIBLE|PWD|SHLVL|_|OLDPWD)=' | grep .", false, ""},
		{"private tmp", ReadOnly, "echo x > /tmp/x && cat /tmp/x", true, ""},
		{"home is private", ReadOnly, "ls -A ~ | grep -v toolchain | grep .", false, ""},
		{"mount is refused", WorkspaceWrite, "umount .git/config 2>&1 || mount -t tmpfs none /tmp 2>&1; echo x >> .git/config", false, ""},
	}
	t.Setenv("TOOLGATE_SECRET", "must-not-leak")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := f.run(t, tc.profile, tc.script)
			if (code == 0) != tc.ok {
				t.Errorf("exit code %d, want success %v; output:\n%s", code, tc.ok, out)
			}
			if tc.leak != "" && strings.Contains(out, tc.leak) {
				t.Errorf("output leaks %q:\n%s", tc.leak, out)
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(f.ws, ".git", "config")); string(b) != "[core]\n" {
		t.Errorf(".git/config changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(f.ws, ".git", "hooks", "pre-commit")); err == nil {
		t.Error("a git hook was written")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(f.ws), "outside.txt")); err == nil {
		t.Error("a file was written outside the workspace")
	}
}

// TestProtectedFileCreatedIsRemoved: a protected file that did not exist
// cannot be held by a mount, so Cleanup removes it after the run.
func TestProtectedFileCreatedIsRemoved(t *testing.T) {
	f := newFixture(t)
	c, err := f.sb.Command(t.Context(), WorkspaceWrite, f.ws, []string{"/bin/sh", "-c", "echo '{\"mcpServers\":{}}' > .mcp.json"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	removed, err := c.Cleanup()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != filepath.Join(f.ws, ".mcp.json") {
		t.Fatalf("removed %v", removed)
	}
	if _, err := os.Stat(filepath.Join(f.ws, ".mcp.json")); err == nil {
		t.Fatal(".mcp.json is still there")
	}
}

// TestDescendantsDie: whatever a run starts, daemons included, dies with it.
func TestDescendantsDie(t *testing.T) {
	f := newFixture(t)
	secs := 400000 + os.Getpid()%1000
	marker := fmt.Sprint(secs)
	ctx, cancel := context.WithCancel(t.Context())
	c, err := f.sb.Command(ctx, ReadOnly, f.ws, []string{"/bin/sh", "-c",
		"setsid sleep " + marker + " & (nohup sleep " + marker + " >/dev/null 2>&1 &); sleep " + marker})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	count := func() int { return len(sandboxtest.Processes(sandboxtest.Sleep(secs))) }
	deadline := time.Now().Add(10 * time.Second)
	for count() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d sleepers started", count())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	_ = c.Wait()
	for count() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sleepers outlived the run", count())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUnavailable(t *testing.T) {
	sb, err := New(Options{Profiles: []Profile{{Name: None, Unsandboxed: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Command(t.Context(), ReadOnly, "", []string{"true"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read-only without bwrap: %v, want ErrUnavailable", err)
	}
	c, err := sb.Command(t.Context(), None, "", []string{"true"})
	if err != nil {
		t.Fatalf("none without bwrap: %v", err)
	}
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	if err := Probe(t.Context(), "/nonexistent/bwrap"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Probe of a missing bwrap: %v", err)
	}
}

func TestProfileChecks(t *testing.T) {
	for _, tc := range []struct {
		p    Profile
		want string
	}{
		{Profile{Name: "Bad Name"}, "profile name"},
		{Profile{Name: "x", Unsandboxed: true}, "only the profile named"},
		{Profile{Name: None}, "only the profile named"},
		{Profile{Name: "x", Read: []string{"relative"}}, "not absolute"},
		{Profile{Name: "x", Write: []string{"/"}}, "mounting /"},
	} {
		if _, err := New(Options{Bwrap: "bwrap", Profiles: []Profile{tc.p}}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.p, err, tc.want)
		}
	}
	if _, err := New(Options{Bwrap: "bwrap", Protect: []string{"../x"}}); err == nil {
		t.Error("a protected path outside the workspace was accepted")
	}
}

// TestHiddenInsideHiddenDir: a profile that reads a directory holding a
// hidden directory and hidden files inside it (toolgate's state directory
// and its audit log, under ~/.local) runs, and sees neither: the hidden
// directory is empty, and nothing is mounted inside it, which its
// read-only tmpfs would refuse.
func TestHiddenInsideHiddenDir(t *testing.T) {
	f := newFixture(t)
	local := filepath.Join(f.home, ".local")
	state := filepath.Join(local, "state", "toolgate")
	if err := os.MkdirAll(filepath.Join(state, "audit.db.spool"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(state, "audit.db"), "SQLite format 3")
	write(t, filepath.Join(state, "audit.db-wal"), "WAL-BYTES")
	write(t, filepath.Join(local, "notes.txt"), "visible")
	f.sb = newSandbox(t, Options{
		Bwrap:     f.sb.o.Bwrap,
		Workspace: f.ws,
		Home:      f.home,
		Hide: []string{filepath.Join(state, "audit.db"), state + "/", filepath.Join(state, "audit.db-wal"),
			filepath.Join(state, "audit.db.spool"), filepath.Join(state, "audit.db-journal")},
		Env:      []string{"PATH=/usr/bin:/bin", "HOME=" + f.home},
		Profiles: []Profile{{Name: "reads-local", Workspace: ReadAccess, Read: []string{local}}},
	})
	out, code := f.run(t, "reads-local", "cat "+filepath.Join(local, "notes.txt")+"; echo; ls -A "+state+"; echo end")
	if code != 0 || out != "visible\nend\n" {
		t.Errorf("exit code %d; want the notes and an empty state directory, got:\n%s", code, out)
	}
}
