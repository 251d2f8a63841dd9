package workspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/toolgate/toolgate"
)

// TestLinks: a workspace path argument through a link below the root, or
// through several, or naming one in another Unicode normalization, is
// reported with the path it resolves to, written under the root as
// configured even when that is itself a link, also when named from the
// home (~/); other strings, paths with
// no link, paths outside the workspace and the skipped server's calls are
// not.
func TestLinks(t *testing.T) {
	real := t.TempDir()
	for _, d := range []string{".git/hooks", "src"} {
		if err := os.MkdirAll(filepath.Join(real, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(real, ".env"), []byte("K=v"), 0o600); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"hk": ".git/hooks", "src/notes": "../.env", "out": "/etc", "gone": "nowhere/x",
		"d": "src", "caf\u00e9": ".git/hooks", "e\u0301\u00e9": ".git/hooks", "\u212aey": ".git/hooks"} {
		if err := os.Symlink(target, filepath.Join(real, link)); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(t.TempDir(), "ws") // the workspace as configured: a link to real
	if err := os.Symlink(real, root); err != nil {
		t.Fatal(err)
	}
	l := &Links{Root: root, Home: filepath.Dir(root), Skip: []string{"workspace"}}
	args := map[string]any{
		"path":  filepath.Join(root, "hk/pre-commit"),
		"edits": []any{map[string]any{"file": "src/notes"}},
		"plain": filepath.Join(root, "src/main.go"),
		"text":  "hello hk/x",
		"other": "/etc/hosts",
		"out":   "./out/passwd",
		"gone":  "gone",
		"bare":  "hk",
		"twice": filepath.Join(root, "d/notes"),          // a link reached through a link
		"nfd":   filepath.Join(root, "cafe\u0301/x"),     // the link's name in another normalization
		"list":  []any{"/etc/hosts", "src/main.go", "d"}, // a plain path, a missing one, a link
		"home":  "~/ws/hk/x",                             // through the home, as servers expand ~
		"user":  "~u/ws/hk/x",                            // ~u is no home to them
		// Cleaned as the server cleans them: a newline, a length past
		// PATH_MAX before cleaning.
		"nl":   filepath.Join(root, "x\n") + "/../hk/y",
		"long": root + "/" + strings.Repeat("./", 2100) + "hk/z",
		// Names the server finds by NFC: a link named in mixed forms,
		// and one with the Kelvin sign, named with a K.
		"mixed":  "\u00e9\u00e9/pre-commit",
		"kelvin": "Key/pre-commit",
	}
	ctx := context.Background()
	got, _, _, err := l.Links(ctx, toolgate.Call{Server: "fs", Args: args})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		filepath.Join(root, "hk/pre-commit"):    filepath.Join(root, ".git/hooks/pre-commit"),
		"src/notes":                             filepath.Join(root, ".env"),
		"./out/passwd":                          "/etc/passwd",
		"gone":                                  filepath.Join(root, "nowhere/x"),
		"hk":                                    filepath.Join(root, ".git/hooks"),
		filepath.Join(root, "d/notes"):          filepath.Join(root, ".env"),
		filepath.Join(root, "cafe\u0301/x"):     filepath.Join(root, ".git/hooks/x"),
		"d":                                     filepath.Join(root, "src"),
		"~/ws/hk/x":                             filepath.Join(root, ".git/hooks/x"),
		filepath.Join(root, "x\n") + "/../hk/y": filepath.Join(root, ".git/hooks/y"),
		root + "/" + strings.Repeat("./", 2100) + "hk/z": filepath.Join(root, ".git/hooks/z"),
		"\u00e9\u00e9/pre-commit":                        filepath.Join(root, ".git/hooks/pre-commit"),
		"Key/pre-commit":                                 filepath.Join(root, ".git/hooks/pre-commit"),
	}
	if len(got) != len(want) {
		t.Errorf("Links = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Links[%q] = %q, want %q", k, got[k], v)
		}
	}
	if got, _, _, err := l.Links(ctx, toolgate.Call{Server: "workspace", Args: args}); got != nil || err != nil {
		t.Errorf("the skipped server's call: Links = %v, %v", got, err)
	}
	// Past maxLinkArgs distinct strings the call is refused, not read in
	// part; repeats count once.
	many := []any{}
	for i := range maxLinkArgs + 1 {
		many = append(many, fmt.Sprint("f", i), "f0")
	}
	if _, _, _, err := l.Links(ctx, toolgate.Call{Server: "fs", Args: map[string]any{"paths": many}}); !errors.Is(err, ErrTooManyPaths) {
		t.Errorf("%d distinct strings: err %v, want ErrTooManyPaths", len(many)/2, err)
	}
	if _, _, _, err := l.Links(ctx, toolgate.Call{Server: "fs", Args: map[string]any{"paths": many[:2*maxLinkArgs-2]}}); err != nil {
		t.Errorf("%d distinct strings: %v", maxLinkArgs, err)
	}
	// Many paths of files in one deep directory: each name on the way is
	// looked up once, so the call is not refused.
	deep := filepath.Join(real, "src", "a", "b", "c")
	if err := os.MkdirAll(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	files := []any{}
	for i := range 3300 {
		files = append(files, filepath.Join(root, "src", "a", "b", "c", fmt.Sprint(i, ".go")))
	}
	if _, _, _, err := l.Links(ctx, toolgate.Call{Server: "fs", Args: map[string]any{"paths": files}}); err != nil {
		t.Errorf("%d files in one directory: %v", len(files), err)
	}
	// Paths of names that all exist and differ (links to their own
	// directory, five deep), looked up past maxLinkLooks times: refused.
	for i := range 40 {
		if err := os.Symlink(".", filepath.Join(real, fmt.Sprint("l", i))); err != nil {
			t.Fatal(err)
		}
	}
	loops := []any{}
	for i := range maxLinkArgs {
		var p []string
		for n := i; len(p) < 5; n /= 40 {
			p = append(p, fmt.Sprint("l", n%40))
		}
		loops = append(loops, strings.Join(p, "/"))
	}
	if _, _, _, err := l.Links(ctx, toolgate.Call{Server: "fs", Args: map[string]any{"paths": loops}}); !errors.Is(err, ErrTooManyPaths) {
		t.Errorf("%d paths of five names each: err %v, want ErrTooManyPaths", len(loops), err)
	}
}

// TestNFCAliasRunes: every rune outside ASCII whose NFC form is ASCII
// composes to a rune nfcAlias names, so a name without one has no other
// spelling the server would find.
func TestNFCAliasRunes(t *testing.T) {
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		if s := norm.NFC.String(string(r)); !strings.ContainsFunc(s, func(c rune) bool { return c >= utf8.RuneSelf }) &&
			strings.ContainsFunc(s, func(c rune) bool { return !nfcAlias(c) }) {
			t.Errorf("%U composes to %q, which nfcAlias misses", r, s)
		}
	}
}
