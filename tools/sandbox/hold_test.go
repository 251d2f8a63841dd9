package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// holdRun is a run started in the background, for a test to change the
// host's files while it is in flight.
type holdRun struct {
	c    *Cmd
	out  strings.Builder
	ctx  context.Context
	done chan struct{}
	err  error // Wait's, once done is closed
}

// wait waits for the run to end and returns Wait's error.
func (r *holdRun) wait() error {
	<-r.done
	return r.err
}

// output is the end of the run's output, for a failure message.
func (r *holdRun) output() string {
	s := r.out.String()
	return s[max(0, len(s)-200):]
}

// startHeld starts script in workspace-write. The script writes the file
// "ready" in the workspace once it runs; startHeld returns after that. The
// run's deadline is long: a test whose run ends by it failed.
func startHeld(t *testing.T, f *fixture, script string) *holdRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := f.sb.Command(ctx, WorkspaceWrite, f.ws, []string{"/bin/sh", "-c", "echo > ready; " + script})
	if err != nil {
		t.Fatal(err)
	}
	r := &holdRun{c: c, ctx: ctx, done: make(chan struct{})}
	c.Stdout, c.Stderr = &r.out, &r.out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.err = c.Wait(); close(r.done) }()
	t.Cleanup(func() { c.Kill(); <-r.done })
	waitFor(t, filepath.Join(f.ws, "ready"))
	return r
}

// waitFor polls until p exists.
func waitFor(t *testing.T, p string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Lstat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", p)
		}
	}
}

// stopped waits for the run, which loops until killed, and checks that
// toolgate killed it for the hold on path: before its deadline, with
// ErrHoldEnded naming path.
func (r *holdRun) stopped(t *testing.T, path string) {
	t.Helper()
	_ = r.wait()
	if r.ctx.Err() != nil {
		t.Fatalf("the run went on until its deadline: toolgate did not stop it (output ending %q)", r.output())
	}
	herr := r.c.HoldErr()
	if !errors.Is(herr, ErrHoldEnded) || !strings.Contains(herr.Error(), path) || !strings.Contains(herr.Error(), "killed the run") {
		t.Fatalf("HoldErr = %v, want ErrHoldEnded naming %s and the kill", herr, path)
	}
}

// renameOver replaces p on the host as sed -i and editors do: a new file
// renamed over it.
func renameOver(t *testing.T, p, content string) {
	t.Helper()
	write(t, p+".new", content)
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
}

// TestHeldReplacedOnHost: a run retrying to append to .git/config is
// killed when the user's git replaces the file on the host (config.lock
// renamed over config detaches the read-only mount in the run), and the
// call reports .git/config for the user to check.
func TestHeldReplacedOnHost(t *testing.T) {
	f := repoFixture(t)
	r := startHeld(t, f, `while :; do printf '[core]\n\tfsmonitor = "touch /tmp/PWNED; false"\n' >> .git/config 2>/dev/null && echo WROTE; sleep 0.05; done`)
	f.git(t, "config", "user.signingkey", "none")
	r.stopped(t, filepath.Join(f.ws, ".git", "config"))
	// Whether the run's write got in before the kill is the race
	// docs/threat-model.md describes; it is logged, not asserted.
	t.Logf("the run wrote to the new config before it was killed: %v", strings.Contains(r.out.String(), "WROTE"))
}

// TestHeldLockOnHost: git's lock for a held file appearing kills the run
// before git renames it over the file: the lock is writable in the run.
func TestHeldLockOnHost(t *testing.T) {
	f := repoFixture(t)
	r := startHeld(t, f, `while :; do sleep 0.05; done`)
	write(t, filepath.Join(f.ws, ".git", "config.lock"), "[core]\n")
	r.stopped(t, filepath.Join(f.ws, ".git", "config"))
}

// TestMaskedReplacedOnHost: a run reading a masked .env in a loop is
// killed when the host replaces .env (the mask's mount detaches), or
// removes a masked directory.
func TestMaskedReplacedOnHost(t *testing.T) {
	for _, tc := range []struct{ name, path string }{
		{"masked .env renamed over", ".env"},
		{"a masked key renamed over", "deep/a/b/c/Server.KEY"},
		{"a masked directory removed", "sub/.aws"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSecretsFixture(t)
			r := startHeld(t, f.fixture, `while :; do cat `+tc.path+` 2>/dev/null; sleep 0.05; done`)
			p := filepath.Join(f.ws, tc.path)
			if tc.path == "sub/.aws" {
				if err := os.RemoveAll(p); err != nil {
					t.Fatal(err)
				}
			} else {
				renameOver(t, p, "ROTATED-SECRET")
			}
			r.stopped(t, p)
			t.Logf("the run read the new file before it was killed: %v", strings.Contains(r.out.String(), "ROTATED-SECRET"))
		})
	}
}

