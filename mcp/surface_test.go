package mcp

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
	"github.com/toolgate/toolgate/tools"
)

// runGateFake is a gate that also runs non-tool calls: it records each and
// refuses those whose arguments mention "secret".
type runGateFake struct {
	recordingGate
}

func (g *runGateFake) Run(ctx context.Context, c toolgate.Call, run func(context.Context) (any, error)) (any, error) {
	g.mu.Lock()
	g.calls = append(g.calls, c)
	g.mu.Unlock()
	if strings.Contains(fmt.Sprint(c.Args), "secret") {
		return nil, errors.New("toolgate refused it: denied by test")
	}
	return run(ctx)
}

// surfaceUpstream is an in-process upstream with resources, a template, a
// prompt, completions and logging; levels receives the log levels set on
// it and "unsubscribe URI" for each unsubscribe.
func surfaceUpstream(levels chan<- mcpgo.LoggingLevel) *server.MCPServer {
	hooks := &server.Hooks{}
	hooks.AddAfterSetLevel(func(_ context.Context, _ any, req *mcpgo.SetLevelRequest, _ *mcpgo.EmptyResult) {
		levels <- req.Params.Level
	})
	hooks.AddBeforeUnsubscribe(func(_ context.Context, _ any, req *mcpgo.UnsubscribeRequest) {
		levels <- mcpgo.LoggingLevel("unsubscribe " + req.Params.URI)
	})
	s := server.NewMCPServer("up", "2.0", server.WithToolCapabilities(true), server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true), server.WithLogging(), server.WithCompletions(), server.WithHooks(hooks),
		server.WithInstructions("Up says hi."))
	s.AddTool(mcpgo.NewTool("echo"), func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText("ok"), nil
	})
	read := func(_ context.Context, req mcpgo.ReadResourceRequest) ([]mcpgo.ResourceContents, error) {
		return []mcpgo.ResourceContents{mcpgo.TextResourceContents{URI: req.Params.URI, Text: "content of " + req.Params.URI}}, nil
	}
	s.AddResource(mcpgo.NewResource("up://a", "a"), read)
	s.AddResourceTemplate(mcpgo.NewResourceTemplate("up://t/{id}", "t"), read)
	s.AddPrompt(mcpgo.NewPrompt("hello", mcpgo.WithArgument("who")), func(_ context.Context, req mcpgo.GetPromptRequest) (*mcpgo.GetPromptResult, error) {
		return mcpgo.NewGetPromptResult("", []mcpgo.PromptMessage{mcpgo.NewPromptMessage(mcpgo.RoleUser, mcpgo.NewTextContent("hello "+req.Params.Arguments["who"]))}), nil
	})
	return s
}

