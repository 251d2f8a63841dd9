package tools

import (
	"context"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate/toolgatetest"
)

// TestSurfaceDuplicateURI: an upstream listing one resource URI (or URI
// template) twice, under two names, has the first exposed alone. Pins are
// keyed by URI, so exposing both would make each overwrite the other's
// seen definition, and chain an event, at every listing.
func TestSurfaceDuplicateURI(t *testing.T) {
	hooks := &server.Hooks{}
	hooks.AddAfterListResources(func(_ context.Context, _ any, _ *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
		res.Resources = append(res.Resources, mcp.NewResource("dup://doc", "doc2", mcp.WithResourceDescription("Other text.")))
	})
	hooks.AddAfterListResourceTemplates(func(_ context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, res *mcp.ListResourceTemplatesResult) {
		res.ResourceTemplates = append(res.ResourceTemplates, mcp.NewResourceTemplate("dup://{x}", "tpl2"))
	})
	srv := server.NewMCPServer("dup", "1.0", server.WithToolCapabilities(true), server.WithResourceCapabilities(false, true), server.WithHooks(hooks))
	srv.AddTool(mcp.NewTool("noop"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	read := func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "x"}}, nil
	}
	srv.AddResource(mcp.NewResource("dup://doc", "doc", mcp.WithResourceDescription("The doc.")), read)
	srv.AddResourceTemplate(mcp.NewResourceTemplate("dup://{x}", "tpl"), read)
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "d", Server: srv}}})
	toolgatetest.Eventually(t, "the resources to be listed", func() bool {
		sf := c.Surface()
		return len(sf.Resources) > 0 && len(sf.Templates) > 0
	})
	sf := c.Surface()
	if len(sf.Resources) != 1 || sf.Resources[0].Def.Name != "doc" || sf.Resources[0].Def.Description != "The doc." {
		t.Fatalf("resources listed: %+v", sf.Resources)
	}
	if len(sf.Templates) != 1 || sf.Templates[0].Def.Name != "tpl" {
		t.Fatalf("templates listed: %+v", sf.Templates)
	}
}
