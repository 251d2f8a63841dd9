package tools

import (
	"context"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// A tool its upstream runs only as a task is run as one and answered
// synchronously.
func TestTaskOnlyToolRunsSynchronously(t *testing.T) {
	s := server.NewMCPServer("tasks", "1", server.WithToolCapabilities(true), server.WithTaskCapabilities(true, true, true))
	s.AddTool(mcp.NewTool("job", mcp.WithTaskSupport(mcp.TaskSupportRequired)),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			time.Sleep(100 * time.Millisecond) // still working at the first tasks/get
			return mcp.NewToolResultText("done"), nil
		})
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "t", Server: s}}})
	job := call(c, "t__job", map[string]any{})
	if !NeedsTask(mustLookup(t, c, "t__job").Def) {
		t.Fatal("the catalog lost the tool's taskSupport")
	}
	res, err := c.Forward(context.Background(), job)
	if err != nil || text(res) != "done" {
		t.Fatalf("task-only tool: %q %v", text(res), err)
	}
}

// A task-only call that ends first (here: times out) cancels its task
// upstream (tasks/cancel).
func TestTaskCancelledWhenCallEnds(t *testing.T) {
	methods := make(chan string, 64)
	hooks := &server.Hooks{}
	hooks.AddBeforeAny(func(_ context.Context, _ any, method mcp.MCPMethod, _ any) {
		select {
		case methods <- string(method):
		default:
		}
	})
	s := server.NewMCPServer("tasks", "1", server.WithToolCapabilities(true), server.WithTaskCapabilities(true, true, true),
		server.WithHooks(hooks))
	release := make(chan struct{})
	defer close(release)
	s.AddTool(mcp.NewTool("slow", mcp.WithTaskSupport(mcp.TaskSupportRequired)),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			<-release
			return mcp.NewToolResultText("late"), nil
		})
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "t", Server: s}}})
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	if _, err := c.Forward(ctx, call(c, "t__slow", nil)); err == nil {
		t.Fatal("an unfinished task returned")
	}
	for deadline := time.After(5 * time.Second); ; {
		select {
		case m := <-methods:
			if m == string(mcp.MethodTasksCancel) {
				return
			}
		case <-deadline:
			t.Fatal("no tasks/cancel reached the upstream")
		}
	}
}

func mustLookup(t *testing.T, c *Catalog, name string) Tool {
	t.Helper()
	tl, ok := c.Lookup(name)
	if !ok {
		t.Fatalf("%s not listed", name)
	}
	return tl
}
