package workspace

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

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
	// Sandboxed names the servers besides the built-in one that run in
	// the sandbox, where they may change the workspace: their calls not
	// annotated read-only are fenced as the built-in commands are
	// (fence.go).
	Sandboxed []string
	// Outside names the servers that open the workspace's files outside
	// the sandbox: their calls are fenced off from the commands. Calls to
	// other servers (remote ones) take no fence.
	Outside []string
	// Pointed names those of Outside started in the workspace or given it
	// (their directory, or an argument, at or under the root): any call
	// of theirs not annotated read-only may change it (git checkout with
	// no path), so it runs alone, whether it names a path or not.
	Pointed []string

	fence fence
}

// maxLinkArgs bounds the distinct strings of one call that are looked at,
// and maxLinkLooks the file system lookups for them (look.spend); a call
// that needs more is refused (ErrTooManyPaths), not let through unread.
const (
	maxLinkArgs  = 1 << 14
	maxLinkLooks = 1 << 15
)

// ErrTooManyPaths is Links' error for a call with more strings, or path
// names, than it looks at.
var ErrTooManyPaths = errors.New("too many strings to look at for links")

// Links returns, for each string argument of c that names a path in the
// workspace through a symbolic link, or by another Unicode normalization
// of a name than the one on disk (absolute, from the home, or relative to
// the root), the path it resolves to: every link on the way resolved,
// names spelled as on disk; nil when there is none. It only reads the
// file system (lstat, readlink, a directory's names). It holds the links
// as they are until release is called (gate.Linker), nil when c takes no
// fence: see fence.go; settle is true for a call that may change them.
func (l *Links) Links(ctx context.Context, c toolgate.Call) (links map[string]string, release func(), settle bool, err error) {
	return l.check(ctx, c, l.side(c))
}

func (l *Links) check(ctx context.Context, c toolgate.Call, s side) (map[string]string, func(), bool, error) {
	release, err := l.fence.hold(ctx, s)
	if err != nil {
		return nil, nil, false, err
	}
	if l.Root == "" || slices.Contains(l.Skip, c.Server) {
		return nil, release, false, nil
	}
	links, named, err := l.find(c.Args)
	if err != nil {
		if release != nil {
			release()
		}
		return nil, nil, false, err
	}
	if s == looks && named && !readOnly(c) {
		// A relative name of the workspace, which side could not tell
		// without a look: the call may change it, so it runs alone.
		release()
		return l.check(ctx, c, change)
	}
	// A change given up on may still be done later, after its links are
	// let go: its server is stopped first.
	return links, release, s == change, nil
}

// find returns the links among the strings in v (Links), and whether one
// of them is a relative path whose first name exists in the workspace.
func (l *Links) find(v any) (links map[string]string, named bool, err error) {
	lk := &look{l: l, seen: map[string]bool{}}
	if err := lk.walk(v); err != nil {
		return nil, false, err
	}
	return lk.links, lk.named, nil
}

// look is one call's look at the workspace for links.
type look struct {
	l     *Links
	seen  map[string]bool
	links map[string]string
	named bool
	// looks counts the lookups made (maxLinkLooks: a path looked up
	// counts 1, a directory read 1 and 1 more per 64 entries); found keeps
	// what each path looked up found, dirs each directory read, by real
	// path (aliases).
	looks int
	found map[string]string
	dirs  map[string]map[string][]string
	// realRoot is the root's real path, read when a path exists.
	realRoot string
}

func (lk *look) walk(v any) error {
	for x := range stringsIn(v) {
		if lk.seen[x] {
			continue
		}
		if lk.seen[x] = true; len(lk.seen) > maxLinkArgs {
			return fmt.Errorf("%w: the call holds more than %d distinct strings", ErrTooManyPaths, maxLinkArgs)
		}
		t, linked, rel, err := lk.through(x)
		if err != nil {
			return err
		}
		lk.named = lk.named || rel
		if linked {
			if lk.links == nil {
				lk.links = map[string]string{}
			}
			lk.links[x] = t
		}
	}
	return nil
}

// stringsIn yields the strings in v, a decoded JSON value, at any depth.
func stringsIn(v any) iter.Seq[string] {
	return func(yield func(string) bool) {
		var walk func(v any) bool
		walk = func(v any) bool {
			switch x := v.(type) {
			case string:
				return yield(x)
			case map[string]any:
				for _, e := range x {
					if !walk(e) {
						return false
					}
				}
			case []any:
				for _, e := range x {
					if !walk(e) {
						return false
					}
				}
			}
			return true
		}
		walk(v)
	}
}

