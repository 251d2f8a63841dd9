package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// errOutside marks a path that leads outside the workspace. It never leaves
// the package: handlers turn it into a tool error.
var errOutside = errors.New("outside the workspace")

// resolve maps an agent-supplied path to a clean path relative to root, or
// refuses it. It is purely lexical (no file is touched): "" and "." mean the
// root, relative paths are taken from root, absolute paths must lie under
// root (or under alias, the root as configured before its symlinks were
// evaluated), and any ".." that climbs above root is refused. Symlinks are
// handled later by os.Root.
func resolve(root, alias, p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", errors.New("path contains a NUL byte")
	}
	if p == "" {
		return ".", nil
	}
	if filepath.IsAbs(p) {
		rel, ok := under(root, p)
		if !ok && alias != root {
			rel, ok = under(alias, p)
		}
		if !ok {
			return "", errOutside
		}
		return rel, nil
	}
	rel := filepath.Clean(p)
	if rel != "." && !filepath.IsLocal(rel) {
		return "", errOutside
	}
	return rel, nil
}

// under reports whether absolute path p lies in dir, and p relative to dir.
func under(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, filepath.Clean(p))
	if err != nil || (rel != "." && !filepath.IsLocal(rel)) {
		return "", false
	}
	return rel, true
}

// realRel evaluates the symlinks of rel (relative to w.root) and returns the
// real path, relative to w.root again, or errOutside. The longest existing
// prefix is evaluated and the missing rest appended, so it also works for a
// file about to be created. It is not race-free on its own: callers use its
// answer only through os.Root (which confines again) or for run_command's
// working directory.
func (w *ws) realRel(rel string) (string, error) {
	p := filepath.Join(w.root, rel)
	var rest []string
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			real = filepath.Join(append([]string{real}, rest...)...)
			r, ok := under(w.root, real)
			if !ok {
				return "", errOutside
			}
			return r, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		// A dangling symlink here is not "missing": appending its name to
		// the parent would hide where it points. Refuse it.
		if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%s is a symlink whose target does not exist", rel)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
}

// isEscape reports whether err is os.Root's refusal of a path that leaves
// the root (through ".." or a symlink). os does not export that error.
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}

// withRoot opens the workspace as an os.Root and runs fn on rel. When os.Root
// refuses a symlink, rel is resolved once with realRel: a link that stays in
// the workspace (os.Root refuses all absolute targets) is retried on its real
// path, still through os.Root; a link that leaves it is reported as outside.
func (w *ws) withRoot(rel string, fn func(r *os.Root, rel string) error) error {
	r, err := os.OpenRoot(w.root)
	if err != nil {
		return fmt.Errorf("open workspace: %w", err)
	}
	defer r.Close()
	err = fn(r, rel)
	if !isEscape(err) {
		return err
	}
	real, rerr := w.realRel(rel)
	if rerr != nil {
		// os.Root saw a link it will not follow and the link cannot be
		// resolved to a place inside (it leads out, or dangles): refuse.
		return errOutside
	}
	if real == rel {
		return errOutside
	}
	err = fn(r, real)
	if isEscape(err) {
		return errOutside
	}
	return err
}

// pathError turns a path problem into the message an agent sees.
func (w *ws) pathError(p string, err error) string {
	switch {
	case errors.Is(err, errOutside):
		return fmt.Sprintf("path %q is outside the workspace %s (paths must stay inside it; symlinks leading out are refused)", p, w.root)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("path %q does not exist in the workspace", p)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("path %q: permission denied", p)
	default:
		return fmt.Sprintf("path %q: %v", p, stripRoot(err, w.root))
	}
}

// stripRoot shortens os errors that repeat the workspace root.
func stripRoot(err error, root string) string {
	return strings.ReplaceAll(err.Error(), root+string(filepath.Separator), "")
}
