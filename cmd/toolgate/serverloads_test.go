package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestServerLoads: the paths a stdio server's args and env name, which
// it may run or load, are collected (relative ones against the server's
// directory); options, names and URLs are not, nor a directory where it
// is data (server-filesystem's root, DATA_DIR).
func TestServerLoads(t *testing.T) {
	dir := t.TempDir()
	ws, srv := filepath.Join(dir, "ws"), filepath.Join(dir, "srv")
	for _, d := range []string{filepath.Join(ws, "lib"), srv} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	j := func(p ...string) string { return filepath.Join(p...) }
	for _, c := range []struct {
		name, command string
		args, env     []string
		want          []string // field=path, "+" marks a relative one
	}{
		{"script", "server", []string{j(ws, "server.py")}, nil, []string{"args[0]=" + j(ws, "server.py")}},
		{"relative script", "server", []string{"-u", "./server.py"}, nil, []string{"args[1]=+" + j(srv, "server.py")}},
		{"option value", "server", []string{"--require=" + j(ws, "x.js"), "-I" + j(ws, "lib"), "-javaagent:" + j(ws, "a.jar")}, nil,
			[]string{"args[0]=" + j(ws, "x.js"), "args[1]=" + j(ws, "lib"), "args[2]=" + j(ws, "a.jar")}},
		{"interpreter's directory", "/usr/bin/node", []string{"--inspect", j(ws, "lib")}, nil, []string{"args[1]=" + j(ws, "lib")}},
		{"python3.12's directory", "python3.12", []string{j(ws, "lib"), ws}, nil, []string{"args[0]=" + j(ws, "lib")}},
		{"uv --directory", "uv", []string{"--directory", ws, "run", "server.py"}, nil, []string{"args[1]=" + ws}},
		{"npm --prefix=", "npx", []string{"--prefix=" + ws, "x"}, nil, []string{"args[0]=" + ws}},
		{"a server's directory argument", "mcp-server-filesystem", []string{j(ws, "lib")}, nil, nil},
		{"served directory", "server", []string{"-y", "server-filesystem", ws}, nil, nil},
		{"harmless args", "server", []string{"--port", "3", "-y", "https://example.com/mcp", "--name=x"}, nil, nil},
		{"PYTHONPATH", "server", []string{"-m", "x"}, []string{"PYTHONPATH=" + j(ws, "lib") + ":/usr/lib/python3:src/py"},
			[]string{"env.PYTHONPATH=" + j(ws, "lib"), "env.PYTHONPATH=/usr/lib/python3", "env.PYTHONPATH=+" + j(srv, "src/py")}},
		{"NODE_OPTIONS", "server", nil, []string{"NODE_OPTIONS=--require " + j(ws, "x.js") + " --max-old-space-size=100"},
			[]string{"env.NODE_OPTIONS=" + j(ws, "x.js")}},
		{"RUBYOPT", "server", nil, []string{"RUBYOPT=-I" + j(ws, "lib") + " -rfoo"}, []string{"env.RUBYOPT=" + j(ws, "lib")}},
		{"LD_PRELOAD and GIT_EXEC_PATH", "server", nil, []string{"LD_PRELOAD=" + j(ws, "x.so"), "GIT_EXEC_PATH=" + ws},
			[]string{"env.LD_PRELOAD=" + j(ws, "x.so"), "env.GIT_EXEC_PATH=" + ws}},
		{"data directory", "server", nil, []string{"DATA_DIR=" + ws}, nil},
		{"data file", "server", nil, []string{"DB=" + j(ws, "app.db")}, []string{"env.DB=" + j(ws, "app.db")}},
		{"harmless env", "server", nil, []string{"LANG=C", "TOKEN=abc", "URL=https://x.example/a"}, nil},
	} {
		var got []string
		for _, l := range serverLoads(c.command, srv, c.args, c.env) {
			p := l.path
			if l.rel {
				p = "+" + p
			}
			got = append(got, l.field+"="+p)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: serverLoads(%q, %q, %q) = %q, want %q", c.name, c.command, c.args, c.env, got, c.want)
		}
	}
}

// TestWarnServerLoads: only a path the agent can write is warned about,
// and a relative one not again when the server's directory is itself
// the workspace (serverDir warns about that).
func TestWarnServerLoads(t *testing.T) {
	dir := t.TempDir()
	ws, home := filepath.Join(dir, "ws"), filepath.Join(dir, "home")
	for _, d := range []string{ws, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A link outside the workspace into it counts as the workspace.
	if err := os.Symlink(ws, filepath.Join(home, "proj")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(ws, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(ws, "a", "b"), filepath.Join(home, "deep")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(ws, "server.py"), filepath.Join(dir, "server.py")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	warn := func(dir string, args, env []string) string {
		var buf bytes.Buffer
		warnServerLoads("server", dir, args, env, []string{ws}, slog.New(slog.NewTextHandler(&buf, nil)))
		return buf.String()
	}
	for _, c := range []struct {
		dir       string
		args, env []string
		want      []string
	}{
		{home, []string{filepath.Join(ws, "server.py")}, nil, []string{"args[0]=" + filepath.Join(ws, "server.py")}},
		{home, []string{"proj/server.py"}, nil, []string{"args[0]=" + filepath.Join(home, "proj/server.py"), "real=" + filepath.Join(ws, "server.py")}},
		// The kernel takes ".." from where the link points: deep/../../ is the workspace.
		{home, []string{"deep/../../server.py"}, nil, []string{"args[0]=" + home + "/deep/../../server.py", "real=" + filepath.Join(ws, "server.py")}},
		{home, nil, []string{"NODE_OPTIONS=--require " + filepath.Join(ws, "x.js")}, []string{"env.NODE_OPTIONS=" + filepath.Join(ws, "x.js")}},
		{home, []string{"--port", "3", filepath.Join(home, "server.py")}, []string{"LANG=C", "PYTHONPATH=" + home}, nil},
		{ws, []string{"./server.py"}, nil, nil},
	} {
		out := warn(c.dir, c.args, c.env)
		for _, w := range c.want {
			if !strings.Contains(out, w) || !strings.Contains(out, "names a path a sandboxed command can write") {
				t.Errorf("warnServerLoads(%s, %q, %q) logged %q; want %s", c.dir, c.args, c.env, out, w)
			}
		}
		if len(c.want) == 0 && out != "" {
			t.Errorf("warnServerLoads(%s, %q, %q) logged %q; want nothing", c.dir, c.args, c.env, out)
		}
	}
}
