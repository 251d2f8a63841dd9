package workspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/toolgatetest"
	"github.com/toolgate/toolgate/tools/sandbox/sandboxtest"
)

// fixture is a workspace root next to an "outside" directory holding a
// secret, with symlinks of every kind between them.
type fixture struct {
	root, outside string
}

const secret = "TOP-SECRET-outside-the-workspace"

func newFixture(t testing.TB) fixture {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fx := fixture{root: filepath.Join(base, "ws"), outside: filepath.Join(base, "outside")}
	mkdir(t, fx.root)
	mkdir(t, fx.outside)
	write(t, filepath.Join(fx.outside, "secret.txt"), secret)

	write(t, filepath.Join(fx.root, "hello.txt"), "hello\n")
	mkdir(t, filepath.Join(fx.root, "sub"))
	write(t, filepath.Join(fx.root, "sub", "inner.txt"), "inner\n")
	write(t, filepath.Join(fx.root, "bin.dat"), "ab\x00cd")
	write(t, filepath.Join(fx.root, "latin1.txt"), "caf\xe9")
	write(t, filepath.Join(fx.root, "big.txt"), strings.Repeat("x", 2048))
	mkdir(t, filepath.Join(fx.root, "b"))
	links := map[string]string{
		"link_root":    "/",                                     // to the filesystem root
		"link_secret":  filepath.Join(fx.outside, "secret.txt"), // absolute, out
		"link_rel_out": "../outside/secret.txt",                 // relative, out
		"dirlink_out":  fx.outside,                              // a directory out
		"a":            "b",                                     // in, to a dir ...
		"b/c":          "../../outside",                         // ... whose child leads out: a/c/secret.txt
		"link_in_abs":  filepath.Join(fx.root, "hello.txt"),     // absolute, in
		"link_in_rel":  "hello.txt",                             // relative, in
		"sub_link":     "sub",                                   // directory, in
		"dangling_out": filepath.Join(fx.outside, "nope.txt"),   // missing target, out
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(fx.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(fx.root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return fx
}

// outsideUnchanged fails if anything in fx.outside was added or changed.
func (fx fixture) outsideUnchanged(t *testing.T) {
	t.Helper()
	des, err := os.ReadDir(fx.outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 1 || des[0].Name() != "secret.txt" {
		var names []string
		for _, d := range des {
			names = append(names, d.Name())
		}
		t.Fatalf("outside dir now holds %v", names)
	}
	if b, _ := os.ReadFile(filepath.Join(fx.outside, "secret.txt")); string(b) != secret {
		t.Fatalf("outside secret changed to %q", b)
	}
}

func mkdir(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func connect(t testing.TB, opts Options) *client.Client {
	t.Helper()
	if opts.Sandbox == nil {
		opts.Sandbox = testSandbox(t, opts.Root)
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewInProcessClientWithOptions(s, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	init.Params.ClientInfo = mcp.Implementation{Name: "workspace-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return c
}

// call runs tool with args and returns its text and isError.
func call(t *testing.T, c *client.Client, tool string, args map[string]any) (string, bool) {
	t.Helper()
	text, isErr, err := callCtx(context.Background(), c, tool, args)
	if err != nil {
		t.Fatalf("%s(%v): %v", tool, args, err)
	}
	return text, isErr
}

func callCtx(ctx context.Context, c *client.Client, tool string, args map[string]any) (string, bool, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return "", false, err
	}
	var b strings.Builder
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError, nil
}

func TestNewServerRoot(t *testing.T) {
	fx := newFixture(t)
	cases := []struct {
		name, root, wantErr string
	}{
		{"empty", "", "no root"},
		{"missing", filepath.Join(fx.root, "nope"), "no such file"},
		{"file", filepath.Join(fx.root, "hello.txt"), "not a directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewServer(Options{Root: tc.root})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewServer(%q) = %v, want error containing %q", tc.root, err, tc.wantErr)
			}
		})
	}
	// A root given through a symlink is resolved, and absolute paths under
	// either spelling are accepted.
	alias := filepath.Join(fx.outside, "ws-alias")
	if err := os.Symlink(fx.root, alias); err != nil {
		t.Fatal(err)
	}
	c := connect(t, Options{Root: alias})
	for _, p := range []string{filepath.Join(alias, "hello.txt"), filepath.Join(fx.root, "hello.txt")} {
		if got, isErr := call(t, c, ToolReadFile, map[string]any{"path": p}); isErr || got != "hello\n" {
			t.Errorf("read_file(%s) = %q, %v", p, got, isErr)
		}
	}
}

func TestToolsAndAnnotations(t *testing.T) {
	c := connect(t, Options{Root: t.TempDir()})
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	type hints struct{ readOnly, destructive, idempotent, openWorld bool }
	want := map[string]hints{
		ToolReadFile:   {true, false, true, false},
		ToolListDir:    {true, false, true, false},
		ToolWriteFile:  {false, true, true, false},
		ToolRunCommand: {false, true, false, true},
	}
	if len(res.Tools) != len(want) {
		t.Fatalf("got %d tools, want %d", len(res.Tools), len(want))
	}
	for _, tool := range res.Tools {
		w, ok := want[tool.Name]
		if !ok {
			t.Errorf("unexpected tool %q", tool.Name)
			continue
		}
		a := tool.Annotations
		if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
			t.Errorf("%s: missing hints %+v", tool.Name, a)
			continue
		}
		got := hints{*a.ReadOnlyHint, *a.DestructiveHint, *a.IdempotentHint, *a.OpenWorldHint}
		if got != w {
			t.Errorf("%s: hints %+v, want %+v", tool.Name, got, w)
		}
		if tool.Description == "" {
			t.Errorf("%s: no description", tool.Name)
		}
	}
}

func TestReadFile(t *testing.T) {
	fx := newFixture(t)
	c := connect(t, Options{Root: fx.root, MaxReadBytes: 1024})
	cases := []struct {
		path    string
		want    string // exact text when ok
		wantErr string // substring of the tool error
	}{
		{path: "hello.txt", want: "hello\n"},
		{path: "./sub/../hello.txt", want: "hello\n"},
		{path: filepath.Join(fx.root, "hello.txt"), want: "hello\n"},
		{path: "sub/inner.txt", want: "inner\n"},
		{path: "sub_link/inner.txt", want: "inner\n"},
		{path: "link_in_rel", want: "hello\n"},
		{path: "link_in_abs", want: "hello\n"},
		{path: "bin.dat", wantErr: "binary"},
		{path: "latin1.txt", wantErr: "binary"},
		{path: "big.txt", wantErr: "over the read limit of 1024 bytes"},
		{path: "sub", wantErr: "is a directory"},
		{path: "fifo", wantErr: "not a regular file"},
		{path: "missing.txt", wantErr: "does not exist"},
		{path: "", wantErr: "required argument"},

		// Escapes.
		{path: "../outside/secret.txt", wantErr: "outside the workspace"},
		{path: "sub/../../outside/secret.txt", wantErr: "outside the workspace"},
		{path: "/etc/passwd", wantErr: "outside the workspace"},
		{path: filepath.Join(fx.root, "..", "outside", "secret.txt"), wantErr: "outside the workspace"},
		{path: filepath.Join(fx.outside, "secret.txt"), wantErr: "outside the workspace"},
		{path: "link_root/etc/passwd", wantErr: "outside the workspace"},
		{path: "link_secret", wantErr: "outside the workspace"},
		{path: "link_rel_out", wantErr: "outside the workspace"},
		{path: "dirlink_out/secret.txt", wantErr: "outside the workspace"},
		{path: "a/c/secret.txt", wantErr: "outside the workspace"},
		{path: "dangling_out", wantErr: "outside the workspace"},
		{path: "x\x00y", wantErr: "NUL"},
	}
	for _, tc := range cases {
		t.Run(strconv.Quote(tc.path), func(t *testing.T) {
			args := map[string]any{"path": tc.path}
			if tc.path == "" {
				args = map[string]any{}
			}
			got, isErr := call(t, c, ToolReadFile, args)
			if strings.Contains(got, secret) {
				t.Fatalf("secret leaked: %q", got)
			}
			if tc.wantErr != "" {
				if !isErr || !strings.Contains(got, tc.wantErr) {
					t.Fatalf("read_file(%q) = %q (isError %v), want error containing %q", tc.path, got, isErr, tc.wantErr)
				}
				return
			}
			if isErr || got != tc.want {
				t.Fatalf("read_file(%q) = %q (isError %v), want %q", tc.path, got, isErr, tc.want)
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	fx := newFixture(t)
	c := connect(t, Options{Root: fx.root})
	escapes := []struct {
		path   string
		mkdirs bool
	}{
		{path: "../evil.txt"},
		{path: "../outside/secret.txt"},
		{path: "/tmp/evil.txt"},
		{path: filepath.Join(fx.outside, "secret.txt")},
		{path: "dirlink_out/evil.txt"},                   // parent is a symlink out
		{path: "dirlink_out/new/evil.txt", mkdirs: true}, // ... and create_dirs through it
		{path: "a/c/evil.txt"},                           // a chain of links leads out
		{path: "link_secret"},                            // write through a link out
		{path: "link_rel_out"},                           // same, relative
		{path: "link_root/tmp/evil.txt"},                 // through a link to /
		{path: "dangling_out"},                           // a link to a missing file out
	}
	for _, tc := range escapes {
		t.Run("escape "+tc.path, func(t *testing.T) {
			got, isErr := call(t, c, ToolWriteFile, map[string]any{"path": tc.path, "content": "pwned", "create_dirs": tc.mkdirs})
			if !isErr || !strings.Contains(got, "outside the workspace") {
				t.Fatalf("write_file(%q) = %q (isError %v), want an outside-the-workspace error", tc.path, got, isErr)
			}
			fx.outsideUnchanged(t)
			if _, err := os.Stat("/tmp/evil.txt"); err == nil {
				t.Fatal("/tmp/evil.txt was written")
			}
		})
	}

	t.Run("create and overwrite keeps mode", func(t *testing.T) {
		got, isErr := call(t, c, ToolWriteFile, map[string]any{"path": "new.txt", "content": "one"})
		if isErr || !strings.Contains(got, "wrote 3 bytes") {
			t.Fatalf("write_file = %q, %v", got, isErr)
		}
		p := filepath.Join(fx.root, "new.txt")
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, isErr := call(t, c, ToolWriteFile, map[string]any{"path": "new.txt", "content": "two"}); isErr {
			t.Fatal("overwrite failed")
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != "two" {
			t.Fatalf("content %q, %v", b, err)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
		}
	})
	t.Run("missing parent", func(t *testing.T) {
		got, isErr := call(t, c, ToolWriteFile, map[string]any{"path": "d1/d2/f.txt", "content": "x"})
		if !isErr || !strings.Contains(got, "create_dirs") {
			t.Fatalf("got %q, %v; want a hint about create_dirs", got, isErr)
		}
		if _, isErr := call(t, c, ToolWriteFile, map[string]any{"path": "d1/d2/f.txt", "content": "x", "create_dirs": true}); isErr {
			t.Fatal("create_dirs failed")
		}
		if b, _ := os.ReadFile(filepath.Join(fx.root, "d1", "d2", "f.txt")); string(b) != "x" {
			t.Fatalf("got %q", b)
		}
	})
	t.Run("through links inside", func(t *testing.T) {
		for _, p := range []string{"link_in_rel", "link_in_abs", "sub_link/inner.txt"} {
			if got, isErr := call(t, c, ToolWriteFile, map[string]any{"path": p, "content": "via " + p}); isErr {
				t.Fatalf("write_file(%s) = %q", p, got)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(fx.root, "hello.txt")); string(b) != "via link_in_abs" {
			t.Fatalf("hello.txt = %q", b)
		}
		if b, _ := os.ReadFile(filepath.Join(fx.root, "sub", "inner.txt")); string(b) != "via sub_link/inner.txt" {
			t.Fatalf("sub/inner.txt = %q", b)
		}
		for _, l := range []string{"link_in_rel", "link_in_abs"} {
			if fi, err := os.Lstat(filepath.Join(fx.root, l)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("%s is no longer a symlink", l)
			}
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for p, want := range map[string]string{".": "workspace root", "sub": "is a directory", "fifo": "not a regular file"} {
			if got, isErr := call(t, c, ToolWriteFile, map[string]any{"path": p, "content": "x"}); !isErr || !strings.Contains(got, want) {
				t.Errorf("write_file(%s) = %q, %v; want %q", p, got, isErr, want)
			}
		}
	})
	t.Run("no temp files left", func(t *testing.T) {
		filepath.WalkDir(fx.root, func(p string, d os.DirEntry, err error) error {
			if strings.Contains(p, "toolgate-tmp") {
				t.Errorf("temp file left: %s", p)
			}
			return nil
		})
	})
}

func TestListDir(t *testing.T) {
	fx := newFixture(t)
	c := connect(t, Options{Root: fx.root, MaxListEntries: 100})
	got, isErr := call(t, c, ToolListDir, map[string]any{})
	if isErr {
		t.Fatal(got)
	}
	for _, line := range []string{"d sub/", "f hello.txt 6", "l link_root -> /", "l link_in_rel -> hello.txt", "? fifo"} {
		if !strings.Contains(got, "\n"+line+"\n") {
			t.Errorf("listing lacks %q:\n%s", line, got)
		}
	}
	if got, isErr := call(t, c, ToolListDir, map[string]any{"path": "sub_link"}); isErr || !strings.Contains(got, "f inner.txt 6") {
		t.Errorf("list_dir(sub_link) = %q, %v", got, isErr)
	}
	for p, want := range map[string]string{
		"dirlink_out": "outside the workspace", "a/c": "outside the workspace", "..": "outside the workspace",
		"/": "outside the workspace", "link_root": "outside the workspace", "hello.txt": "not a directory",
	} {
		if got, isErr := call(t, c, ToolListDir, map[string]any{"path": p}); !isErr || !strings.Contains(got, want) || strings.Contains(got, "secret.txt") {
			t.Errorf("list_dir(%s) = %q, %v; want error %q", p, got, isErr, want)
		}
	}

	small := connect(t, Options{Root: fx.root, MaxListEntries: 2})
	if got, _ := call(t, small, ToolListDir, map[string]any{}); !strings.Contains(got, "stopped at 2 entries") || strings.Count(got, "\n") != 4 {
		t.Errorf("capped listing:\n%s", got)
	}
}

func TestRunCommand(t *testing.T) {
	fx := newFixture(t)
	c := connect(t, Options{Root: fx.root})
	cases := []struct {
		name    string
		args    map[string]any
		isErr   bool
		want    []string
		notWant []string
	}{
		{name: "exit code and streams", args: map[string]any{"command": "echo hi; echo oops >&2; exit 3"}, isErr: true,
			want: []string{"exit code: 3", "stdout:\nhi\n", "stderr:\noops\n"}},
		{name: "success", args: map[string]any{"command": "true"}, want: []string{"exit code: 0", "stdout: (empty)"}},
		{name: "shell features", args: map[string]any{"command": "for i in 1 2; do echo n$i; done | tr n m"}, want: []string{"m1\nm2\n"}},
		{name: "argv without shell", args: map[string]any{"command": "printf", "args": []any{"<%s>", "a b", "$HOME", ";rm"}},
			want: []string{"<a b><$HOME><;rm>"}},
		{name: "default cwd is root", args: map[string]any{"command": "pwd"}, want: []string{"\n" + fx.root + "\n"}},
		{name: "cwd", args: map[string]any{"command": "cat inner.txt; pwd", "cwd": "sub"}, want: []string{"inner\n" + filepath.Join(fx.root, "sub") + "\n"}},
		{name: "cwd through link inside", args: map[string]any{"command": "pwd", "cwd": "sub_link"}, want: []string{filepath.Join(fx.root, "sub") + "\n"}},
		{name: "minimal env", args: map[string]any{"command": "echo \"$HOME|$LANG\"; env | wc -l"}, want: []string{"/tmp|C.UTF-8\n"}},
		{name: "no stdin", args: map[string]any{"command": "cat; echo done"}, want: []string{"done"}},
		{name: "unknown program", args: map[string]any{"command": "no-such-program-xyz"}, isErr: true, want: []string{"exit code: 127", "not found"}},
		{name: "killed by signal", args: map[string]any{"command": "kill -9 $$"}, isErr: true, want: []string{"killed by signal killed"}},
		{name: "cwd escape", args: map[string]any{"command": "pwd", "cwd": ".."}, isErr: true, want: []string{"outside the workspace"}},
		{name: "cwd link out", args: map[string]any{"command": "pwd", "cwd": "dirlink_out"}, isErr: true, want: []string{"outside the workspace"}},
		{name: "cwd chain out", args: map[string]any{"command": "pwd", "cwd": "a/c"}, isErr: true, want: []string{"outside the workspace"}},
		{name: "cwd not a dir", args: map[string]any{"command": "pwd", "cwd": "hello.txt"}, isErr: true, want: []string{"not a directory"}},
		{name: "empty command", args: map[string]any{"command": "  "}, isErr: true, want: []string{"empty"}},
		{name: "bad args", args: map[string]any{"command": "echo", "args": []any{1}}, isErr: true, want: []string{"not a string"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, isErr := call(t, c, ToolRunCommand, tc.args)
			if isErr != tc.isErr {
				t.Errorf("isError = %v, want %v", isErr, tc.isErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			if strings.Contains(got, "/outside") && tc.isErr && !strings.Contains(got, "outside the workspace") {
				t.Errorf("ran outside: %s", got)
			}
		})
	}

	t.Run("custom env", func(t *testing.T) {
		c := connect(t, Options{Root: fx.root, Sandbox: testSandbox(t, fx.root, "PATH="+DefaultPath, "FOO=bar")})
		if got, _ := call(t, c, ToolRunCommand, map[string]any{"command": "echo \"$FOO|$HOME\""}); !strings.Contains(got, "bar|\n") {
			t.Errorf("got %q", got)
		}
	})
}

func TestRunCommandOutputCap(t *testing.T) {
	c := connect(t, Options{Root: t.TempDir(), MaxOutputBytes: 1000})
	got, isErr := call(t, c, ToolRunCommand, map[string]any{"command": "echo START; i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done; echo END"})
	if isErr {
		t.Fatal(got)
	}
	for _, w := range []string{"START", "END", "bytes omitted (output limit 1000 bytes)"} {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if len(got) > 1300 {
		t.Errorf("output is %d bytes, want about 1000", len(got))
	}
}

func TestCapped(t *testing.T) {
	for _, tc := range []struct {
		max    int
		writes []string
		want   string
	}{
		{10, []string{"abc"}, "abc"},
		{10, []string{"0123456789"}, "0123456789"},
		{10, []string{"0123456789ab"}, "01234\n[... 2 bytes omitted (output limit 10 bytes) ...]\n789ab"},
		{10, []string{"012", "34567", "89a", "bcdefgh"}, "01234\n[... 8 bytes omitted (output limit 10 bytes) ...]\ndefgh"},
		{4, []string{"x", "y", "z", "w", "v"}, "xy\n[... 1 bytes omitted (output limit 4 bytes) ...]\nwv"},
	} {
		c := newCapped(tc.max)
		for _, w := range tc.writes {
			c.Write([]byte(w))
		}
		if got := c.String(); got != tc.want {
			t.Errorf("capped(%d) %q = %q, want %q", tc.max, tc.writes, got, tc.want)
		}
	}
}

// sleepers returns the host pids of the processes running `sleep secs`:
// a sandboxed command sees its own PID namespace, so its $! means nothing
// out here; the unusual duration marks the processes of one test.
func sleepers(secs int) []int { return sandboxtest.Processes(sandboxtest.Sleep(secs)) }

// waitSleepers waits until n processes run `sleep secs` and returns them.
func waitSleepers(t *testing.T, secs, n int) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p := sleepers(secs); len(p) >= n {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes running sleep %d, want %d", len(sleepers(secs)), secs, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// spawn returns a command that starts a background sleeper (in a new
// session, as a daemon would) and a foreground one, both running sleep secs.
func spawn(secs int) string {
	return fmt.Sprintf("setsid sleep %d & (sleep %d &) ; exec sleep %d", secs, secs, secs)
}

func TestRunCommandTimeoutKillsGroup(t *testing.T) {
	root := t.TempDir()
	c := connect(t, Options{Root: root, CommandTimeout: 2 * time.Second})
	type result struct {
		text  string
		isErr bool
	}
	done := make(chan result, 1)
	go func() {
		text, isErr, _ := callCtx(context.Background(), c, ToolRunCommand, map[string]any{"command": spawn(300101)})
		done <- result{text, isErr}
	}()
	pids := waitSleepers(t, 300101, 3)
	r := <-done
	if !r.isErr || !strings.Contains(r.text, "timed out after 2s") {
		t.Fatalf("got %q, %v", r.text, r.isErr)
	}
	toolgatetest.WaitDead(t, 10*time.Second, pids...)
}

func TestRunCommandBackgroundKilledOnExit(t *testing.T) {
	root := t.TempDir()
	c := connect(t, Options{Root: root})
	got, isErr := call(t, c, ToolRunCommand, map[string]any{"command": "setsid sleep 300102 > /dev/null 2>&1 & (sleep 300102 &); " +
		"sleep 0.2; n=0; for f in /proc/[0-9]*/cmdline; do [ \"$(tr '\\0' ' ' < $f)\" = 'sleep 300102 ' ] && n=$((n+1)); done; echo sleepers: $n"})
	if isErr || !strings.Contains(got, "sleepers: 2") {
		t.Fatalf("got %q, %v", got, isErr)
	}
	toolgatetest.WaitDead(t, 10*time.Second, sleepers(300102)...)
}

func TestRunCommandCancelKillsGroup(t *testing.T) {
	root := t.TempDir()
	c := connect(t, Options{Root: root})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// In-process, the handler's own result comes back; over a real
		// transport the client returns ctx's error. Either is fine.
		text, _, err := callCtx(ctx, c, ToolRunCommand, map[string]any{"command": spawn(300103)})
		if err == nil && !strings.Contains(text, "command cancelled") {
			err = fmt.Errorf("result %q does not say cancelled", text)
		} else if errors.Is(err, context.Canceled) {
			err = nil
		}
		done <- err
	}()
	// Cancel once the three processes are up.
	pids := waitSleepers(t, 300103, 3)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	toolgatetest.WaitDead(t, 10*time.Second, pids...)
}
