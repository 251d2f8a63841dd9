package workspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/tools/sandbox"
)

// shell runs command strings. POSIX guarantees it.
const shell = "/bin/sh"

// execArgv is the script that runs "$0" "$@" as an exact argv; the shell
// only looks the program up in PATH.
const execArgv = `exec "$0" "$@"`

func (w *ws) runCommand(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	command, err := req.RequireString("command")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	if strings.TrimSpace(command) == "" {
		return mcp.NewToolResultError("command is empty"), nil
	}
	var args []string
	if _, ok := req.GetArguments()["args"]; ok {
		if args, err = req.RequireStringSlice("args"); err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
	}
	prof, refused := w.confine(req, sandbox.ReadOnly, accessRead)
	if refused != nil {
		return refused, nil
	}
	cwd := req.GetString("cwd", "")
	dir, err := w.commandDir(prof, cwd)
	if err != nil {
		return w.toolError(cwd, err), nil
	}

	argv := []string{shell, "-c", command}
	if len(args) > 0 {
		argv = append([]string{shell, "-c", execArgv, command}, args...)
	}
	res := w.run(ctx, prof, dir, argv)
	w.log.DebugContext(ctx, "workspace call", "tool", ToolRunCommand, "sandbox", prof.Name, "command_bytes", len(command), "args", len(args),
		"exit_code", res.exitCode, "timed_out", res.timedOut, "duration", res.duration, "masked", res.masked, "err", res.err)
	return res.toolResult(w.timeout), nil
}

// commandDir returns the real absolute path of cwd, a directory inside the
// workspace. It is checked, not opened: the command runs in the sandbox,
// where a directory swapped after this check leads nowhere the profile
// does not already allow.
func (w *ws) commandDir(prof sandbox.Profile, cwd string) (string, error) {
	rel, err := w.checked(prof, cwd, accessRead)
	if err != nil {
		return "", err
	}
	real, err := w.realRel(rel)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(w.root, real)
	fi, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", refusal("cwd is not a directory")
	}
	return dir, nil
}

// runResult is what happened to one command.
type runResult struct {
	profile        sandbox.Profile
	removed        []string // protected paths that appeared during the command, taken away after it
	quarantine     string   // where they went ("" when they were removed)
	masked         []string // the workspace's secrets the sandbox masked (sandbox.Cmd.Masked)
	cleanupErr     error    // what the command created at a protected path and toolgate could not remove
	holdErr        error    // a protected or masked path the host replaced during the run (sandbox.ErrHoldEnded)
	exitCode       int      // -1 when killed or not started
	signal         string
	timedOut       bool
	cancelled      bool
	err            error // failure to start, or to wait
	stdout, stderr *capped
	duration       time.Duration
}

// run executes argv in dir inside sandbox profile prof. The sandbox (its
// process group and PID namespace) is killed on timeout, on cancellation
// and after the command exits, so nothing it started outlives the call.
func (w *ws) run(ctx context.Context, prof sandbox.Profile, dir string, argv []string) runResult {
	tctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	res := runResult{profile: prof, exitCode: -1, stdout: newCapped(w.maxOut), stderr: newCapped(w.maxOut)}
	cmd, err := w.sb.Command(tctx, prof.Name, dir, argv)
	if err != nil {
		if errors.Is(err, sandbox.ErrSecretWalk) || errors.Is(err, sandbox.ErrSecretLinked) {
			// Every run fails the same way until the user acts.
			w.log.ErrorContext(ctx, "a command was refused", "err", err)
		}
		res.err = err
		return res
	}
	cmd.Stdout, cmd.Stderr = res.stdout, res.stderr
	cmd.WaitDelay = waitDelay
	res.masked = cmd.Masked

	start := time.Now()
	if err := cmd.Start(); err != nil {
		res.err, res.holdErr = err, cmd.HoldErr()
		return res
	}
	err = cmd.Wait()
	// Kill whatever the command left running (background jobs).
	cmd.Kill()
	res.removed, res.cleanupErr = cmd.Cleanup()
	res.quarantine = cmd.Quarantine
	if res.cleanupErr != nil {
		w.log.ErrorContext(ctx, "a command left what it created at a protected path", "err", res.cleanupErr)
	}
	if res.holdErr = cmd.HoldErr(); res.holdErr != nil {
		w.log.WarnContext(ctx, "a protected or masked path changed on the host while a command ran", "err", res.holdErr)
	}
	res.duration = time.Since(start)

	switch {
	case ctx.Err() != nil:
		res.cancelled = true
	case errors.Is(tctx.Err(), context.DeadlineExceeded):
		res.timedOut = true
	}
	if ps := cmd.ProcessState; ps != nil {
		res.exitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.signal = ws.Signal().String()
		}
		// bwrap, the sandbox's init, reports a command killed by signal
		// N as exit status 128+N.
		if !prof.Unsandboxed && res.exitCode > 128 && res.exitCode <= 128+64 && res.signal == "" {
			res.signal = syscall.Signal(res.exitCode - 128).String()
		}
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) {
		res.err = err
	}
	return res
}

