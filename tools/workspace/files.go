package workspace

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/tools/sandbox"
)

// refusal is a problem the agent caused (a binary file, a missing parent
// directory); its text is shown as is. Path errors are formatted by pathError.
type refusal string

func (r refusal) Error() string { return string(r) }

// toolError formats err for the agent: refusals verbatim, everything else as
// a problem with path p.
func (w *ws) toolError(p string, err error) *mcp.CallToolResult {
	var r refusal
	if errors.As(err, &r) {
		return mcp.NewToolResultError(fmt.Sprintf("path %q: %s", p, r))
	}
	return mcp.NewToolResultError(w.pathError(p, err))
}

func (w *ws) readFile(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	p, err := req.RequireString("path")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	prof, refused := w.confine(req, sandbox.ReadOnly, accessRead)
	if refused != nil {
		return refused, nil
	}
	rel, err := w.checked(prof, p, accessRead)
	if err != nil {
		return w.toolError(p, err), nil
	}
	var data []byte
	err = w.withRoot(rel, func(r *os.Root, rel string) error {
		var rerr error
		data, rerr = w.read(ctx, r, rel, prof)
		return rerr
	})
	w.log.DebugContext(ctx, "workspace call", "tool", ToolReadFile, "bytes", len(data), "err", err)
	if err != nil {
		return w.toolError(p, err), nil
	}
	return mcp.NewToolResultText(string(data)), nil
}

// hiddenFile refuses fi, the file a checked name led to, when it is
// hidden by identity: a Hide path reached by another name (a hard link, a
// path swapped since the check), or another name for a secret file of the
// workspace that the runs mask.
func (w *ws) hiddenFile(ctx context.Context, fi fs.FileInfo) error {
	if w.sb.HiddenFile(fi) {
		return refusal("is hidden from the agent's tools (toolgate's own files and secret stores are never visible)")
	}
	secret, err := w.sb.LinkedSecret(ctx, fi)
	switch {
	case err != nil:
		return refusal("has other names (hard links), and toolgate could not check that it is not a secret file of the workspace: " + err.Error())
	case secret != "":
		return refusal(fmt.Sprintf("is another name (a hard link) for the workspace's secret file %s, which the sandbox masks: "+
			"it is refused as %s is, and no sandboxed command runs until the user gives %s a single name", secret, secret, secret))
	}
	return nil
}

// read returns the contents of regular text file rel, or a refusal.
func (w *ws) read(ctx context.Context, r *os.Root, rel string, prof sandbox.Profile) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not hang the call; it is then refused
	// as "not a regular file" below.
	f, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if _, err := w.checkOpened(f, rel, prof); err != nil {
		return nil, err
	}
	if !prof.Unsandboxed {
		if err := w.hiddenFile(ctx, fi); err != nil {
			return nil, err
		}
	}
	switch {
	case fi.IsDir():
		return nil, refusal("is a directory; use list_dir")
	case !fi.Mode().IsRegular():
		return nil, refusal("is not a regular file (" + fi.Mode().Type().String() + ")")
	case fi.Size() > w.maxRead:
		return nil, refusal(fmt.Sprintf("is %d bytes, over the read limit of %d bytes; read part of it with run_command (e.g. head, sed -n)", fi.Size(), w.maxRead))
	}
	data, err := io.ReadAll(io.LimitReader(f, w.maxRead+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > w.maxRead {
		return nil, refusal(fmt.Sprintf("grew past the read limit of %d bytes while being read", w.maxRead))
	}
	if bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data) {
		return nil, refusal(fmt.Sprintf("is a binary file (%d bytes); read_file returns UTF-8 text only", len(data)))
	}
	return data, nil
}

func (w *ws) writeFile(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	p, err := req.RequireString("path")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	content, err := req.RequireString("content")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	mkdirs := req.GetBool("create_dirs", false)
	prof, refused := w.confine(req, sandbox.WorkspaceWrite, accessWrite)
	if refused != nil {
		return refused, nil
	}
	rel, err := w.checked(prof, p, accessRelease)
	if err == nil && rel == "." {
		err = refusal("is the workspace root, not a file")
	}
	if err != nil {
		return w.toolError(p, err), nil
	}
	release := w.released(rel)
	err = w.withRoot(rel, func(r *os.Root, at string) error {
		if at != rel {
			release = "" // a link os.Root would not follow, resolved: not the path the rules saw
		}
		return w.write(r, prof, at, []byte(content), mkdirs, release)
	})
	w.log.DebugContext(ctx, "workspace call", "tool", ToolWriteFile, "bytes", len(content), "err", err)
	if err != nil {
		return w.toolError(p, err), nil
	}
	return mcp.NewToolResultText(fmt.Sprintf("wrote %d bytes to %s", len(content), rel)), nil
}

