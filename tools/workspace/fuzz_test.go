package workspace

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// FuzzResolve checks the confinement invariant for any path an agent may
// send: it is refused, or everything it reaches is inside the root. Three
// layers are checked: the lexical resolve, the symlink-evaluating realRel,
// and an actual open through withRoot, whose file descriptor is read back
// from /proc to see where it really landed.
func FuzzResolve(f *testing.F) {
	fx := newFixture(f)
	w, err := newWS(Options{Root: fx.root, Sandbox: testSandbox(f, fx.root)})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		"",                       // the root itself
		".",                      // same
		"hello.txt",              // plain file
		"./sub/../hello.txt",     // dot-dot that stays inside
		"..",                     // the parent
		"../outside/secret.txt",  // sibling directory
		"sub/../../outside",      // climbs out through a real dir
		"/etc/passwd",            // absolute, outside
		fx.root + "/hello.txt",   // absolute, inside
		fx.root + "/../outside",  // absolute, climbs out
		fx.root + "x/y",          // absolute, root is only a string prefix
		"link_root/etc/passwd",   // link to /
		"link_secret",            // absolute link out
		"link_rel_out",           // relative link out
		"dirlink_out/secret.txt", // directory link out
		"a/c/secret.txt",         // chain: in-root link then a link out
		"link_in_abs",            // absolute link that stays in
		"sub_link/inner.txt",     // directory link that stays in
		"dangling_out",           // dangling link out
		"a/c/../../hello.txt",    // lexically in, really through the chain
		"x\x00y",                 // NUL byte
		"//sub///inner.txt",      // repeated separators
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rel, err := resolve(w.root, w.alias, p)
		if err != nil {
			return
		}
		if rel != "." && !filepath.IsLocal(rel) {
			t.Fatalf("resolve(%q) = %q, not local", p, rel)
		}
		if _, ok := under(w.root, filepath.Join(w.root, rel)); !ok {
			t.Fatalf("resolve(%q) = %q, joins outside the root", p, rel)
		}
		if real, err := w.realRel(rel); err == nil {
			if real != "." && !filepath.IsLocal(real) {
				t.Fatalf("realRel(%q) = %q, not local", rel, real)
			}
		}
		_ = w.withRoot(rel, func(r *os.Root, rel string) error {
			f, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			got, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
			if err != nil {
				t.Skip("no /proc to check where the file is")
			}
			if _, ok := under(w.root, got); !ok {
				t.Fatalf("path %q opened %s, outside the root %s", p, got, w.root)
			}
			return nil
		})
	})
}
