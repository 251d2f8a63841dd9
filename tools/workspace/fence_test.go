package workspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestFence: commands (the built-in tools' and a sandboxed server's calls
// that may change the workspace) run together, and read-only calls to a
// server outside the sandbox run together, but never the two at once; a
// call through such a server that may change the workspace (not
// read-only, naming a path in it or going to a server given it) runs
// alone; the built-in and sandboxed servers' reads and the calls to
// remote servers take no fence (and get no release). Calls are let in in
// the order they came, so a waiting change keeps later reads out until it
// has run, and one that gives up waiting lets the rest in. Only a change
// settles (its server is done with it before its fence goes).
func TestFence(t *testing.T) {
	yes := true
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "notes.md"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l := &Links{Root: root, Home: filepath.Dir(root), Skip: []string{"workspace"}, Sandboxed: []string{"sh"},
		Outside: []string{"fs", "git"}, Pointed: []string{"git"}}
	command := toolgate.Call{Server: "workspace", Tool: "run_command"}
	builtinRead := toolgate.Call{Server: "workspace", Tool: "workspace-read", Annotations: toolgate.Annotations{ReadOnly: &yes}}
	read := toolgate.Call{Server: "fs", Tool: "read_file", Annotations: toolgate.Annotations{ReadOnly: &yes}}
	resource := toolgate.Call{Server: "fs", Kind: toolgate.KindResource}
	write := toolgate.Call{Server: "fs", Tool: "write_file", Args: map[string]any{"path": filepath.Join(root, "new/x")}}
	// Naming the workspace from the home, or a name in it, or the root.
	writes := []toolgate.Call{write,
		{Server: "fs", Tool: "write_file", Args: map[string]any{"path": "~/" + filepath.Base(root) + "/x"}},
		{Server: "fs", Tool: "edit_file", Args: map[string]any{"edits": []any{map[string]any{"path": "notes.md"}}}},
		{Server: "fs", Tool: "git_checkout", Args: map[string]any{"repo_path": root}}}
	// Naming no path in the workspace: it may still follow a link there.
	fetch := toolgate.Call{Server: "fs", Tool: "fetch", Args: map[string]any{"url": "https://example.com", "name": "new-name"}}
	remote := toolgate.Call{Server: "github", Tool: "remote"}
	// A sandboxed server's call may change the workspace; its read not.
	sandboxed := toolgate.Call{Server: "sh", Tool: "exec"}
	sandboxedRead := toolgate.Call{Server: "sh", Tool: "sandbox-read", Annotations: toolgate.Annotations{ReadOnly: &yes}}
	// A server given the workspace changes it with no path named.
	checkout := toolgate.Call{Server: "git", Tool: "git_checkout", Args: map[string]any{"branch": "evil"}}
	// A definition nobody approved: its read-only hint is not believed.
	changedRead := read
	changedRead.Pin = toolgate.Pin{State: toolgate.PinChanged}
	changedRead.Args = map[string]any{"path": "notes.md"}

	// try holds c if it can start now, without waiting.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	try := func(c toolgate.Call) (func(), bool) {
		_, release, _, err := l.Links(done, c)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Links: %v", err)
		}
		if fenced := release != nil; err == nil && fenced == slices.Contains([]string{"workspace-read", "remote", "sandbox-read"}, c.Tool) {
			t.Fatalf("%s: fenced %v", c.Tool, fenced)
		}
		if release == nil {
			release = func() {}
		}
		return release, err == nil
	}
	mustStart := func(what string, c toolgate.Call) func() {
		t.Helper()
		release, ok := try(c)
		if !ok {
			t.Fatalf("%s could not start", what)
		}
		return release
	}
	mustWait := func(what string, c toolgate.Call) {
		t.Helper()
		if _, ok := try(c); ok {
			t.Fatalf("%s started", what)
		}
	}

	c1, c2 := mustStart("a command", command), mustStart("a sandboxed server's call", sandboxed)
	mustWait("a read through fs beside commands", read)
	mustWait("a resource read beside commands", resource)
	mustWait("a write through fs beside commands", write)
	mustWait("a call through fs naming no workspace path beside commands", fetch)
	mustStart("a built-in read beside commands", builtinRead)()
	mustStart("a call to a remote server beside commands", remote)()
	mustStart("a sandboxed server's read beside commands", sandboxedRead)()
	mustStart("a second command", command)()
	c1()
	mustWait("a read through fs beside a command", read)
	c2()

	r1, r2 := mustStart("a read through fs", read), mustStart("a resource read", resource)
	mustWait("a command beside reads", command)
	for _, w := range append(writes, checkout) {
		mustWait(fmt.Sprintf("a change beside reads (%v)", w.Args), w)
	}
	mustStart("a call naming no workspace path beside reads", fetch)()
	mustWait("an unapproved read-only tool beside reads", changedRead)
	r1()
	r2()

	w := mustStart("a write through fs", write)
	mustWait("a read beside a write", read)
	mustWait("a second write", write)
	mustStart("a built-in read beside a write", builtinRead)()
	w()

	// First come, first served: a write waiting behind reads keeps a
	// later read out; a command waiting behind it starts once it gave up.
	r := mustStart("a read through fs", read)
	ctx, giveUp := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() {
		_, release, _, err := l.Links(ctx, write)
		if err == nil {
			release()
		}
		waited <- err
	}()
	queued := func(n int) func() bool {
		return func() bool {
			l.fence.mu.Lock()
			defer l.fence.mu.Unlock()
			return len(l.fence.queue) == n
		}
	}
	toolgatetest.Eventually(t, "the write to wait", queued(1))
	mustWait("a read behind a waiting write", read)
	started := make(chan func(), 1)
	go func() {
		_, release, _, err := l.Links(context.Background(), command)
		if err != nil {
			t.Error(err)
		}
		started <- release
	}()
	toolgatetest.Eventually(t, "the command to wait", queued(2))
	giveUp()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("the write that gave up: %v", err)
	}
	toolgatetest.Eventually(t, "the queue after the write left", queued(1))
	r()
	(<-started)()
	mustStart("a read once all is done", read)()

	// A change's server must be done with it before its fence goes; no
	// other call's.
	changes := append(append([]toolgate.Call{}, writes...), checkout, changedRead)
	for i, c := range append(changes, read, resource, fetch, command, sandboxed, builtinRead, remote) {
		_, release, settle, err := l.Links(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if release != nil {
			release()
		}
		if want := i < len(changes); settle != want {
			t.Errorf("%s %v: settle %v, want %v", c.Tool, c.Args, settle, want)
		}
	}
}
