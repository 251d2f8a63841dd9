package workspace

import (
	"context"
	"slices"
	"sync"

	"github.com/toolgate/toolgate"
)

// The fence keeps the workspace's links as the gate found them (Links)
// until the call is answered. A command swapping hk between a directory
// and a link to .git/hooks while server-filesystem writes hk/x would
// otherwise land some writes in the hooks, which the check saw as plain
// directories. So a call to a server outside the sandbox waits for the
// commands running (the built-in ones, and a sandboxed server's calls
// that may change the workspace), and they for it; a call that may
// change the workspace (not annotated read-only, naming a path in it or
// to a server given it) runs alone. Calls of one toolgate process are
// fenced, not those of another process serving the same workspace.
//
// A call's side of the fence: calls on one side may run together; the
// two sides never do, and a change runs alone.
type side uint8

const (
	// unfenced: a read by the built-in tools, which open every path
	// through os.Root and check the real path they opened, a read by a
	// sandboxed server, and a call to a server elsewhere.
	unfenced side = iota
	// commands: the calls that change the workspace in the sandbox: the
	// built-in tools' (a command's processes all end with its call, its
	// process group killed) and a sandboxed server's.
	commands
	// looks: a call to a server outside the sandbox, which follows links
	// where the gate found them.
	looks
	// change: a call to such a server that is not annotated read-only and
	// names a path in the workspace, or goes to a server started in it or
	// given it: it may make or move a link there itself (git checkout).
	change
)

// fence admits calls by side, first come first served: a call waits for
// every call before it that it may not run beside, so neither side
// starves the other.
type fence struct {
	mu      sync.Mutex
	running [change + 1]int
	queue   []*fenceWaiter
}

type fenceWaiter struct {
	s    side
	done chan struct{}
}

// fits reports whether a call of side s may start beside those running.
func (f *fence) fits(s side) bool {
	r := f.running
	switch s {
	case commands:
		return r[looks]+r[change] == 0
	case looks:
		return r[commands]+r[change] == 0
	}
	return r[commands]+r[looks]+r[change] == 0
}

// admit starts the waiters at the head of the queue that fit. f.mu is held.
func (f *fence) admit() {
	for len(f.queue) > 0 && f.fits(f.queue[0].s) {
		w := f.queue[0]
		f.queue = f.queue[1:]
		f.running[w.s]++
		close(w.done)
	}
}

// hold waits until a call of side s may run, and returns its release
// (nil for an unfenced call), or ctx's error if it ends first.
func (f *fence) hold(ctx context.Context, s side) (func(), error) {
	if s == unfenced {
		return nil, nil
	}
	release := sync.OnceFunc(func() {
		f.mu.Lock()
		f.running[s]--
		f.admit()
		f.mu.Unlock()
	})
	f.mu.Lock()
	if len(f.queue) == 0 && f.fits(s) {
		f.running[s]++
		f.mu.Unlock()
		return release, nil
	}
	w := &fenceWaiter{s: s, done: make(chan struct{})}
	f.queue = append(f.queue, w)
	f.mu.Unlock()
	select {
	case <-w.done:
		return release, nil
	case <-ctx.Done():
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.Index(f.queue, w); i >= 0 {
		f.queue = slices.Delete(f.queue, i, i+1)
		f.admit()
		return nil, ctx.Err()
	}
	// Admitted as ctx ended: give the place back.
	f.running[s]--
	f.admit()
	return nil, ctx.Err()
}

// side is the side of the fence call c runs on, as far as its arguments
// tell without a look at the file system: a relative path's first name
// is looked up by check.
func (l *Links) side(c toolgate.Call) side {
	switch ro := readOnly(c); {
	case (slices.Contains(l.Skip, c.Server) || slices.Contains(l.Sandboxed, c.Server)) && !ro:
		return commands
	case !slices.Contains(l.Outside, c.Server):
		return unfenced
	case ro:
		return looks
	case slices.Contains(l.Pointed, c.Server) || l.names(c.Args):
		return change
	}
	return looks
}

// readOnly reports whether c only reads: a resource, a prompt or a
// completion, or a tool whose approved definition is annotated read-only.
func readOnly(c toolgate.Call) bool {
	if a := c.TrustedAnnotations().ReadOnly; a != nil && *a {
		return true
	}
	return c.KindName() != toolgate.KindTool
}

// names reports whether v, a call's decoded arguments, holds a string
// naming a path in the workspace absolutely or from the home.
func (l *Links) names(v any) bool {
	for s := range stringsIn(v) {
		if _, relative, ok := l.local(s); ok && !relative {
			return true
		}
	}
	return false
}
