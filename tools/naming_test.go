package tools

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// claudeName is the pattern Claude accepts for a tool name.
var claudeName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

func TestExposedName(t *testing.T) {
	long := strings.Repeat("very_long_tool_name_", 4) + "0123456789" // 90 characters
	cases := []struct {
		server, name string
		prefix       bool
		want         string // "" to check only the shape
	}{
		{"fs", "read_file", true, "fs__read_file"},
		{"fs", "read_file", false, "read_file"},
		{"fs", "Read-File2", false, "Read-File2"},
		{"fs", strings.Repeat("a", 60), true, ""},        // 64 with the prefix: unchanged
		{"fs", strings.Repeat("a", 61), true, ""},        // 65: shortened
		{"fs", long, false, ""},                          // 90: shortened
		{"gh", "repo.list", true, ""},                    // '.'
		{"gh", "repo/list", true, ""},                    // '/'
		{"gh", "repo_list", true, "gh__repo_list"},       // already valid: kept even though "repo.list" sanitizes to it
		{"gh", "dépôt liste", false, ""},                 // non-ASCII and a space
		{"gh", "", false, ""},                            // empty upstream name: still valid out
		{"gh", strings.Repeat("é", 70), true, ""},        // multi-byte, long
		{"gh", strings.Repeat("x", 54) + ".", false, ""}, // sanitized, 55 long: cut before the hash
	}
	seen := map[string]string{}
	for _, tc := range cases {
		got := ExposedName(tc.server, "__", tc.name, tc.prefix)
		if !claudeName.MatchString(got) {
			t.Errorf("ExposedName(%q, %q, %v) = %q: not a valid Claude tool name", tc.server, tc.name, tc.prefix, got)
		}
		if tc.want != "" && got != tc.want {
			t.Errorf("ExposedName(%q, %q, %v) = %q, want %q", tc.server, tc.name, tc.prefix, got, tc.want)
		}
		if again := ExposedName(tc.server, "__", tc.name, tc.prefix); again != got {
			t.Errorf("not deterministic: %q then %q", got, again)
		}
		key := tc.server + "/" + tc.name + "/" + map[bool]string{true: "p", false: "u"}[tc.prefix]
		if prev, dup := seen[got]; dup {
			t.Errorf("%s and %s both exposed as %q", prev, key, got)
		}
		seen[got] = key
	}
	// The readable part stays recognisable.
	if got := ExposedName("gh", "__", "repo.list", true); !strings.HasPrefix(got, "gh__repo_list_") || len(got) != len("gh__repo_list_")+NameHashLen {
		t.Errorf("repo.list -> %q, want gh__repo_list_ and %d hex digits", got, NameHashLen)
	}
	if got := ExposedName("x", "__", long, false); len(got) != MaxNameLen || !strings.HasPrefix(got, long[:MaxNameLen-1-NameHashLen]) {
		t.Errorf("90-character name -> %q (%d), want its first %d characters, '_' and a hash", got, len(got), MaxNameLen-1-NameHashLen)
	}
	// Pinned: a change of scheme renames tools, and rules and audit
	// queries keyed on exposed names; it must be deliberate.
	if got, want := ExposedName("gh", "__", "repo/list", true), "gh__repo_list_6ee8e07e"; got != want {
		t.Errorf("scheme changed: repo/list -> %q, was %q", got, want)
	}
}

// namedServer is an in-process server with one tool per name.
func namedServer(names ...string) *server.MCPServer {
	s := server.NewMCPServer("n", "1", server.WithToolCapabilities(true))
	for _, n := range names {
		addTextTool(s, n, n)
	}
	return s
}

func addTextTool(s *server.MCPServer, name, reply string) {
	s.AddTool(mcp.NewTool(name), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(reply), nil
	})
}

func TestUnprefixedCatalog(t *testing.T) {
	long := strings.Repeat("L", 90)
	a := namedServer("search", "a.b/c", long)
	b := namedServer("search", "fetch")
	c := startCatalog(t, Options{Upstreams: []Upstream{
		{Name: "a", Server: a, Unprefixed: true},
		{Name: "b", Server: b},
	}})
	want := map[string]string{ // exposed -> upstream name
		"search":                             "search",
		ExposedName("a", "", "a.b/c", false): "a.b/c",
		ExposedName("a", "", long, false):    long,
		"b__search":                          "search",
		"b__fetch":                           "fetch",
	}
	got := map[string]string{}
	for _, tl := range c.Tools() {
		got[tl.Name] = tl.Def.Name
	}
	if len(got) != len(want) {
		t.Fatalf("exposed %v, want %v", got, want)
	}
	for exp, orig := range want {
		if got[exp] != orig {
			t.Errorf("%q exposes %q, want %q", exp, got[exp], orig)
		}
		// The upstream gets the name it listed.
		tl, _ := c.Lookup(exp)
		res, err := c.Forward(context.Background(), toolgate.Call{Server: tl.Server, Tool: tl.Def.Name, Name: exp})
		if err != nil || text(res) != orig {
			t.Errorf("calling %q: %v %v, want %q", exp, text(res), err, orig)
		}
	}
	if err := c.Collisions(); err != nil {
		t.Errorf("Collisions() = %v, want none", err)
	}
}

func TestNameCollisions(t *testing.T) {
	a := namedServer("search")
	b := namedServer("search", "only_b")
	c := startCatalog(t, Options{Upstreams: []Upstream{
		{Name: "a", Server: a, Unprefixed: true},
		{Name: "b", Server: b, Unprefixed: true},
	}})
	// At start: whichever came up first keeps the name, and the collision
	// is reported naming both servers.
	var ce *NameCollisionError
	if err := c.Collisions(); !errors.As(err, &ce) || ce.Name != "search" || ce.Server == ce.OtherServer {
		t.Fatalf("Collisions() = %v, want search refused for one of a and b", err)
	} else if msg := err.Error(); !strings.Contains(msg, `server "a"`) || !strings.Contains(msg, `server "b"`) {
		t.Errorf("error %q does not name both servers", msg)
	}
	if tl, ok := c.Lookup("search"); !ok || tl.Server != ce.Server {
		t.Fatalf("search exposed by %+v, want %s", tl, ce.Server)
	}

	// A tool appearing later under a name already exposed is refused,
	// even from a server earlier in the order: nothing is shadowed.
	addTextTool(b, "late", "from b")
	toolgatetest.Eventually(t, "late listed", func() bool { _, ok := c.Lookup("late"); return ok })
	addTextTool(a, "late", "from a")
	time.Sleep(300 * time.Millisecond) // a relists; give it the chance to take the name
	if tl, _ := c.Lookup("late"); tl.Server != "b" {
		t.Errorf("late now exposed by %q: a's later tool shadowed b's", tl.Server)
	}
	toolgatetest.Eventually(t, "a's late refused", func() bool {
		return strings.Contains(errorText(c.Collisions()), `"late" is exposed by server "b" (tool "late") and by server "a"`)
	})

	// When the owner drops the tool, the name is free for the other.
	b.DeleteTools("late")
	toolgatetest.Eventually(t, "late handed to a", func() bool { tl, ok := c.Lookup("late"); return ok && tl.Server == "a" })
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
