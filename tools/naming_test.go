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

// TestNameCollisions: a name two servers' tools are listed under is
// exposed by neither, at start and when one adds it later (even the one
// first in the order); when one drops it, the other's is exposed.
func TestNameCollisions(t *testing.T) {
	a := namedServer("search", "only_a")
	b := namedServer("search", "only_b")
	c := startCatalog(t, Options{Upstreams: []Upstream{
		{Name: "a", Server: a, Unprefixed: true},
		{Name: "b", Server: b, Unprefixed: true},
	}})
	toolgatetest.Eventually(t, "both servers' own tools", func() bool {
		_, okA := c.Lookup("only_a")
		_, okB := c.Lookup("only_b")
		return okA && okB
	})
	var ce *NameCollisionError
	if err := c.Collisions(); !errors.As(err, &ce) || ce.Kind != "tool" || ce.Name != "search" || ce.Server == ce.OtherServer {
		t.Fatalf("Collisions() = %v, want search refused for a and b", err)
	} else if msg := err.Error(); !strings.Contains(msg, `server "a"`) || !strings.Contains(msg, `server "b"`) || !strings.Contains(msg, "neither is exposed") {
		t.Errorf("error %q does not name both servers, or say neither is exposed", msg)
	}
	if tl, ok := c.Lookup("search"); ok {
		t.Fatalf("search exposed by %s though a and b both list it", tl.Server)
	}

	addTextTool(b, "late", "from b")
	toolgatetest.Eventually(t, "late listed", func() bool { tl, ok := c.Lookup("late"); return ok && tl.Server == "b" })
	addTextTool(a, "late", "from a")
	toolgatetest.Eventually(t, "late refused for both", func() bool {
		return strings.Contains(errorText(c.Collisions()), `"late" is listed by server "a" (tool "late") and by server "b"`)
	})
	if tl, ok := c.Lookup("late"); ok {
		t.Errorf("late still exposed by %q once a and b both list it", tl.Server)
	}

	// When one drops the tool, the name is the other's alone.
	b.DeleteTools("late")
	toolgatetest.Eventually(t, "late exposed by a", func() bool { tl, ok := c.Lookup("late"); return ok && tl.Server == "a" })
}

// TestNameCollisionSlowStart: a server that comes up after Start returned
// does not lose a name it lists to one that came up first: from then on
// neither exposes it, and the collision is reported.
func TestNameCollisionSlowStart(t *testing.T) {
	slow, file := rawUpstream(t, "slow", "")
	slow.Unprefixed = true
	c := startCatalog(t, Options{StartWait: 100 * time.Millisecond, Upstreams: []Upstream{
		slow,
		{Name: "fast", Server: namedServer("echo"), Unprefixed: true},
	}})
	toolgatetest.Eventually(t, "fast's echo", func() bool { tl, ok := c.Lookup("echo"); return ok && tl.Server == "fast" })
	writeFile(t, file, `[{"name":"echo","description":"the slow server's echo"},{"name":"slow_only"}]`)
	toolgatetest.Eventually(t, "the slow server up", func() bool { _, ok := c.Lookup("slow_only"); return ok })
	if tl, ok := c.Lookup("echo"); ok {
		t.Fatalf("echo exposed by %s once both list it", tl.Server)
	}
	if msg := errorText(c.Collisions()); !strings.Contains(msg, `"echo" is listed by server "slow" (tool "echo") and by server "fast"`) {
		t.Fatalf("Collisions() = %q", msg)
	}
}

// TestPromptNameCollisions: prompts follow the tools' rule. Two servers
// listing one prompt name at start expose neither (Collisions reports it);
// a server first in the order adding another's prompt name later does not
// take it, neither exposes it; when it drops it, the other's is back.
func TestPromptNameCollisions(t *testing.T) {
	prompt := func(s *server.MCPServer, name, reply string) {
		s.AddPrompt(mcp.NewPrompt(name), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return mcp.NewGetPromptResult(reply, nil), nil
		})
	}
	newServer := func() *server.MCPServer {
		return server.NewMCPServer("p", "1", server.WithToolCapabilities(true), server.WithPromptCapabilities(true))
	}
	a, b := newServer(), newServer()
	prompt(a, "greet", "a")
	prompt(b, "greet", "b")
	prompt(b, "review", "b")
	c := startCatalog(t, Options{Upstreams: []Upstream{
		{Name: "a", Server: a, Unprefixed: true},
		{Name: "b", Server: b, Unprefixed: true},
	}})
	toolgatetest.Eventually(t, "b's review", func() bool { _, ok := c.LookupPrompt("review"); return ok })
	if p, ok := c.LookupPrompt("greet"); ok {
		t.Fatalf("greet exposed by %s though a and b both list it", p.Server)
	}
	var ce *NameCollisionError
	if err := c.Collisions(); !errors.As(err, &ce) || ce.Kind != "prompt" || ce.Name != "greet" {
		t.Fatalf("Collisions() = %v, want the prompt greet", err)
	}

	prompt(a, "review", "a")
	toolgatetest.Eventually(t, "review refused for both", func() bool {
		return strings.Contains(errorText(c.Collisions()), `prompt name "review" is listed by server "a"`)
	})
	if p, ok := c.LookupPrompt("review"); ok {
		t.Fatalf("review exposed by %s once a lists it too", p.Server)
	}
	a.DeletePrompts("review")
	toolgatetest.Eventually(t, "review back with b", func() bool { p, ok := c.LookupPrompt("review"); return ok && p.Server == "b" })
}

// TestPromptNameKeptWhileDown: a server that is down keeps its prompts'
// names: another's prompt of the same name stays hidden until the name is
// its alone.
func TestPromptNameKeptWhileDown(t *testing.T) {
	a := server.NewMCPServer("a", "1", server.WithToolCapabilities(true), server.WithPromptCapabilities(true))
	a.AddPrompt(mcp.NewPrompt("greet"), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("a", nil), nil
	})
	c := startCatalog(t, Options{MinBackoff: time.Hour, Upstreams: []Upstream{
		{Name: "a", Server: a, Unprefixed: true},
		{Name: "b", Command: upstreamBin, Args: []string{"--prompts", "greet,only_b"}, Unprefixed: true},
	}})
	toolgatetest.Eventually(t, "b's only_b", func() bool { _, ok := c.LookupPrompt("only_b"); return ok })
	if p, ok := c.LookupPrompt("greet"); ok {
		t.Fatalf("greet exposed by %s though a and b both list it", p.Server)
	}
	if _, err := c.Forward(context.Background(), toolgate.Call{Server: "b", Tool: "crash", Name: "crash"}); err == nil {
		t.Fatal("b's crash returned")
	}
	toolgatetest.Eventually(t, "b's prompts gone with b", func() bool { _, ok := c.LookupPrompt("only_b"); return !ok })
	if p, ok := c.LookupPrompt("greet"); ok {
		t.Fatalf("greet exposed by %s while b, which lists it too, is down", p.Server)
	}
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
