package workspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/text/unicode/norm"

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
	// Home is the directory a leading ~ names: servers expand it
	// (server-filesystem does), with the home toolgate gives them.
	Home string
	// Outside names the servers that open the workspace's files outside
	// the sandbox: their calls are fenced off from the built-in commands
	// (fence.go). Calls to other servers (sandboxed, remote) take no fence.
	Outside []string

	fence fence
}

// maxLinkArgs bounds the distinct strings of one call that are looked at
// (each costs an lstat or a few); a call with more is refused
// (ErrTooManyPaths), not let through unread. maxLinkPath bounds a path's
// length.
const (
	maxLinkArgs = 4096
	maxLinkPath = 4096
)

// ErrTooManyPaths is Links' error for a call with more strings than it
// looks at.
var ErrTooManyPaths = errors.New("too many strings to look at for links")

// Links returns, for each string argument of c that names a path in the
// workspace through a symbolic link, or by another Unicode normalization
// of a name than the one on disk (absolute, from the home, or relative to
// the root), the path it resolves to: every link on the way resolved,
// names spelled as on disk; nil when there is none. It only reads the
// file system (lstat, readlink, a directory's names). It holds the links
// as they are until release is called (gate.Linker): see fence.go.
func (l *Links) Links(ctx context.Context, c toolgate.Call) (links map[string]string, release func(), err error) {
	return l.check(ctx, c, l.side(c))
}

func (l *Links) check(ctx context.Context, c toolgate.Call, s side) (map[string]string, func(), error) {
	release, err := l.fence.hold(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if l.Root == "" || slices.Contains(l.Skip, c.Server) {
		return nil, release, nil
	}
	links, named, err := l.find(c.Args)
	if err != nil {
		release()
		return nil, nil, err
	}
	if s == looks && named && !readOnly(c) {
		// A relative name of the workspace, which side could not tell
		// without a look: the call may change it, so it runs alone.
		release()
		return l.check(ctx, c, change)
	}
	return links, release, nil
}

// find returns the links among the strings in v (Links), and whether one
// of them is a relative path whose first name exists in the workspace.
func (l *Links) find(v any) (links map[string]string, named bool, err error) {
	seen := map[string]bool{}
	// The root's real path, read once a call, when a path exists.
	realRoot := ""
	real := func() string {
		if realRoot == "" {
			realRoot = l.Root
			if r, err := filepath.EvalSymlinks(l.Root); err == nil {
				realRoot = r
			}
		}
		return realRoot
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case string:
			if seen[x] {
				return nil
			}
			if seen[x] = true; len(seen) > maxLinkArgs {
				return fmt.Errorf("%w: the call holds more than %d distinct strings", ErrTooManyPaths, maxLinkArgs)
			}
			t, linked, rel := l.through(x, real)
			named = named || rel
			if linked {
				if links == nil {
					links = map[string]string{}
				}
				links[x] = t
			}
		case map[string]any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(v); err != nil {
		return nil, false, err
	}
	return links, named, nil
}

// through reports whether s names a path in the workspace that goes
// through a symbolic link below the root, or that names an entry by
// another normalization than its own, and the path it resolves to; and
// whether s is a relative path whose first name exists.
func (l *Links) through(s string, realRoot func() string) (target string, linked, named bool) {
	rel, relative, ok := l.local(s)
	if !ok || rel == "." {
		return "", false, ok && relative
	}
	// The longest part of the path that exists, each name spelled as on
	// disk: a server may find an entry by another normalization
	// (server-filesystem matches names by NFC).
	parts := strings.Split(rel, string(filepath.Separator))
	cur, respelled := l.Root, false
	n := 0
	for ; n < len(parts); n++ {
		name, ok := onDisk(cur, parts[n])
		if !ok {
			break
		}
		respelled = respelled || name != parts[n]
		parts[n] = name
		cur = filepath.Join(cur, name)
	}
	if n == 0 {
		return "", false, false
	}
	named = relative
	real, err := filepath.EvalSymlinks(cur)
	if err != nil {
		// A dangling or looping link: where it leads is unknown, so it is
		// judged by where it says.
		real = cur
		if dst, err := os.Readlink(cur); err == nil {
			real = dst
			if !filepath.IsAbs(dst) {
				real = filepath.Join(filepath.Dir(cur), dst)
			}
		}
	}
	real = l.named(real, realRoot())
	if real == cur && !respelled {
		return "", false, named
	}
	return filepath.Join(append([]string{real}, parts[n:]...)...), true, named
}

// local returns the path in the workspace that s names as a server opens
// it (absolute, from the home, or relative to the root: relative is
// true), relative to the root ("." for the root itself).
func (l *Links) local(s string) (rel string, relative, ok bool) {
	if s == "" || len(s) > maxLinkPath || strings.ContainsAny(s, "\x00\n") {
		return "", false, false
	}
	p := s
	if l.Home != "" && (p == "~" || strings.HasPrefix(p, "~/")) {
		p = filepath.Join(l.Home, p[1:])
	}
	if relative = !filepath.IsAbs(p); relative {
		p = filepath.Join(l.Root, p)
	}
	rel, err := filepath.Rel(l.Root, filepath.Clean(p))
	if err != nil || (rel != "." && !filepath.IsLocal(rel)) {
		return "", false, false
	}
	return rel, relative, true
}

// onDisk returns the name under which dir holds name: name itself, or its
// NFC or NFD form.
func onDisk(dir, name string) (string, bool) {
	if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
		return name, true
	}
	for _, f := range []norm.Form{norm.NFC, norm.NFD} {
		if alt := f.String(name); alt != name {
			if _, err := os.Lstat(filepath.Join(dir, alt)); err == nil {
				return alt, true
			}
		}
	}
	return "", false
}

// named writes the path t under Root as configured when it lies in the
// workspace's real directory realRoot, which EvalSymlinks gives when Root
// itself is reached through a link: the rules know the workspace by Root.
func (l *Links) named(t, realRoot string) string {
	if realRoot == l.Root {
		return t
	}
	if rel, err := filepath.Rel(realRoot, t); err == nil && (rel == "." || filepath.IsLocal(rel)) {
		return filepath.Join(l.Root, rel)
	}
	return t
}
