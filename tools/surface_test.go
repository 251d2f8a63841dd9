package tools

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// surfaceServer is an in-process upstream with resources, a template, a
// prompt, completions and logging, counting what reaches it.
type surfaceServer struct {
	srv *server.MCPServer

	mu           sync.Mutex
	subscribes   []string
	unsubscribes []string
	levels       []mcp.LoggingLevel
}

func newSurfaceServer(t *testing.T, name, instructions string, uris []string, templates []string) *surfaceServer {
	t.Helper()
	ss := &surfaceServer{}
	hooks := &server.Hooks{}
	hooks.AddBeforeSubscribe(func(_ context.Context, _ any, req *mcp.SubscribeRequest) {
		ss.mu.Lock()
		ss.subscribes = append(ss.subscribes, req.Params.URI)
		ss.mu.Unlock()
	})
	hooks.AddBeforeUnsubscribe(func(_ context.Context, _ any, req *mcp.UnsubscribeRequest) {
		ss.mu.Lock()
		ss.unsubscribes = append(ss.unsubscribes, req.Params.URI)
		ss.mu.Unlock()
	})
	hooks.AddAfterSetLevel(func(_ context.Context, _ any, req *mcp.SetLevelRequest, _ *mcp.EmptyResult) {
		ss.mu.Lock()
		ss.levels = append(ss.levels, req.Params.Level)
		ss.mu.Unlock()
	})
	ss.srv = server.NewMCPServer(name, "1.0", server.WithToolCapabilities(true), server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true), server.WithLogging(), server.WithCompletions(), server.WithInstructions(instructions),
		server.WithHooks(hooks), server.WithPromptCompletionProvider(nameCompleter{}))
	ss.srv.AddTool(mcp.NewTool("noop"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	ss.srv.AddTool(mcp.NewTool("mklink", mcp.WithString("uri")), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewResourceLink(req.GetString("uri", ""), "made", "", "text/plain")}}, nil
	})
	read := func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: name + " has " + req.Params.URI}}, nil
	}
	for _, u := range uris {
		ss.srv.AddResource(mcp.NewResource(u, "res "+u), read)
	}
	for _, tpl := range templates {
		ss.srv.AddResourceTemplate(mcp.NewResourceTemplate(tpl, "tpl "+tpl), read)
	}
	ss.srv.AddPrompt(mcp.NewPrompt("greet", mcp.WithArgument("who")), func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("greeting", []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(name+" greets "+req.Params.Arguments["who"]))}), nil
	})
	return ss
}

type nameCompleter struct{}

func (nameCompleter) CompletePromptArgument(_ context.Context, prompt string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	return &mcp.Completion{Values: []string{prompt + ":" + arg.Name + "=" + arg.Value + "!"}}, nil
}

func (ss *surfaceServer) counts() (subs, unsubs []string, levels []mcp.LoggingLevel) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return slices.Clone(ss.subscribes), slices.Clone(ss.unsubscribes), slices.Clone(ss.levels)
}

