package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/tools/sandbox"
)

// access is what a file tool does with a path.
type access uint8

const (
	accessRead access = iota
	accessWrite
	// accessRelease is write_file's write: an agent instruction file it
	// names itself (sandbox.InstructionOf), no symlink on the way, is not
	// refused as protected: the rules decided that path, and
	// writeInSandbox releases it alone. Through a symlink it is a plain
	// write, since the rules never saw where it leads.
	accessRelease
)

// confine returns the sandbox profile call req runs in, or the refusal the
// agent gets when that profile does not allow what the tool does. The file
// tools run in toolgate's process, confined to the workspace by os.Root; the
// profile then decides whether they may write, and which paths they may not
// touch, the same paths that a sandboxed command cannot see or change.
func (w *ws) confine(req mcp.CallToolRequest, def string, a access) (sandbox.Profile, *mcp.CallToolResult) {
	if w.sb == nil {
		return sandbox.Profile{}, mcp.NewToolResultError("toolgate has no sandbox configured, so the workspace tools refuse to run (fail closed)")
	}
	p, err := w.sb.Profile(profile(req, def))
	if err != nil {
		return p, mcp.NewToolResultError("toolgate cannot run this call: " + err.Error())
	}
	switch {
	case p.Unsandboxed:
	case a == accessWrite && p.Workspace != sandbox.WriteAccess:
		return p, mcp.NewToolResultError(fmt.Sprintf("the sandbox profile %q does not allow writing the workspace; "+
			"a rule that names sandbox: %s can run this call", p.Name, sandbox.WorkspaceWrite))
	case p.Workspace == sandbox.NoAccess:
		return p, mcp.NewToolResultError(fmt.Sprintf("the sandbox profile %q gives no access to the workspace", p.Name))
	}
	return p, nil
}

// checkPath refuses real (a real, workspace-relative path) when profile p
// may not do a with it: hidden paths (toolgate's own files, secret stores)
// for any access, protected paths for writes.
func (w *ws) checkPath(p sandbox.Profile, real string, a access) error {
	switch {
	case p.Unsandboxed:
		return nil
	case w.sb.Hidden(filepath.Join(w.root, real)):
		return refusal("is hidden from the agent's tools (toolgate's own files and secret stores are never visible)")
	case a == accessWrite && w.sb.Protected(real),
		a == accessRelease && w.sb.Protected(real) && sandbox.InstructionOf(real) == "":
		return refusal(fmt.Sprintf("is protected: it stays read-only in the sandbox profile %q (git config and hooks, agent "+
			"permission and server files become code or policy outside the sandbox); ask the user to change it", p.Name))
	}
	return nil
}

// checkOpened checks the file f, opened by the agent's path rel, by where
// it really is: rel was checked before it was opened, but a symlink
// swapped in meanwhile, or a path too long to resolve, can lead somewhere
// else. It returns f's real workspace-relative path (rel itself where the
// system cannot say, outside Linux, or for an unsandboxed profile).
func (w *ws) checkOpened(f *os.File, rel string, prof sandbox.Profile) (string, error) {
	if prof.Unsandboxed {
		return rel, nil
	}
	real, err := sandbox.OpenedPath(f)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return rel, nil
	case err != nil:
		return "", refusal("could not be checked: where it leads cannot be told (" + err.Error() + ")")
	}
	rel, ok := under(w.root, real)
	if !ok {
		return "", refusal("leads outside the workspace, or was removed while being opened")
	}
	return rel, w.checkPath(prof, rel, accessRead)
}

// checked resolves agent path p to a workspace-relative path and checks it,
// symlinks evaluated, against what profile prof allows. The lexical path is
// returned (os.Root confines it again when it is opened); a path whose
// real location cannot be worked out is refused unless prof is unsandboxed.
func (w *ws) checked(prof sandbox.Profile, p string, a access) (string, error) {
	rel, err := resolve(w.root, w.alias, p)
	if err != nil || prof.Unsandboxed {
		return rel, err
	}
	if err := w.checkPath(prof, rel, a); err != nil {
		return "", err
	}
	real, err := w.realRel(rel)
	if err != nil {
		// Leads out, dangles or cannot be read: os.Root refuses such a
		// path when it is opened, with the error the agent should see.
		return rel, nil
	}
	if a == accessRelease && real != rel {
		a = accessWrite
	}
	return rel, w.checkPath(prof, real, a)
}

