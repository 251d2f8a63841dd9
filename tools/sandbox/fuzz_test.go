package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzWithin holds Within to its meaning: p is dir or lies under it, after
// cleaning, whatever the spelling (.., //, trailing /).
func FuzzWithin(f *testing.F) {
	for _, s := range [][2]string{
		{"/home/u", "/home/u/.ssh"},     // under
		{"/home/u", "/home/user"},       // a sibling sharing a prefix
		{"/home/u", "/home/u/../x"},     // climbs out
		{"/", "/etc"},                   // the root holds everything
		{"/a/b/", "/a/b"},               // trailing slash
		{"/a", "//a///b/./c"},           // odd spelling
		{"relative", "relative/x"},      // relative paths
		{"/a/b", "/a/b/../../a/b/c/.."}, // back where it started
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, dir, p string) {
		got := Within(dir, p)
		cd, cp := filepath.Clean(dir), filepath.Clean(p)
		rel, err := filepath.Rel(cd, cp)
		want := err == nil && filepath.IsAbs(cd) && filepath.IsAbs(cp) && (rel == "." || filepath.IsLocal(rel))
		if got != want {
			t.Fatalf("Within(%q, %q) = %v, want %v (rel %q)", dir, p, got, want, rel)
		}
	})
}

// FuzzProtected: a path is protected exactly when, cleaned, it is one of
// the protected paths or lies under one, however the agent spells it.
func FuzzProtected(f *testing.F) {
	sb, err := New(Options{Bwrap: "bwrap", Workspace: "/ws", Protect: DefaultProtect})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{".git/config", ".git/hooks/pre-commit", "src/../.git/hooks", ".git/configs", ".claude",
		".claude/settings.json", "a/.claude", ".mcp.json", "./.mcp.json", ".git", "x/../../.git/config", ".gitmodules"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		got := sb.Protected(rel)
		c := filepath.Clean(rel)
		want := slices.ContainsFunc(DefaultProtect, func(p string) bool {
			p = strings.TrimSuffix(p, "/")
			return c == p || strings.HasPrefix(c, p+"/")
		})
		if got != want {
			t.Fatalf("Protected(%q) = %v, want %v", rel, got, want)
		}
	})
}

// FuzzArgs builds a profile from arbitrary read and write paths: New
// refuses it, or bwrap's options mount nothing read-write but the
// workspace (and directories in it) and the profile's Write paths, and
// mask every hidden path, and the workspace's secret file, after the last
// mount that could show it.
func FuzzArgs(f *testing.F) {
	ws := f.TempDir()
	for _, name := range []string{"secret", ".env"} {
		if err := os.WriteFile(filepath.Join(ws, name), []byte("x"), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(ws+"/secret", ws+"/secret", false)
	f.Add("/usr/share", "/var/cache/x", true)
	f.Add("/etc", ws, false)
	f.Add("/", "/tmp/x", true)
	f.Add("relative", "/ok", false)
	f.Add("/etc/ssh", "/etc", true)
	f.Fuzz(func(t *testing.T, read, write string, network bool) {
		p := Profile{Name: "fuzz", Workspace: WriteAccess, Network: network, Read: []string{read}, Write: []string{write}}
		sb, err := New(Options{Bwrap: "bwrap", Workspace: ws, Home: "/home/u", Hide: []string{"/etc/toolgate.yaml", ws + "/secret"},
			Protect: DefaultProtect, Profiles: []Profile{p}, Secret: func(rel string) bool { return rel == ".env" }})
		if err != nil {
			return
		}
		args, _, _, _, _, err := sb.args(t.Context(), p, ws, "")
		if err != nil {
			return
		}
		masks := append(slices.Clone(sb.o.Hide), filepath.Join(ws, ".env"))
		lastCover := map[string]int{}
		for i := 0; i < len(args); i++ {
			switch args[i] {
			case "--bind", "--bind-try":
				dst := args[i+2]
				if !Within(ws, dst) && dst != filepath.Clean(write) && dst != write {
					t.Fatalf("read-write mount of %q (write %q)", dst, write)
				}
				fallthrough
			case "--ro-bind", "--ro-bind-try":
				for _, h := range masks {
					if Within(args[i+2], h) {
						lastCover[h] = i
					}
				}
				i += 2
			case "--unshare-net":
				if network {
					t.Fatal("a network profile lost its network")
				}
			}
		}
		if !network && !slices.Contains(args, "--unshare-net") {
			t.Fatal("a profile without network keeps the host's")
		}
		for h, at := range lastCover {
			masked := false
			for i := at; i < len(args); i++ {
				if args[i] == h && i > 0 && (args[i-1] == "--tmpfs" || args[i-2] == "--ro-bind" && args[i-1] == "/dev/null") {
					masked = true
				}
			}
			if !masked && exists(h) {
				t.Fatalf("hidden %s is mounted at %d and not masked after: %q", h, at, args)
			}
		}
	})
}

func exists(p string) bool {
	_, err := filepath.EvalSymlinks(p)
	return err == nil
}