func TestSurfaceRoutingAndGating(t *testing.T) {
	docs := newSurfaceServer(t, "docs", "Use docs wisely.", []string{"file:///proj/README.md", "shared://both", "docs://guide"}, []string{"file:///proj/{path}", "docs://{page}"})
	wiki := newSurfaceServer(t, "wiki", "", []string{"wiki://home", "shared://both"}, []string{"file:///{+rest}", "wiki://page/{id}"})
	var (
		mu    sync.Mutex
		notes []Notification
	)
	cat := startCatalog(t, Options{
		Upstreams: []Upstream{{Name: "docs", Server: docs.srv}, {Name: "wiki", Server: wiki.srv}},
		Notify: func(n Notification) {
			mu.Lock()
			notes = append(notes, n)
			mu.Unlock()
		},
	})
	toolgatetest.Eventually(t, "both upstreams' resources", func() bool { return len(cat.Surface().Resources) == 5 })

	sf := cat.Surface()
	if !sf.Caps.Resources || !sf.Caps.Subscribe || !sf.Caps.Prompts || !sf.Caps.Logging || !sf.Caps.Completions {
		t.Errorf("merged capabilities = %+v, want all", sf.Caps)
	}
	if len(sf.Instructions) != 1 || sf.Instructions[0].Server != "docs" || sf.Instructions[0].Text != "Use docs wisely." {
		t.Errorf("instructions = %+v, want docs' only", sf.Instructions)
	}
	for _, r := range sf.Resources {
		if r.Server != "docs" && r.Server != "wiki" || !strings.HasPrefix(r.Name, r.Server+"__") {
			t.Errorf("resource %s exposed as %q by %q, want its server's prefix", r.Def.URI, r.Name, r.Server)
		}
	}

	for _, tc := range []struct {
		uri, server, name, template string
		err                         error
		errHas                      []string
	}{
		{uri: "wiki://home", server: "wiki", name: "res wiki://home"},                             // listed by wiki alone
		{uri: "docs://guide", server: "docs", name: "res docs://guide"},                           // listed by docs, and docs' own template matches
		{uri: "docs://faq", server: "docs", name: "tpl docs://{page}", template: "docs://{page}"}, // only docs' template matches
		{uri: "wiki://page/7", server: "wiki", name: "tpl wiki://page/{id}", template: "wiki://page/{id}"},
		{uri: "file:///etc/hosts", server: "wiki", name: "tpl file:///{+rest}", template: "file:///{+rest}"}, // only wiki's template matches
		{uri: "shared://both", err: ErrAmbiguousResource, errHas: []string{"docs (lists it)", "wiki (lists it)"}},
		{uri: "file:///proj/notes.txt", err: ErrAmbiguousResource, errHas: []string{"docs (template file:///proj/{path})", "wiki (template file:///{+rest})"}},
		// Listed by docs, but wiki's template serves it too: a listing
		// does not take a URI over from another upstream's template.
		{uri: "file:///proj/README.md", err: ErrAmbiguousResource, errHas: []string{"docs (lists it)", "wiki (template file:///{+rest})"}},
		{uri: "other://x", err: ErrUnknownResource}, // nobody's, and two upstreams have resources
	} {
		r, err := cat.RouteResource(tc.uri)
		switch {
		case tc.err != nil:
			if !errors.Is(err, tc.err) {
				t.Errorf("route %s: %v, want %v", tc.uri, err, tc.err)
			}
			for _, want := range tc.errHas {
				if err != nil && !strings.Contains(err.Error(), want) {
					t.Errorf("route %s: %v, want it to name %q", tc.uri, err, want)
				}
			}
		case err != nil:
			t.Errorf("route %s: %v", tc.uri, err)
		case r.Server != tc.server || r.Name != tc.name || r.Template != tc.template:
			t.Errorf("route %s = %+v, want server %s name %q template %q", tc.uri, r, tc.server, tc.name, tc.template)
		}
	}

	ctx := context.Background()
	res, err := cat.ReadResource(ctx, "wiki", "wiki://page/7", nil)
	if err != nil || len(res.Contents) != 1 || res.Contents[0].(mcp.TextResourceContents).Text != "wiki has wiki://page/7" {
		t.Errorf("read wiki://page/7 = %+v, %v", res, err)
	}

	p, ok := cat.LookupPrompt("wiki__greet")
	if !ok || p.Server != "wiki" || p.Def.Name != "greet" {
		t.Fatalf("prompt wiki__greet = %+v, %v", p, ok)
	}
	pr, err := cat.GetPrompt(ctx, p, map[string]string{"who": "ann"}, nil)
	if err != nil || len(pr.Messages) != 1 || pr.Messages[0].Content.(mcp.TextContent).Text != "wiki greets ann" {
		t.Errorf("get wiki__greet = %+v, %v", pr, err)
	}
	comp, err := cat.Complete(ctx, "docs", mcp.PromptReference{Type: "ref/prompt", Name: "greet"}, mcp.CompleteArgument{Name: "who", Value: "a"}, mcp.CompleteContext{})
	if err != nil || !slices.Equal(comp.Values, []string{"greet:who=a!"}) {
		t.Errorf("complete = %+v, %v", comp, err)
	}
	if s, err := cat.TemplateServer("wiki://page/{id}"); err != nil || s != "wiki" {
		t.Errorf("TemplateServer(wiki://page/{id}) = %q, %v", s, err)
	}
	if _, err := cat.TemplateServer("nope://{x}"); !errors.Is(err, ErrUnknownResource) {
		t.Errorf("TemplateServer(nope) = %v, want ErrUnknownResource", err)
	}

	// Subscriptions are counted: the upstream hears of the first and the last.
	for range 2 {
		if s, err := cat.Subscribe(ctx, "wiki://home"); err != nil || s != "wiki" {
			t.Fatalf("subscribe wiki://home = %q, %v", s, err)
		}
	}
	for _, uri := range []string{"shared://both", "file:///proj/README.md"} {
		if _, err := cat.Subscribe(ctx, uri); !errors.Is(err, ErrAmbiguousResource) {
			t.Errorf("subscribe %s = %v, want ErrAmbiguousResource", uri, err)
		}
	}
	if err := cat.Unsubscribe(ctx, "wiki", "wiki://home"); err != nil {
		t.Fatal(err)
	}
	if subs, unsubs, _ := wiki.counts(); !slices.Equal(subs, []string{"wiki://home"}) || len(unsubs) != 0 {
		t.Errorf("after 2 subscribes and 1 unsubscribe the upstream saw subscribe %v unsubscribe %v, want one subscribe", subs, unsubs)
	}
	if err := cat.Unsubscribe(ctx, "wiki", "wiki://home"); err != nil {
		t.Fatal(err)
	}
	if _, unsubs, _ := wiki.counts(); !slices.Equal(unsubs, []string{"wiki://home"}) {
		t.Errorf("after the last unsubscribe the upstream saw unsubscribe %v", unsubs)
	}

	if err := cat.SetLogLevel(ctx, mcp.LoggingLevelDebug); err != nil {
		t.Fatal(err)
	}
	for _, ss := range []*surfaceServer{docs, wiki} {
		if _, _, levels := ss.counts(); !slices.Equal(levels, []mcp.LoggingLevel{mcp.LoggingLevelDebug}) {
			t.Errorf("upstream got levels %v, want [debug]", levels)
		}
	}

	// Notifications for agents are handed on with their upstream.
	wiki.srv.SendNotificationToAllClients(string(mcp.MethodNotificationResourceUpdated), map[string]any{"uri": "wiki://home"})
	docs.srv.SendNotificationToAllClients(string(mcp.MethodNotificationMessage), map[string]any{"level": "info", "data": "hello"})
	toolgatetest.Eventually(t, "two notifications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(notes) == 2
	})
	mu.Lock()
	slices.SortFunc(notes, func(a, b Notification) int { return len(a.Method) - len(b.Method) })
	if notes[0].Server != "docs" || notes[0].Method != "notifications/message" || notes[1].Server != "wiki" || notes[1].Params["uri"] != "wiki://home" {
		t.Errorf("notifications = %+v", notes)
	}
	mu.Unlock()

	// A URI nobody lists or matches, handed out by a tool, goes back to
	// that tool's upstream (decoded and undecoded results alike).
	if _, err := cat.RouteResource("session://w/1"); !errors.Is(err, ErrUnknownResource) {
		t.Fatalf("route session://w/1 before any link = %v", err)
	}
	if _, err := cat.Forward(ctx, toolgate.Call{Server: "wiki", Tool: "mklink", Args: map[string]any{"uri": "session://w/1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.ForwardResult(ctx, toolgate.Call{Server: "docs", Tool: "mklink", Args: map[string]any{"uri": "session://d/1"}}); err != nil {
		t.Fatal(err)
	}
	for uri, want := range map[string]string{"session://w/1": "wiki", "session://d/1": "docs"} {
		if r, err := cat.RouteResource(uri); err != nil || r.Server != want {
			t.Errorf("route %s after a tool linked it = %+v, %v; want %s", uri, r, err, want)
		}
	}

	// A resource added upstream (list_changed) appears.
	wiki.srv.AddResource(mcp.NewResource("wiki://new", "new"), func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return nil, nil
	})
	toolgatetest.Eventually(t, "the new resource after list_changed", func() bool {
		_, err := cat.RouteResource("wiki://new")
		return err == nil && len(cat.Surface().Resources) == 6
	})
}

