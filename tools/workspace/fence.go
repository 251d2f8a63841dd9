package workspace

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/toolgate/toolgate"
)

// A call's side of the fence (Links.Hold). Calls on one side may run
// together; the two sides never do, and a change runs alone.
type side uint8

const (
	// unfenced: a read by the built-in tools, which open every path
	// through os.Root and check the real path they opened, and a call to
	// a server that is sandboxed or elsewhere.
	unfenced side = iota
	// commands: the built-in tools that change the workspace. A command's
	// processes all end with its call (its process group is killed).
	commands
	// looks: a call to a server outside the sandbox, which follows links
	// where the gate found them.
	looks
	// change: a call to such a server that is not annotated read-only and
	// names a path in the workspace: it may make or move a link there
	// itself (git checkout).
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

// hold waits until a call of side s may run, and returns its release, or
// ctx's error if it ends first.
func (f *fence) hold(ctx context.Context, s side) (func(), error) {
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

// side is the side of the fence call c runs on.
func (l *Links) side(c toolgate.Call) side {
	ro := c.KindName() != toolgate.KindTool
	if a := c.TrustedAnnotations().ReadOnly; a != nil && *a {
		ro = true
	}
	switch {
	case slices.Contains(l.Skip, c.Server) && !ro:
		return commands
	case !slices.Contains(l.Outside, c.Server):
		return unfenced
	case ro || !l.names(c.Args):
		return looks
	}
	return change
}

// names reports whether v, a call's decoded arguments, holds a string
// naming a path that exists in the workspace: absolute, from the home, or
// relative to the root (whose first name is then looked up).
func (l *Links) names(v any) bool {
	switch x := v.(type) {
	case string:
		p, relative, ok := l.local(x)
		if !ok || !relative {
			return ok
		}
		first, _, _ := strings.Cut(p, string(filepath.Separator))
		_, err := os.Lstat(filepath.Join(l.Root, first))
		return err == nil
	case map[string]any:
		for _, e := range x {
			if l.names(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if l.names(e) {
				return true
			}
		}
	}
	return false
}

// Hold keeps the workspace's links as they are for call c until release
// is called (gate.Linker), waiting while calls that could change them
// run. The gate holds it from the links check to the answer: a command
// swapping hk between a directory and a link to .git/hooks while
// server-filesystem writes hk/x would otherwise land some writes in the
// hooks, which the check saw as plain directories. A call to a server
// outside the sandbox waits for the built-in commands running, and they
// for it; a call that may change the workspace (not annotated read-only,
// naming a path in it) runs alone. Calls of one toolgate process are fenced, not those of
// another process serving the same workspace.
func (l *Links) Hold(ctx context.Context, c toolgate.Call) (release func(), err error) {
	s := l.side(c)
	if l.Root == "" || s == unfenced {
		return func() {}, nil
	}
	return l.fence.hold(ctx, s)
}