func (r runResult) toolResult(timeout time.Duration) *mcp.CallToolResult {
	var b strings.Builder
	failed := true
	w := r.profile.Describe()
	fmt.Fprintf(&b, "sandbox: %s\n", w)
	switch {
	case r.cancelled:
		b.WriteString("command cancelled; its process group was killed\n")
	case r.timedOut:
		fmt.Fprintf(&b, "command timed out after %s; its process group was killed\n", timeout)
	case r.err != nil && r.exitCode < 0:
		fmt.Fprintf(&b, "command could not be run: %v\n", r.err)
	case r.signal != "":
		fmt.Fprintf(&b, "command killed by signal %s\n", r.signal)
	default:
		fmt.Fprintf(&b, "exit code: %d\n", r.exitCode)
		failed = r.exitCode != 0
	}
	if r.holdErr != nil {
		fmt.Fprintf(&b, "toolgate: this call failed: %v\n", r.holdErr)
		failed = true
	}
	writeStream(&b, "stdout", r.stdout)
	writeStream(&b, "stderr", r.stderr)
	for _, p := range r.removed {
		where := "it is deleted"
		if r.quarantine != "" {
			where = "it is kept in " + r.quarantine + " (a .git there is named dot-git)"
		}
		fmt.Fprintf(&b, "toolgate removed %s: it appeared during the command at a protected path or on the way to one, or it is a repository at a submodule's path that git at the root would enter, "+
			"where it would become code or policy outside the sandbox; %s. The command made it, or a program on the host did "+
			"(toolgate cannot tell which): if it is the user's, they can move it back when no command runs\n", p, where)
		failed = true
	}
	if r.cleanupErr != nil {
		fmt.Fprintf(&b, "toolgate could not remove what the command created at a protected path, which can become code or policy outside the sandbox; have the user remove it: %v\n", r.cleanupErr)
		failed = true
	}
	if failed && !r.profile.Unsandboxed && sandboxRefusal(r.stderr.String()) {
		fmt.Fprintf(&b, "note: the sandbox profile %q refused this (%s); if the call needs more, a rule that names another profile (sandbox:) can run it there\n", r.profile.Name, w)
	}
	if failed && len(r.masked) > 0 {
		b.WriteString(maskedNote(r.masked))
	}
	res := mcp.NewToolResultText(b.String())
	res.IsError = failed
	return res
}

// maxMaskedNames is how many masked paths a failed run's note names.
const maxMaskedNames = 5

// maskedNote tells the agent which of the workspace's secrets a failed run
// could not read, by path: a test that reads one fails for that reason,
// and the agent can say so to the user instead of guessing.
func maskedNote(masked []string) string {
	names := strings.Join(masked[:min(len(masked), maxMaskedNames)], ", ")
	if len(masked) > maxMaskedNames {
		names += fmt.Sprintf(" and %d more", len(masked)-maxMaskedNames)
	}
	return fmt.Sprintf("note: toolgate masked these secret files of the workspace in this run, so they could not be read: %s "+
		"(sandbox.workspace_secrets in toolgate's docs)\n", names)
}

func writeStream(b *strings.Builder, name string, c *capped) {
	s := c.String()
	if s == "" {
		fmt.Fprintf(b, "%s: (empty)\n", name)
		return
	}
	fmt.Fprintf(b, "%s:\n%s", name, s)
	if !strings.HasSuffix(s, "\n") {
		b.WriteByte('\n')
	}
}

// capped keeps the first and last halves of at most max bytes written to it,
// and counts what it drops. exec writes each stream from one goroutine, and
// it is read only after Wait, so it needs no lock.
type capped struct {
	max     int
	head    []byte
	tail    []byte
	dropped int64
}

func newCapped(max int) *capped { return &capped{max: max} }

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	headMax := c.max / 2
	if len(c.head) < headMax {
		k := min(headMax-len(c.head), len(p))
		c.head = append(c.head, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	tailMax := c.max - headMax
	c.tail = append(c.tail, p...)
	if over := len(c.tail) - tailMax; over > 0 {
		// Slicing forward is enough: the next append that outgrows the
		// array copies only the live bytes.
		c.dropped += int64(over)
		c.tail = c.tail[over:]
	}
	return n, nil
}

// String returns the kept output, with a marker where bytes were dropped.
func (c *capped) String() string {
	if c.dropped == 0 {
		return string(c.head) + string(c.tail)
	}
	return fmt.Sprintf("%s\n[... %d bytes omitted (output limit %d bytes) ...]\n%s", c.head, c.dropped, c.max, c.tail)
}

// sandboxRefusal reports whether stderr reads like the sandbox said no: a
// read-only filesystem, a missing network, or a path that is not there.
func sandboxRefusal(stderr string) bool {
	for _, s := range []string{"Read-only file system", "Network is unreachable", "Temporary failure in name resolution",
		"Could not resolve host", "Permission denied"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}
