package tools

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// stderrTailBytes is how much of an upstream's recent stderr is kept for
// crash reports.
const stderrTailBytes = 4 << 10

// process is a stdio upstream's subprocess. toolgate owns the pipes (rather
// than letting mcp-go spawn it) so it sees the exit status and stderr, can
// set the working directory, and can stop the whole process group.
type process struct {
	cmd    *exec.Cmd
	stdin  *os.File
	stdout *os.File
	log    *slog.Logger
	clean  func(string) string

	exited  chan struct{} // closed after Wait returned and stderr drained
	waitErr error

	tailMu sync.Mutex
	tail   []byte

	stopOnce sync.Once
}

// procError is a stdio upstream failure with the stderr it left behind.
type procError struct {
	err    error
	stderr string
}

func (e *procError) Error() string { return e.err.Error() }
func (e *procError) Unwrap() error { return e.err }

// startProcess starts spec's server; clean hides secrets in each line
// of its stderr before it is kept or logged.
func startProcess(spec Upstream, log *slog.Logger, clean func(string) string) (*process, error) {
	cmd := exec.Command(spec.Command, spec.Args...)
	start := cmd.Start
	if spec.Sandbox != "" {
		if spec.Sandboxer == nil {
			return nil, fmt.Errorf("server runs in sandbox profile %q, but no sandbox is configured", spec.Sandbox)
		}
		sc, err := spec.Sandboxer.Command(context.Background(), spec.Sandbox, spec.Dir, append([]string{spec.Command}, spec.Args...))
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		cmd, start = sc.Cmd, sc.Start
	}
	// Exactly BaseEnv + Env (see Upstream). A nil cmd.Env would inherit
	// toolgate's whole environment, so an empty one must stay non-nil.
	env := make([]string, 0, len(spec.BaseEnv)+len(spec.Env))
	cmd.Env = append(append(env, spec.BaseEnv...), spec.Env...)
	cmd.Dir = spec.Dir
	if spec.Sandbox == "" {
		setProcessGroup(cmd)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, fmt.Errorf("pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, fmt.Errorf("pipe: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := start(); err != nil {
		closeAll(inR, inW, outR, outW, errR, errW)
		return nil, fmt.Errorf("start %q: %w", spec.Command, err)
	}
	closeAll(inR, outW, errW) // the child has its copies
	p := &process{cmd: cmd, stdin: inW, stdout: outR, log: log, clean: clean, exited: make(chan struct{})}
	log.Debug("upstream process started", "pid", cmd.Process.Pid)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		p.readStderr(errR)
	}()
	go func() {
		p.waitErr = cmd.Wait()
		// Let the reader catch the last words, unless a grandchild holds
		// stderr open.
		select {
		case <-drained:
		case <-time.After(500 * time.Millisecond):
		}
		close(p.exited)
	}()
	return p, nil
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}

func (p *process) readStderr(r *os.File) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := p.clean(sc.Text())
		p.tailMu.Lock()
		p.tail = append(p.tail, line...)
		p.tail = append(p.tail, '\n')
		if n := len(p.tail); n > stderrTailBytes {
			p.tail = append([]byte(nil), p.tail[n-stderrTailBytes:]...)
		}
		p.tailMu.Unlock()
		p.log.Debug("upstream stderr", "line", line)
	}
	// Keep draining on a scanner error so the child never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

func (p *process) stderrTail() string {
	p.tailMu.Lock()
	defer p.tailMu.Unlock()
	return strings.TrimRight(string(p.tail), "\n")
}

// stderrCloser is the "logging" stream handed to mcp-go's transport: stderr
// is read here instead, so mcp-go gets an empty one.
func (p *process) stderrCloser() io.ReadCloser { return io.NopCloser(strings.NewReader("")) }

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// waitExit waits up to d for the process to exit.
func (p *process) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// exitError describes how the process ended; nil while it runs.
func (p *process) exitError() error {
	if !p.hasExited() {
		return nil
	}
	err := p.waitErr
	if err == nil {
		err = fmt.Errorf("process exited with status 0")
	} else {
		err = fmt.Errorf("process exited: %w", err)
	}
	return &procError{err: err, stderr: p.stderrTail()}
}

// kill ends the process group at once (SIGKILL) and waits for its exit.
func (p *process) kill() {
	signalGroup(p.cmd, true)
	p.waitExit(5 * time.Second)
}

// stop ends the process: close stdin (MCP's polite shutdown), then SIGTERM,
// then SIGKILL to its process group. It returns once the process exited.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		_ = p.stdin.Close()
		if p.waitExit(2 * time.Second) {
			_ = p.stdout.Close()
			return
		}
		signalGroup(p.cmd, false)
		if !p.waitExit(2 * time.Second) {
			signalGroup(p.cmd, true)
			p.waitExit(5 * time.Second)
		}
		_ = p.stdout.Close()
	})
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