// write replaces rel with data atomically: a temporary file in the same
// directory is written, synced and renamed over rel. An existing file keeps
// its permissions; a symlink in the workspace is written through (its target
// is replaced, not the link).
func (w *ws) write(r *os.Root, prof sandbox.Profile, rel string, data []byte, mkdirs bool, release string) error {
	dir, base := filepath.Dir(rel), filepath.Base(rel)
	// In a sandbox, the missing directories are made there, with the
	// file: what the call creates is then watched like what a command
	// creates (a .git where there was none is removed afterwards).
	if mkdirs && dir != "." && prof.Unsandboxed {
		if err := r.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	mode := fs.FileMode(0o644)
	fi, err := r.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, derr := r.Stat(dir); errors.Is(derr, fs.ErrNotExist) && !mkdirs {
			return refusal("parent directory " + dir + " does not exist; pass create_dirs: true to create it")
		}
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		if _, err := r.Stat(rel); err != nil { // confined: refuses a link out
			return err
		}
		real, err := w.realRel(rel)
		if err != nil {
			return err
		}
		if real == rel {
			return refusal("is a symlink that could not be resolved")
		}
		if err := w.checkPath(prof, real, accessWrite); err != nil {
			return err
		}
		return w.write(r, prof, real, data, false, "")
	case fi.IsDir():
		return refusal("is a directory")
	case !fi.Mode().IsRegular():
		return refusal("is not a regular file (" + fi.Mode().Type().String() + ")")
	default:
		mode = fi.Mode().Perm()
	}

	if !prof.Unsandboxed {
		return w.writeInSandbox(prof, rel, data, mode, mkdirs, release)
	}
	tmp := filepath.Join(dir, "."+base+"."+randomSuffix()+".toolgate-tmp")
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.Rename(tmp, rel)
	}
	if err != nil {
		_ = r.Remove(tmp) // best effort; the original error is the one to report
		return err
	}
	return nil
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}

// entry is one line of list_dir's output.
type entry struct {
	name   string
	kind   byte // 'd', 'f', 'l' or '?'
	size   int64
	target string
}

func (w *ws) listDir(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	p := req.GetString("path", "")
	prof, refused := w.confine(req, sandbox.ReadOnly, accessRead)
	if refused != nil {
		return refused, nil
	}
	rel, err := w.checked(prof, p, accessRead)
	if err != nil {
		return w.toolError(p, err), nil
	}
	var (
		entries []entry
		more    bool
	)
	err = w.withRoot(rel, func(r *os.Root, rel string) error {
		var lerr error
		entries, more, lerr = w.list(r, rel, prof)
		return lerr
	})
	w.log.DebugContext(ctx, "workspace call", "tool", ToolListDir, "entries", len(entries), "err", err)
	if err != nil {
		return w.toolError(p, err), nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d entries\n", rel, len(entries))
	for _, e := range entries {
		name := e.name
		if strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			name = strconv.Quote(name)
		}
		switch e.kind {
		case 'd':
			fmt.Fprintf(&b, "d %s/\n", name)
		case 'f':
			fmt.Fprintf(&b, "f %s %d\n", name, e.size)
		case 'l':
			fmt.Fprintf(&b, "l %s -> %s\n", name, e.target)
		default:
			fmt.Fprintf(&b, "? %s\n", name)
		}
	}
	if more {
		fmt.Fprintf(&b, "(listing stopped at %d entries)\n", w.maxList)
	}
	return mcp.NewToolResultText(b.String()), nil
}

// list reads up to w.maxList entries of directory rel, sorted by name,
// without those hidden from profile prof.
func (w *ws) list(r *os.Root, rel string, prof sandbox.Profile) ([]entry, bool, error) {
	f, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	real, err := w.checkOpened(f, rel, prof)
	if err != nil {
		return nil, false, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if !fi.IsDir() {
		return nil, false, refusal("is not a directory; use read_file")
	}
	des, err := f.ReadDir(w.maxList + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	more := len(des) > w.maxList
	if more {
		des = des[:w.maxList]
	}
	out := make([]entry, 0, len(des))
	for _, de := range des {
		e := entry{name: de.Name(), kind: '?'}
		switch t := de.Type(); {
		case t.IsDir():
			e.kind = 'd'
		case t&fs.ModeSymlink != 0:
			e.kind = 'l'
			e.target, _ = r.Readlink(filepath.Join(rel, de.Name())) // empty target if unreadable
		case t.IsRegular():
			e.kind = 'f'
			if info, ierr := de.Info(); ierr == nil {
				e.size = info.Size()
			}
		}
		if prof.Unsandboxed || !w.sb.Hidden(filepath.Join(w.root, real, e.name)) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return out, more, nil
}