// through reports whether s names a path in the workspace that goes
// through a symbolic link below the root, or that names an entry by
// another spelling than its own, and the path it resolves to; and
// whether s is a relative path whose first name exists.
func (lk *look) through(s string) (target string, linked, named bool, err error) {
	l := lk.l
	rel, relative, ok := l.local(s)
	if !ok || rel == "." {
		return "", false, ok && relative, nil
	}
	// The longest part of the path that exists, each name spelled as on
	// disk, as the server finds it.
	parts := strings.Split(rel, string(filepath.Separator))
	cur, respelled := l.Root, false
	n := 0
	for ; n < len(parts); n++ {
		name, ok, err := lk.onDisk(cur, parts[n])
		if err != nil {
			return "", false, false, err
		}
		if !ok {
			break
		}
		respelled = respelled || name != parts[n]
		parts[n] = name
		cur = filepath.Join(cur, name)
	}
	if n == 0 {
		return "", false, false, nil
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
	if lk.realRoot == "" {
		lk.realRoot = l.Root
		if r, err := filepath.EvalSymlinks(l.Root); err == nil {
			lk.realRoot = r
		}
	}
	real = l.named(real, lk.realRoot)
	if real == cur && !respelled {
		return "", false, named, nil
	}
	return filepath.Join(append([]string{real}, parts[n:]...)...), true, named, nil
}

// local returns the path in the workspace that s names as a server opens
// it (absolute, from the home, or relative to the root: relative is
// true), relative to the root ("." for the root itself), cleaned as the
// server cleans it before it opens anything: a newline or a length past
// the system's limit is no reason to look away.
func (l *Links) local(s string) (rel string, relative, ok bool) {
	if s == "" || strings.ContainsRune(s, 0) {
		// A name with NUL opens nothing.
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

// onDisk returns the name under which dir holds name as server-filesystem
// finds it: name itself, else the one entry whose NFC form is name's
// (two such entries: none, the server refuses the path). Each path is
// looked up once a call, each directory read once (by its real path),
// and what they cost is counted against maxLinkLooks.
func (lk *look) onDisk(dir, name string) (string, bool, error) {
	p := filepath.Join(dir, name)
	if found, ok := lk.found[p]; ok {
		return found, found != "", nil
	}
	if err := lk.spend(1); err != nil {
		return "", false, err
	}
	found := ""
	if _, err := os.Lstat(p); err == nil {
		found = name
	} else if strings.ContainsFunc(name, nfcAlias) {
		// Only a name with such a rune has another spelling.
		entries, err := lk.aliases(dir)
		if err != nil {
			return "", false, err
		}
		for _, e := range entries[norm.NFC.String(name)] {
			if found != "" {
				found = ""
				break
			}
			found = e
		}
	}
	if lk.found == nil {
		lk.found = map[string]string{}
	}
	lk.found[p] = found
	return found, found != "", nil
}

// aliases returns dir's entries that have another spelling (nfcAlias), by
// their NFC form: only those can be what such a name finds.
func (lk *look) aliases(dir string) (map[string][]string, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, nil
	}
	if m, ok := lk.dirs[real]; ok {
		return m, nil
	}
	var names []string
	if f, err := os.Open(real); err == nil {
		names, _ = f.Readdirnames(-1)
		f.Close()
	}
	if err := lk.spend(1 + len(names)/64); err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, e := range names {
		if strings.ContainsFunc(e, nfcAlias) {
			n := norm.NFC.String(e)
			m[n] = append(m[n], e)
		}
	}
	if lk.dirs == nil {
		lk.dirs = map[string]map[string][]string{}
	}
	lk.dirs[real] = m
	return m, nil
}

// spend counts n lookups against maxLinkLooks.
func (lk *look) spend(n int) error {
	if lk.looks += n; lk.looks > maxLinkLooks {
		return fmt.Errorf("%w: its paths need more than %d lookups (names, and directories read)", ErrTooManyPaths, maxLinkLooks)
	}
	return nil
}

// nfcAlias reports whether r can stand in a name that another name equals
// in NFC: a rune outside ASCII, or one of the three ASCII runes a rune
// outside it composes to (K for the Kelvin sign, ; and `).
func nfcAlias(r rune) bool {
	return r >= utf8.RuneSelf || r == 'K' || r == ';' || r == '`'
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
