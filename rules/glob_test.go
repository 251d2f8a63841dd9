package rules

import (
	"errors"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"**/.ssh/**", "/home/u/.ssh/id_rsa", true},
		{"**/.ssh/**", ".ssh/config", true},
		{"**/.ssh/**", "~/.ssh/config", true},
		{"**/.ssh/**", "/home/u/.ssh", false},
		{"**/.ssh/**", "/home/u/.sshx/a", false},
		{"**/.env", ".env", true},
		{"**/.env", "a/b/.env", true},
		{"**/.env", "a/b/x.env", false},
		{"*.go", "main.go", true},
		{"*.go", "cmd/main.go", false},
		{"**/*.go", "cmd/main.go", true},
		{"**/*.go", "main.go", true},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/xb", false},
		{"a**", "abc/def", true},
		{"?.txt", "a.txt", true},
		{"?.txt", "/.txt", false},
		{"?.txt", "ab.txt", false},
		{"[abc].go", "b.go", true},
		{"[a-c].go", "d.go", false},
		{"[!a-c].go", "d.go", true},
		{"[^a-c].go", "a.go", false},
		{"[]].go", "].go", true},
		{"*.{pem,key}", "server.key", true},
		{"*.{pem,key}", "server.crt", false},
		{"x{,.bak}", "x", true},
		{"x{,.bak}", "x.bak", true},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{"", "", true},
		{"", "a", false},
		{"**", "", true},
		{"*", "", true},
	}
	for _, tc := range cases {
		got, err := glob(tc.name, tc.pattern)
		if err != nil || got != tc.want {
			t.Errorf("glob(%q, %q) = %v, %v; want %v", tc.name, tc.pattern, got, err, tc.want)
		}
	}
}

func TestGlobBadPatterns(t *testing.T) {
	for _, p := range []string{"[", "[a-", "{a,b", "a}", "{a,{b}}", `x\`, "[z-a]", strings.Repeat("{a,b}", 9)} {
		if _, err := glob("x", p); !errors.Is(err, errBadPattern) {
			t.Errorf("glob(x, %q): err %v, want errBadPattern", p, err)
		}
		if _, err := compilePattern(p); err == nil {
			t.Errorf("compilePattern(%q) accepted it", p)
		}
	}
}

// TestGlobLinear guards against backtracking blow-ups: a hostile name against
// a many-star pattern must stay fast (the automaton is O(len(name)*len(pattern))).
func TestGlobLinear(t *testing.T) {
	name := strings.Repeat("a/", 20000) + "b"
	got, err := glob(name, "**a**a**a**a**a**a**c")
	if err != nil || got {
		t.Fatalf("got %v, %v", got, err)
	}
}

// TestGlobs: the config's pattern lists match as a rule's glob does, any
// of them; a malformed one is an error.
func TestGlobs(t *testing.T) {
	m, err := Globs([]string{"testdata/**/*.key", "config/dev.pem"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"testdata/server.key": true, "testdata/a/b.key": true, "config/dev.pem": true,
		"server.key": false, "config/prod.pem": false, "x/config/dev.pem": false} {
		if m(name) != want {
			t.Errorf("%s: %v, want %v", name, !want, want)
		}
	}
	if _, err := Globs([]string{"ok", "[z-a]"}); !errors.Is(err, errBadPattern) || !strings.Contains(err.Error(), "[z-a]") {
		t.Errorf("a bad pattern: %v", err)
	}
}
