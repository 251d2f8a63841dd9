package gate_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers: the pipeline and the domain types compile without SQLite,
// Slack or the MCP library, and the inner packages do not reach outward.
// A package listed may import only what its rule allows.
func TestLayers(t *testing.T) {
	const mod = "github.com/toolgate/toolgate"
	stdlib := func(p string) bool { return !strings.Contains(strings.Split(p, "/")[0], ".") }
	for _, tc := range []struct {
		pkg     string
		allowed func(dep string) bool
	}{
		// The domain package: the standard library only.
		{mod, stdlib},
		// The gate: the domain package, ULIDs, the standard library.
		{mod + "/gate", func(p string) bool {
			return stdlib(p) || p == mod || p == mod+"/gate" || p == "github.com/oklog/ulid/v2"
		}},
		// Rules: nothing of the catalog, the MCP library, audit or review.
		{mod + "/rules", func(p string) bool {
			return !strings.HasPrefix(p, "github.com/mark3labs/") && !strings.HasPrefix(p, "github.com/slack-go/") &&
				p != "github.com/mattn/go-sqlite3" && p != mod+"/tools" && p != mod+"/audit" && p != mod+"/review" && p != mod+"/mcp"
		}},
		// Review: not the catalog, so not the MCP client.
		{mod + "/review", func(p string) bool {
			return p != mod+"/tools" && p != mod+"/audit" && !strings.HasPrefix(p, "github.com/mark3labs/mcp-go/client")
		}},
		// Lookalike, which every review channel shows: the domain package,
		// redact and golang.org/x/text, so web reaches it without review.
		{mod + "/lookalike", func(p string) bool {
			return stdlib(p) || p == mod || p == mod+"/redact" || strings.HasPrefix(p, "golang.org/x/text/")
		}},
		// Audit: neither review nor the catalog, so neither Slack nor the
		// MCP library.
		{mod + "/audit", func(p string) bool {
			return p != mod+"/review" && p != mod+"/tools" && p != mod+"/mcp" &&
				!strings.HasPrefix(p, "github.com/slack-go/") && !strings.HasPrefix(p, "github.com/mark3labs/")
		}},
	} {
		out, err := exec.Command("go", "list", "-deps", tc.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tc.pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 2 {
			t.Fatalf("go list -deps %s listed %q", tc.pkg, deps)
		}
		for _, d := range deps {
			if d != tc.pkg && !tc.allowed(d) {
				t.Errorf("%s depends on %s", tc.pkg, d)
			}
		}
	}
}