// TestHoldUnrelatedChanges: the user's everyday work on the host during a
// run (git status, which rewrites .git/index; files renamed over beside
// held and masked ones) does not stop it.
func TestHoldUnrelatedChanges(t *testing.T) {
	f := newSecretsFixture(t)
	f.git(t, "init", "-q")
	r := startHeld(t, f.fixture, `while [ ! -e go ]; do sleep 0.05; done; echo finished`)
	f.git(t, "add", "main.txt")
	f.git(t, "status")
	renameOver(t, filepath.Join(f.ws, ".git", "description"), "described")
	renameOver(t, filepath.Join(f.ws, "main.txt"), "edited")
	renameOver(t, filepath.Join(f.ws, ".env.example"), "EXAMPLE=2")
	renameOver(t, filepath.Join(f.ws, "sub", "notes.txt"), "notes")
	write(t, filepath.Join(f.ws, "go"), "")
	if err := r.wait(); err != nil || !strings.Contains(r.out.String(), "finished") {
		t.Fatalf("run: %v, output ending %q; want it to finish", err, r.output())
	}
	if err := r.c.HoldErr(); err != nil {
		t.Fatalf("HoldErr = %v, want nil", err)
	}
}

// TestHeldChangedInPlace: a held file written in place on the host keeps
// its mount, so the run goes on, but the call still reports that it is
// not what it was when the run started.
func TestHeldChangedInPlace(t *testing.T) {
	f := repoFixture(t)
	r := startHeld(t, f, `while [ ! -e go ]; do sleep 0.05; done`)
	cfg := filepath.Join(f.ws, ".git", "config")
	fh, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString("[user]\n\tname = u\n"); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	write(t, filepath.Join(f.ws, "go"), "")
	if err := r.wait(); err != nil {
		t.Fatalf("run: %v (%q)", err, r.output())
	}
	herr := r.c.HoldErr()
	if !errors.Is(herr, ErrHoldEnded) || !strings.Contains(herr.Error(), cfg+", which the sandbox held read-only, was changed") ||
		strings.Contains(herr.Error(), "killed") {
		t.Fatalf("HoldErr = %v, want ErrHoldEnded: %s was changed, without a kill", herr, cfg)
	}
}

// TestHoldPathChanged: what the check after a run tells apart.
func TestHoldPathChanged(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config")
	write(t, p, "a")
	h := holdPath{path: p, kind: heldRO}
	h.record()
	if got := h.changed(); got != "" {
		t.Fatalf("unchanged: %q", got)
	}
	renameOver(t, p, "a")
	if got := h.changed(); got != "was replaced" {
		t.Fatalf("renamed over with the same content: %q, want was replaced", got)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if got := h.changed(); got != "was removed" {
		t.Fatalf("removed: %q", got)
	}
}

// TestHeldLockByAnotherRun: a run that makes git's lock for a held file
// (harmless in itself: it cannot rename it over the file) ends every other
// run holding that file, as git on the host would; the reason does not
// blame the host alone, since toolgate cannot tell who made the lock.
func TestHeldLockByAnotherRun(t *testing.T) {
	f := repoFixture(t)
	r := startHeld(t, f, `while :; do sleep 0.05; done`)
	// The run that makes the lock holds .git/config too, so it may end
	// itself as it exits: its own outcome is not what this test checks.
	c, err := f.sb.Command(t.Context(), WorkspaceWrite, f.ws, []string{"/bin/sh", "-c", "touch .git/config.lock; rm .git/config.lock"})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Run()
	c.Cleanup()
	r.stopped(t, filepath.Join(f.ws, ".git", "config"))
	if herr := r.c.HoldErr(); !strings.Contains(herr.Error(), "on the host or by another command running in the workspace") {
		t.Errorf("HoldErr = %v, want it to say another command may have made the lock", herr)
	}
}
