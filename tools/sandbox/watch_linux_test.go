package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHoldWithoutInotifyInstances: a command can use up the user's inotify
// instances (fs.inotify.max_user_instances) while it runs; the runs that
// start meanwhile still run, with their holds watched, since a Sandbox's
// runs share its one instance. A run that ends leaves the directories it
// shared watched for the others. The test lowers the limit in a user
// namespace of its own, so it takes no instance from anyone else.
func TestHoldWithoutInotifyInstances(t *testing.T) {
	const limit = 4
	if os.Getenv("TOOLGATE_TEST_USERNS") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "TOOLGATE_TEST_USERNS=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Skipf("no user namespace here: %v", err)
		}
		if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "--- PASS") {
			t.Fatalf("in a user namespace: %v\n%s", err, out.String())
		}
		return
	}
	if err := os.WriteFile("/proc/sys/user/max_inotify_instances", fmt.Appendf(nil, "%d", limit), 0); err != nil {
		t.Fatal(err)
	}
	f := repoFixture(t)
	before := startHeld(t, f, `while :; do sleep 0.05; done`)
	for n := 0; ; n++ {
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
		if errors.Is(err, unix.EMFILE) {
			break
		}
		if err != nil || n == limit {
			t.Fatalf("inotify instance %d: %v, want EMFILE by instance %d", n, err, limit)
		}
		t.Cleanup(func() { _ = unix.Close(fd) })
	}
	after := startHeld(t, f, `while :; do sleep 0.05; done`)
	if out, code := f.run(t, WorkspaceWrite, "echo ran"); code != 0 || out != "ran\n" {
		t.Fatalf("a run with no inotify instance left: exit %d, %q", code, out)
	}
	f.git(t, "config", "user.signingkey", "none")
	before.stopped(t, filepath.Join(f.ws, ".git", "config"))
	after.stopped(t, filepath.Join(f.ws, ".git", "config"))
}

// TestHoldOverflow: when more changes come at once than inotify queues
// (fs.inotify.max_queued_events), every run that watches anything is
// killed, as any lost change may have replaced what it holds; later runs
// are watched again.
func TestHoldOverflow(t *testing.T) {
	f := repoFixture(t)
	runs := []*holdRun{startHeld(t, f, `while :; do sleep 0.05; done`), startHeld(t, f, `while :; do sleep 0.05; done`)}
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Fatal(err)
	}
	var queued int
	if _, err := fmt.Sscan(string(b), &queued); err != nil {
		t.Fatal(err)
	}
	// The workspace is watched (for its missing protected files); while
	// toolgate handles no event, two per file fill the queue.
	f.sb.watcher.mu.Lock()
	for i := range queued/2 + 1 {
		p := filepath.Join(f.ws, fmt.Sprintf("f%d", i))
		write(t, p, "")
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	f.sb.watcher.mu.Unlock()
	for _, r := range runs {
		_ = r.wait()
		if r.ctx.Err() != nil {
			t.Fatal("a run went on until its deadline: toolgate did not stop it")
		}
		if herr := r.c.HoldErr(); herr == nil || !strings.Contains(herr.Error(), "more changes happened in the workspace at once") {
			t.Errorf("HoldErr = %v, want the overflow", herr)
		}
	}
	after := startHeld(t, f, `while :; do sleep 0.05; done`)
	renameOver(t, filepath.Join(f.ws, ".git", "config"), "[core]\n")
	after.stopped(t, filepath.Join(f.ws, ".git", "config"))
}
