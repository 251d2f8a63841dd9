package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAnyWritableOnTheWay: a path is the agent's to repoint when its
// resolution passes through the workspace at any step: named there, a
// directory or link on the way, or a link's target, at any depth.
func TestAnyWritableOnTheWay(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws, out := filepath.Join(dir, "ws"), filepath.Join(dir, "out")
	for _, d := range []string{filepath.Join(ws, "inner"), filepath.Join(out, "store", "bin"), filepath.Join(out, "real")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		filepath.Join(out, "to-ws"):      ws,
		filepath.Join(ws, "result"):      filepath.Join(out, "store"),
		filepath.Join(out, "outer"):      filepath.Join(ws, "inner2"),
		filepath.Join(ws, "inner2"):      filepath.Join(out, "real"),
		filepath.Join(out, "rel"):        "../ws",
		filepath.Join(out, "plain"):      filepath.Join(out, "real"),
		filepath.Join(out, "loop"):       filepath.Join(out, "loop"),
		filepath.Join(out, "dangling"):   filepath.Join(ws, "not-yet"),
		filepath.Join(out, "store", "x"): "bin",
		filepath.Join(out, "lnk"):        filepath.Join(ws, "inner"),
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]bool{
		filepath.Join(ws, "x"):                       true,
		filepath.Join(ws, "nope", "x"):               true,
		filepath.Join(out, "x"):                      false,
		filepath.Join(out, "to-ws", "x"):             true,
		filepath.Join(ws, "result", "bin"):           true,
		filepath.Join(out, "outer", "rules"):         true,
		filepath.Join(out, "rel", "bin"):             true,
		filepath.Join(out, "plain", "rules"):         false,
		filepath.Join(out, "store", "x"):             false,
		filepath.Join(out, "loop", "x"):              true,
		filepath.Join(out, "dangling", "bin"):        true,
		filepath.Join(out, "real", "..", "..", "ws"): true,
		// The kernel takes ".." after a link from the link's target:
		// out/lnk/../rules.yaml is ws/rules.yaml (filepath.Join would
		// clean it to out/rules.yaml).
		out + "/lnk/../rules.yaml":   true,
		out + "/lnk/x/../../bin":     true,
		out + "/plain/../real/rules": false,
	} {
		if got := anyWritableOnTheWay(p, []string{ws}); got != want {
			t.Errorf("anyWritableOnTheWay(%s) = %v, want %v", p, got, want)
		}
	}
}