// released is the instruction path write_file may release for rel: the
// one rel names itself, with no symlink on the way ("" if none).
func (w *ws) released(rel string) string {
	inst := sandbox.InstructionOf(rel)
	if inst == "" {
		return ""
	}
	if real, err := w.realRel(rel); err != nil || real != rel {
		return ""
	}
	return inst
}

// writeScript replaces "$1" (relative to the working directory, the
// workspace) with standard input, atomically: a temporary file beside it,
// mode "$2", synced, renamed over it. With "$3" = 1 it makes the missing
// directories first.
const writeScript = `set -e
if [ "$3" = 1 ]; then mkdir -p -- "$(dirname -- "$1")"; fi
t=$(mktemp -- "$(dirname -- "$1")/.toolgate-XXXXXX.toolgate-tmp")
trap 'rm -f -- "$t"' EXIT
cat > "$t"
chmod -- "$2" "$t"
sync -- "$t"
mv -f -- "$t" "$1"
trap - EXIT`

// writeInSandbox does the last step of write_file, creating and renaming
// the file, inside the call's sandbox. The checks before it (protected,
// hidden, symlinks, parent) run in toolgate's process and so could be raced
// by a command running at the same time that swaps a directory for a
// symlink; inside the sandbox the kernel holds the protected paths
// read-only whatever the path resolves to.
func (w *ws) writeInSandbox(prof sandbox.Profile, rel string, data []byte, mode fs.FileMode, mkdirs bool, release string) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	mk := "0"
	if mkdirs {
		mk = "1"
	}
	argv := []string{"/bin/sh", "-c", writeScript, "sh", rel, fmt.Sprintf("%o", mode.Perm()), mk}
	var c *sandbox.Cmd
	var err error
	if release != "" {
		c, err = w.sb.CommandReleasing(ctx, prof.Name, w.root, argv, release)
	} else {
		c, err = w.sb.Command(ctx, prof.Name, w.root, argv)
	}
	if err != nil {
		return fmt.Errorf("the sandbox: %w", err)
	}
	var stderr strings.Builder
	c.Stdin, c.Stderr = bytes.NewReader(data), &stderr
	err = c.Run()
	c.Kill()
	removed, cerr := c.Cleanup()
	if herr := c.HoldErr(); herr != nil {
		w.log.Warn("a protected or masked path changed on the host while a write ran", "err", herr)
		return fmt.Errorf("toolgate: %w", herr)
	}
	if cerr != nil {
		w.log.Error("a write left what it created at a protected path", "err", cerr)
		return fmt.Errorf("toolgate could not remove what the write created at a protected path, which can become code or policy outside the sandbox; have the user remove it: %w", cerr)
	}
	if len(removed) > 0 {
		where := "deleted"
		if c.Quarantine != "" {
			where = "kept in " + c.Quarantine
		}
		return refusal(fmt.Sprintf("toolgate removed %s after the write (%s): it did not exist before, and it is a protected path or on the way to one, "+
			"or it is a repository at a submodule's path that git at the root would enter "+
			"(it would become code or policy outside the sandbox)", strings.Join(removed, ", "), where))
	}
	switch msg := strings.TrimSpace(stderr.String()); {
	case err == nil:
		return nil
	case strings.Contains(msg, "Read-only file system") || strings.Contains(msg, "Device or resource busy"):
		return refusal(fmt.Sprintf("is protected: it stays read-only in the sandbox profile %q", prof.Name))
	case msg != "":
		return fmt.Errorf("%s", msg)
	default:
		return err
	}
}
