package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/toolgate/toolgate/toolgatetest"
)

// nobody is the unprivileged uid and gid the processes of
// TestServeNotDumpable run as.
const nobody = 65534

// asNobody makes cmd run as nobody, with no supplementary groups.
func asNobody(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
}

// TestServeNotDumpable: another process of the same unprivileged user
// cannot read `toolgate serve`'s environment or memory map (a command the
// agent runs read the tokens through /proc/$PPID/environ), while it can
// read those of a process of the same binary and user that is not serving.
func TestServeNotDumpable(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run the processes as an unprivileged user")
	}
	// A directory the unprivileged user owns, holding a copy of the binary
	// it can read: exec makes the process of a binary its user cannot
	// read non-dumpable by itself, and this test would pass for the wrong
	// reason.
	dir, err := os.MkdirTemp("", "toolgate-dumpable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "toolgate")
	copyFile(t, toolgateBin, bin, 0o755)
	db := filepath.Join(dir, "audit.db")
	cfg := filepath.Join(dir, "toolgate.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("workspace: {enabled: false}\naudit: {path: %q}\n", db)), 0o644); err != nil {
		t.Fatal(err)
	}
	const marker = "TOOLGATE_TEST_MARKER=environ-readable"
	env := []string{"HOME=" + dir, "PATH=/usr/bin:/bin", marker}

	start := func(args ...string) (*exec.Cmd, *toolgatetest.SyncBuffer) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, env
		asNobody(cmd)
		stderr := &toolgatetest.SyncBuffer{}
		cmd.Stderr = stderr
		stdin, err := cmd.StdinPipe() // serve over stdio runs until it closes
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stdin.Close()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("toolgate %s stderr:\n%s", strings.Join(args, " "), stderr.String())
			}
		})
		return cmd, stderr
	}
	serve, serveErr := start("serve", "--config", cfg)
	toolgatetest.EventuallyWithin(t, "toolgate to serve", 30*time.Second, func() bool { return strings.Contains(serveErr.String(), "toolgate serving") })
	if strings.Contains(serveErr.String(), "non-dumpable") {
		t.Fatalf("serve could not harden itself:\n%s", serveErr.String())
	}
	control, _ := start("audit", "tail", "-f", "--db", db)

	read := func(pid int, file string) (string, error) {
		cmd := exec.Command("cat", fmt.Sprintf("/proc/%d/%s", pid, file))
		asNobody(cmd)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	toolgatetest.EventuallyWithin(t, "the control process to start", 10*time.Second, func() bool {
		out, err := read(control.Process.Pid, "environ")
		return err == nil && strings.Contains(out, marker)
	})
	for _, file := range []string{"environ", "maps"} {
		if out, err := read(control.Process.Pid, file); err != nil || out == "" {
			t.Errorf("control: reading /proc/PID/%s as the same user: %v %q; want it readable", file, err, out)
		}
		if out, err := read(serve.Process.Pid, file); err == nil || strings.Contains(out, marker) {
			t.Errorf("toolgate serve: /proc/PID/%s readable by a process of the same user (%v):\n%.200s", file, err, strings.ReplaceAll(out, "\x00", " "))
		}
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestServeInheritedFilesStayOut: whatever starts toolgate may leave files
// open across exec (an IDE, an MCP client); a sandboxed command must not
// get them: here a read-only run could read a file its profile hides
// through one, and append to a file outside the workspace through the
// other. The command finds neither descriptor open.
func TestServeInheritedFilesStayOut(t *testing.T) {
	f := sbSetup(t, allowAllIn("read-only"))
	secret := filepath.Join(f.home, ".aws", "credentials")
	outside := filepath.Join(f.dir, "outside.txt")
	stderr := &toolgatetest.SyncBuffer{}
	tr := transport.NewStdioWithOptions("sh", f.env(), []string{"-c", `exec 7<"$1" 8>>"$2"; exec "$3" serve --config "$4"`,
		"sh", secret, outside, toolgateBin, f.config("")}, transport.WithCommandStderrWriter(stderr))
	f.c, _ = connectAs(t, tr, serveTestClient)
	out, _ := f.run(t, "ls -l /proc/self/fd; cat <&7; echo written-from-sandbox >&8")
	if strings.Contains(out, "AWS-SECRET") {
		t.Errorf("the command read a hidden file through an inherited descriptor:\n%s", out)
	}
	if b, _ := os.ReadFile(outside); len(b) > 0 {
		t.Errorf("the read-only command wrote outside through an inherited descriptor: %q", b)
	}
	if strings.Contains(out, "credentials") || strings.Contains(out, "outside.txt") {
		t.Errorf("the command's descriptors list the inherited files:\n%s", out)
	}
}