func newSurfaceFixture(t *testing.T, g Gate) (*fixture, chan mcpgo.LoggingLevel) {
	t.Helper()
	levels := make(chan mcpgo.LoggingLevel, 8)
	f := &fixture{up: surfaceUpstream(levels)}
	var err error
	f.cat, err = tools.New(tools.Options{
		Upstreams: []tools.Upstream{{Name: "up", Server: f.up}},
		OnChange:  func() { f.srv.SyncSoon() },
		Notify:    func(n tools.Notification) { f.srv.Notify(n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if g == nil {
		rg := &runGateFake{recordingGate{fwd: f.cat}}
		f.gate, g = &rg.recordingGate, rg
	}
	f.srv, err = New(Options{Version: "t", Gate: g, Catalog: f.cat, Surface: f.cat, Instructions: "toolgate's own."})
	if err != nil {
		t.Fatal(err)
	}
	f.cat.Start(context.Background())
	t.Cleanup(func() { _ = f.cat.Close() })
	f.srv.Sync()
	h := f.srv.HTTPHandler(HTTPOptions{})
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		_ = h.Close(context.Background())
		ts.Close()
	})
	f.url = ts.URL
	return f, levels
}

// initialize connects an mcp-go client and returns its initialize result.
func (f *fixture) initialize(t *testing.T) (*client.Client, *inbox, *mcpgo.InitializeResult) {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(f.url+PathMCP, transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(mcpgo.ProtocolVersion20251125))
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	in := &inbox{}
	c.OnNotification(in.add)
	req := mcpgo.InitializeRequest{}
	req.Params.ProtocolVersion = mcpgo.ProtocolVersion20251125
	req.Params.ClientInfo = mcpgo.Implementation{Name: "agent-x", Version: "3.1"}
	res, err := c.Initialize(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return c, in, res
}

func rawRequest(t *testing.T, c *client.Client, id, method string, params any) error {
	t.Helper()
	resp, err := c.GetTransport().SendRequest(context.Background(), transport.JSONRPCRequest{
		JSONRPC: mcpgo.JSONRPC_VERSION, ID: mcpgo.NewRequestId(id), Method: method, Params: params,
	})
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return resp.Error.AsError()
	}
	return nil
}

func TestSurface(t *testing.T) {
	f, levels := newSurfaceFixture(t, nil)
	ctx := context.Background()
	toolgatetest.Eventually(t, "the upstream's resources", func() bool { return len(f.cat.Surface().Resources) == 1 })
	f.srv.Sync()
	a, inA, init := f.initialize(t)
	_, inB, _ := f.initialize(t)

	caps := init.Capabilities
	if caps.Resources == nil || !caps.Resources.Subscribe || caps.Prompts == nil || caps.Logging == nil || caps.Completions == nil {
		t.Errorf("capabilities = %+v, want resources (subscribe), prompts, logging, completions", caps)
	}
	if !strings.HasPrefix(init.Instructions, "toolgate's own.") || !strings.Contains(init.Instructions, `"up"`) || !strings.HasSuffix(init.Instructions, "Up says hi.") {
		t.Errorf("instructions = %q, want toolgate's, then up's under its name", init.Instructions)
	}

	lr, err := a.ListResources(ctx, mcpgo.ListResourcesRequest{})
	if err != nil || len(lr.Resources) != 1 || lr.Resources[0].URI != "up://a" || lr.Resources[0].Name != "up__a" {
		t.Errorf("resources/list = %+v, %v; want up://a as up__a", lr, err)
	}
	lt, err := a.ListResourceTemplates(ctx, mcpgo.ListResourceTemplatesRequest{})
	if err != nil || len(lt.ResourceTemplates) != 1 || lt.ResourceTemplates[0].URITemplate.Raw() != "up://t/{id}" || lt.ResourceTemplates[0].Name != "up__t" {
		t.Errorf("resources/templates/list = %+v, %v; want up://t/{id} as up__t alone", lt, err)
	}

	rr := mcpgo.ReadResourceRequest{}
	rr.Params.URI = "up://t/5"
	res, err := a.ReadResource(ctx, rr)
	if err != nil || len(res.Contents) != 1 || res.Contents[0].(mcpgo.TextResourceContents).Text != "content of up://t/5" {
		t.Fatalf("read up://t/5 = %+v, %v", res, err)
	}
	c := f.gate.last()
	if c.Kind != toolgate.KindResource || c.Server != "up" || c.Tool != "t" || c.Name != "up__t" || c.Args["uri"] != "up://t/5" ||
		c.Client.Name != "agent-x" || c.SessionID == "" {
		t.Errorf("the read's gate call = %+v", c)
	}
	rr.Params.URI = "up://secret" // unlisted: the only upstream with resources gets it
	if _, err := a.ReadResource(ctx, rr); err == nil || !strings.Contains(err.Error(), "denied by test") {
		t.Errorf("read up://secret = %v, want the gate's refusal", err)
	}

	gp := mcpgo.GetPromptRequest{}
	gp.Params.Name, gp.Params.Arguments = "up__hello", map[string]string{"who": "bo"}
	pr, err := a.GetPrompt(ctx, gp)
	if err != nil || len(pr.Messages) != 1 || pr.Messages[0].Content.(mcpgo.TextContent).Text != "hello bo" {
		t.Errorf("prompts/get = %+v, %v", pr, err)
	}
	if c := f.gate.last(); c.Kind != toolgate.KindPrompt || c.Tool != "hello" || c.Args["who"] != "bo" {
		t.Errorf("the prompt's gate call = %+v", c)
	}
	cr := mcpgo.CompleteRequest{}
	cr.Params.Ref = mcpgo.PromptReference{Type: "ref/prompt", Name: "up__hello"}
	cr.Params.Argument = mcpgo.CompleteArgument{Name: "who", Value: "b"}
	cr.Params.Context.Arguments = map[string]string{"greeting": "evil; rm -rf ~"}
	if _, err := a.Complete(ctx, cr); err != nil {
		t.Errorf("completion/complete: %v", err)
	}
	// The other arguments go upstream with the completion, so the gate
	// (rules and log) sees them too.
	if c := f.gate.last(); c.Kind != toolgate.KindCompletion || c.Server != "up" || c.Args["argument"] != "who" ||
		fmt.Sprint(c.Args["context"]) != "map[greeting:evil; rm -rf ~]" {
		t.Errorf("the completion's gate call = %+v", c)
	}

	// a subscribes and sets a level; b does neither and hears nothing.
	if err := rawRequest(t, a, "sub-1", "resources/subscribe", map[string]any{"uri": "up://a"}); err != nil {
		t.Fatal(err)
	}
	sl := mcpgo.SetLevelRequest{}
	sl.Params.Level = mcpgo.LoggingLevelInfo
	if err := a.SetLevel(ctx, sl); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-levels:
		if l != mcpgo.LoggingLevelInfo {
			t.Errorf("upstream level %s, want info", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the level never reached the upstream")
	}
	f.up.SendNotificationToAllClients(string(mcpgo.MethodNotificationResourceUpdated), map[string]any{"uri": "up://other"})
	f.up.SendNotificationToAllClients(string(mcpgo.MethodNotificationResourceUpdated), map[string]any{"uri": "up://a", "contents": "SECRET=1", "_meta": map[string]any{"x": "SECRET=1"}})
	f.up.SendNotificationToAllClients(string(mcpgo.MethodNotificationMessage), map[string]any{"level": "debug", "data": "too verbose"})
	f.up.SendNotificationToAllClients(string(mcpgo.MethodNotificationMessage), map[string]any{"level": "error", "logger": "db", "data": "boom"})
	toolgatetest.Eventually(t, "a's update and log message", func() bool {
		return inA.count(string(mcpgo.MethodNotificationResourceUpdated)) >= 1 && inA.count(string(mcpgo.MethodNotificationMessage)) >= 1
	})
	inA.mu.Lock()
	for _, n := range inA.ns {
		switch n.Method {
		case string(mcpgo.MethodNotificationResourceUpdated):
			if n.Params.AdditionalFields["uri"] != "up://a" {
				t.Errorf("a got an update of %v, which it did not subscribe to", n.Params.AdditionalFields["uri"])
			}
			// An update carries the URI alone: what else the upstream
			// put in it could be content no rule let a read.
			if len(n.Params.AdditionalFields) != 1 || len(n.Params.Meta) != 0 {
				t.Errorf("a got an update with %+v, want the URI alone", n.Params)
			}
		case string(mcpgo.MethodNotificationMessage):
			if n.Params.AdditionalFields["logger"] != "up/db" || n.Params.AdditionalFields["data"] != "boom" {
				t.Errorf("a got log message %v, want boom from up/db only (debug is below its level)", n.Params.AdditionalFields)
			}
		}
	}
	inA.mu.Unlock()
	if n := inB.count(string(mcpgo.MethodNotificationResourceUpdated)) + inB.count(string(mcpgo.MethodNotificationMessage)); n != 0 {
		t.Errorf("b, which neither subscribed nor set a level, got %d updates or log messages", n)
	}

	// a's session ends (DELETE): the upstream subscription it held goes.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-levels:
		if l != "unsubscribe up://a" {
			t.Errorf("after a's session ended the upstream got %q, want unsubscribe up://a", l)
		}
	case <-time.After(10 * time.Second):
		t.Error("the upstream subscription outlived the session that held it")
	}
}

// TestSurfaceNeedsRunGate: a gate that decides tool calls only refuses
// resource reads rather than letting them through undecided.
func TestSurfaceNeedsRunGate(t *testing.T) {
	f, _ := newSurfaceFixture(t, nil)
	rg := &recordingGate{fwd: f.cat}
	srv, err := New(Options{Version: "t", Gate: rg, Catalog: f.cat, Surface: f.cat})
	if err != nil {
		t.Fatal(err)
	}
	toolgatetest.Eventually(t, "the upstream's resources", func() bool { return len(f.cat.Surface().Resources) == 1 })
	srv.Sync()
	ts := httptest.NewServer(srv.HTTPHandler(HTTPOptions{}))
	t.Cleanup(ts.Close)
	g := &fixture{url: ts.URL}
	c, _, _ := g.initialize(t)
	rr := mcpgo.ReadResourceRequest{}
	rr.Params.URI = "up://a"
	if _, err := c.ReadResource(context.Background(), rr); err == nil || !strings.Contains(err.Error(), "tool calls only") {
		t.Errorf("read with a tools-only gate = %v, want a refusal", err)
	}
	if slices.ContainsFunc(rg.calls, func(c toolgate.Call) bool { return c.Kind != "" }) {
		t.Errorf("a non-tool call reached Handle: %+v", rg.calls)
	}
}