// TestSurfaceSingleUpstreamFallback: with one upstream offering resources, a
// URI nobody lists (a tool's resource link) goes to it.
func TestSurfaceSingleUpstreamFallback(t *testing.T) {
	docs := newSurfaceServer(t, "docs", "", []string{"file:///a"}, nil)
	cat := startCatalog(t, Options{Upstreams: []Upstream{{Name: "docs", Server: docs.srv}}})
	toolgatetest.Eventually(t, "resources", func() bool { return len(cat.Surface().Resources) == 1 })
	r, err := cat.RouteResource("session://made-by-a-tool")
	if err != nil || r.Server != "docs" || r.Name != "" || r.Exposed != "session://made-by-a-tool" {
		t.Errorf("route = %+v, %v; want docs, unnamed", r, err)
	}
}

func TestCallWants(t *testing.T) {
	for _, tc := range []struct {
		c    toolgate.Call
		want string
	}{
		{toolgate.Call{Server: "fs", Tool: "write_file", Name: "fs__write_file"}, "run fs__write_file (write_file on server fs)"},
		{toolgate.Call{Kind: toolgate.KindTool, Server: "fs", Tool: "write_file", Name: "fs__write_file"}, "run fs__write_file (write_file on server fs)"},
		{toolgate.Call{Kind: toolgate.KindResource, Server: "docs", Tool: "readme", Name: "docs__readme", Args: map[string]any{"uri": "file:///r"}},
			"read the resource file:///r (from server docs)"},
		{toolgate.Call{Kind: toolgate.KindPrompt, Server: "docs", Tool: "greet", Name: "docs__greet"}, "get the prompt docs__greet (greet on server docs)"},
		{toolgate.Call{Kind: toolgate.KindCompletion, Server: "docs", Tool: "greet", Name: "docs__greet"}, "complete an argument of docs__greet (server docs)"},
	} {
		if got := tc.c.Wants(); got != tc.want {
			t.Errorf("Wants() = %q, want %q", got, tc.want)
		}
	}
}
