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
	cwd := req.GetString("cwd", "")
	dir, err := w.commandDir(cwd)
	if err != nil {
		return w.toolError(cwd, err), nil
	}

	argv := []string{"-c", command}
	if len(args) > 0 {
		argv = append([]string{"-c", execArgv, command}, args...)
	}
	res := w.run(ctx, dir, argv)
	w.log.DebugContext(ctx, "workspace call", "tool", ToolRunCommand, "command_bytes", len(command), "args", len(args),
		"exit_code", res.exitCode, "timed_out", res.timedOut, "duration", res.duration, "err", res.err)
	return res.toolResult(w.timeout), nil
}

// commandDir returns the real absolute path of cwd, a directory inside the
// workspace. It is checked, not opened: run_command is not a sandbox, so a
// race here gains an attacker nothing the command could not do itself.
func (w *ws) commandDir(cwd string) (string, error) {
	rel, err := resolve(w.root, w.alias, cwd)
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
	exitCode       int // -1 when killed or not started
	signal         string
	timedOut       bool
	cancelled      bool
	err            error // failure to start, or to wait
	stdout, stderr *capped
	duration       time.Duration
}

// run executes the shell with argv in dir, in a new process group that is
// killed on timeout, on cancellation and after the shell exits.
func (w *ws) run(ctx context.Context, dir string, argv []string) runResult {
	tctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	res := runResult{exitCode: -1, stdout: newCapped(w.maxOut), stderr: newCapped(w.maxOut)}
	cmd := exec.CommandContext(tctx, shell, argv...)
	cmd.Dir = dir
	cmd.Env = w.env
	cmd.Stdout, cmd.Stderr = res.stdout, res.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = waitDelay

	start := time.Now()
	err := cmd.Start()
	if err != nil {
		res.err = err
		return res
	}
	err = cmd.Wait()
	// Kill whatever the command left running in its group (background jobs).
	_ = killGroup(cmd.Process.Pid) // ESRCH when nothing is left
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
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) {
		res.err = err
	}
	return res
}

// killGroup sends SIGKILL to process group pgid.
func killGroup(pgid int) error {
	return syscall.Kill(-pgid, syscall.SIGKILL)
}

func (r runResult) toolResult(timeout time.Duration) *mcp.CallToolResult {
	var b strings.Builder
	failed := true
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
	writeStream(&b, "stdout", r.stdout)
	writeStream(&b, "stderr", r.stderr)
	res := mcp.NewToolResultText(b.String())
	res.IsError = failed
	return res
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
