package sandbox

import (
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCleanupReportsWhatItCannotRemove: when what a run created at a
// protected path cannot be removed, Cleanup says so with an error naming
// it; it does not pass over it in silence. Nothing a run can do stops root,
// so the test makes the file a mount point (which no one can unlink) in a
// mount namespace of the test's own, on a thread that dies afterwards.
func TestCleanupReportsWhatItCannotRemove(t *testing.T) {
	f := newHostFixture(t)
	c, err := f.sb.Command(t.Context(), WorkspaceWrite, f.ws, []string{"/bin/sh", "-c", `echo '{}' > .mcp.json && echo x > .envrc`})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		removed []string
		err     error
		skip    string
	}
	done := make(chan result)
	go func() {
		// Never unlocked: the thread, and the mount namespace with it,
		// ends with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			done <- result{skip: "unshare(CLONE_NEWNS): " + err.Error()}
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			done <- result{skip: "making mounts private: " + err.Error()}
			return
		}
		if err := unix.Mount("/dev/null", filepath.Join(f.ws, ".mcp.json"), "", unix.MS_BIND, ""); err != nil {
			done <- result{skip: "bind mount: " + err.Error()}
			return
		}
		removed, err := c.Cleanup()
		done <- result{removed: removed, err: err}
	}()
	r := <-done
	if r.skip != "" {
		// Unsharing a mount namespace needs CAP_SYS_ADMIN; without it,
		// a non-root toolgate's permission bits are tested by
		// TestCleanupRestoresWriteBits instead.
		t.Skipf("cannot make a file unremovable here: %s", r.skip)
	}
	if !slices.Equal(r.removed, []string{filepath.Join(f.ws, ".envrc")}) {
		t.Errorf("Cleanup removed %q, want only .envrc", r.removed)
	}
	if r.err == nil || !strings.Contains(r.err.Error(), filepath.Join(f.ws, ".mcp.json")) {
		t.Errorf("Cleanup's error %v does not name .mcp.json", r.err)
	}
}
