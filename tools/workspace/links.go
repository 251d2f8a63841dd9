package workspace

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/toolgate/toolgate"
)

// Links finds the workspace paths among a call's arguments that go through
// a symbolic link in the workspace, for the gate (gate.Linker). The rules
// read paths as text, and a server outside the sandbox follows links:
// server-filesystem writes hk/pre-commit into .git/hooks when a command
// made hk a link to it. A link that stays in the workspace is no way out,
// so its name is all the rules see, unless the gate asks them again with
// the path it resolves to.
type Links struct {
	// Root is the workspace, absolute, as configured.
	Root string
	// Skip names the servers whose calls are not looked at: the built-in
	// one, whose file tools open paths through os.Root and whose commands
	// run in the sandbox.
	Skip []string
}

// Bounds of the work one call can cause: the string arguments looked at,
// and a path's length.
const (
	maxLinkArgs = 64
	maxLinkPath = 4096
)

// Links returns, for each string argument of c that names a path in the
// workspace through a symbolic link (absolute, or relative to the root,
// with a slash or a leading dot), the path it resolves to. nil when there
// is none. It only reads the file system (lstat, readlink).
func (l Links) Links(c toolgate.Call) map[string]string {
	if l.Root == "" || slices.Contains(l.Skip, c.Server) {
		return nil
	}
	var out map[string]string
	n := 0
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			if n++; n > maxLinkArgs || out[x] != "" {
				return
			}
			if t, ok := l.through(x); ok {
				if out == nil {
					out = map[string]string{}
				}
				out[x] = t
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(c.Args)
	return out
}

// through reports whether s names a path in the workspace that goes
// through a symbolic link below the root, and the path it resolves to.
func (l Links) through(s string) (string, bool) {
	if len(s) > maxLinkPath || strings.ContainsAny(s, "\x00\n") || !strings.Contains(s, "/") && !strings.HasPrefix(s, ".") {
		return "", false
	}
	p := s
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.Root, p)
	}
	rel, err := filepath.Rel(l.Root, filepath.Clean(p))
	if err != nil || !filepath.IsLocal(rel) {
		return "", false
	}
	cur := l.Root
	parts := strings.Split(rel, string(filepath.Separator))
	for i, part := range parts {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err != nil {
			return "", false // what does not exist yet goes through no link
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		t, err := filepath.EvalSymlinks(cur)
		if err != nil {
			// A dangling or looping link: where it leads is unknown.
			t = cur
			if dst, err := os.Readlink(cur); err == nil {
				t = dst
				if !filepath.IsAbs(dst) {
					t = filepath.Join(filepath.Dir(cur), dst)
				}
			}
		}
		return l.named(filepath.Join(append([]string{t}, parts[i+1:]...)...)), true
	}
	return "", false
}

// named writes the resolved path t under Root as configured when it lies
// in the workspace's real directory, which EvalSymlinks gives when Root
// itself is reached through a link: the rules know the workspace by Root.
func (l Links) named(t string) string {
	real, err := filepath.EvalSymlinks(l.Root)
	if err != nil || real == l.Root {
		return t
	}
	if rel, err := filepath.Rel(real, t); err == nil && (rel == "." || filepath.IsLocal(rel)) {
		return filepath.Join(l.Root, rel)
	}
	return t
}
