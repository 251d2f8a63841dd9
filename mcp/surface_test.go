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
	return newSurfaceFixtureHTTP(t, g, HTTPOptions{})
}

// newSurfaceFixtureHTTP is newSurfaceFixture with o for the HTTP edge.
func newSurfaceFixtureHTTP(t *testing.T, g Gate, o HTTPOptions) (*fixture, chan mcpgo.LoggingLevel) {
	t.Helper()
	levels := make(chan mcpgo.LoggingLevel, 8)
	f := &fixture{up: surfaceUpstream(levels)}
	var err error
	f.cat, err = tools.New(tools.Options{
		Upstreams: []tools.Upstream{{Name: "up", Server: f.up}},
		OnChange:  func() { f.srv.SyncSoon() },
		Notify: func(n tools.Notification) {
			f.relayed.Lock()
			f.relayed.ns = append(f.relayed.ns, n)
			f.relayed.Unlock()
			f.srv.Notify(n)
		},
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
	h := f.srv.HTTPHandler(o)
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

	// A subscription to a resource the session has not read is decided
	// as a read of it: an update tells when the resource changed.
	if err := rawRequest(t, a, "sub-secret", "resources/subscribe", map[string]any{"uri": "up://secret"}); err == nil || !strings.Contains(err.Error(), "denied by test") {
		t.Fatalf("subscribe to up://secret: %v, want the gate's refusal", err)
	}
	if c := f.gate.last(); c.Kind != toolgate.KindResource || c.Args["uri"] != "up://secret" || c.Args["subscribe"] != true {
		t.Errorf("the subscription's gate call = %+v", c)
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

// TestLogMessagesStayWithTheirPrincipal: the upstream serves every
// session over one connection, so a line it logs while running alice's
// call goes to alice's sessions that set a level, never to bob's; a line
// no one principal's request can explain goes to no one. (Each person
// listens in a session of their own that sets the level, as a client
// whose log view is its own connection does.)
func TestLogMessagesStayWithTheirPrincipal(t *testing.T) {
	alice := toolgate.Principal{User: "alice", Auth: toolgate.AuthToken}
	bob := toolgate.Principal{User: "bob", Auth: toolgate.AuthToken}
	f, levels := newSurfaceFixtureHTTP(t, nil, HTTPOptions{Auth: users{"tok-a": alice, "tok-b": bob}})
	go func() {
		for range levels { // the upstream's setLevel hook must not block
		}
	}()
	// say logs its text while it runs, as an upstream logs what it works on.
	f.up.AddTool(mcpgo.NewTool("say", mcpgo.WithString("text")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		text := req.GetString("text", "")
		// (As a map of strings: the in-process transport hands toolgate
		// the params as the upstream built them, not decoded from JSON.)
		if err := f.up.SendNotificationToClient(ctx, string(mcpgo.MethodNotificationMessage),
			map[string]any{"level": "info", "logger": "work", "data": "working on " + text}); err != nil {
			return mcpgo.NewToolResultError(err.Error()), nil
		}
		time.Sleep(100 * time.Millisecond) // mcp-go writes notifications from a goroutine of their own: let the line go first
		return mcpgo.NewToolResultText("said " + text), nil
	})
	toolgatetest.Eventually(t, "the upstream's say tool", func() bool {
		return slices.ContainsFunc(f.cat.Tools(), func(t tools.Tool) bool { return t.Name == "up__say" })
	})
	f.srv.Sync()

	a, _ := f.client(t, map[string]string{"Authorization": "Bearer tok-a"})
	listenA, inA := f.client(t, map[string]string{"Authorization": "Bearer tok-a"})
	b, _ := f.client(t, map[string]string{"Authorization": "Bearer tok-b"})
	listenB, inB := f.client(t, map[string]string{"Authorization": "Bearer tok-b"})
	ctx := context.Background()
	for _, c := range []*client.Client{listenA, listenB} {
		sl := mcpgo.SetLevelRequest{}
		sl.Params.Level = mcpgo.LoggingLevelDebug
		if err := c.SetLevel(ctx, sl); err != nil {
			t.Fatal(err)
		}
	}
	logged := func(in *inbox) []string {
		in.mu.Lock()
		defer in.mu.Unlock()
		var out []string
		for _, n := range in.ns {
			if n.Method == string(mcpgo.MethodNotificationMessage) {
				out = append(out, fmt.Sprint(n.Params.AdditionalFields["data"]))
			}
		}
		return out
	}
	has := func(in *inbox, line string) func() bool {
		return func() bool { return slices.Contains(logged(in), line) }
	}
	say := func(c *client.Client, text string) {
		t.Helper()
		if r := call(t, c, "up__say", map[string]any{"text": text}, nil); r.IsError {
			t.Fatalf("say %s: %+v", text, r.Content)
		}
	}

	say(a, "alice's file")
	toolgatetest.Eventually(t, "alice's line in her session", has(inA, "working on alice's file"))
	// Until AnsweredGrace after alice's answer, a line may still be hers:
	// bob's would go to no one.
	time.Sleep(tools.AnsweredGrace)
	// Bob's own line reaches him, so had alice's been sent to him it
	// would have come first, over the same stream.
	say(b, "bob's query")
	toolgatetest.Eventually(t, "bob's line in his session", has(inB, "working on bob's query"))
	if got := logged(inB); !slices.Equal(got, []string{"working on bob's query"}) {
		t.Errorf("bob's session got %q; want his own line alone", got)
	}
	if got := logged(inA); !slices.Equal(got, []string{"working on alice's file"}) {
		t.Errorf("alice's session got %q; want her own line alone", got)
	}

	// A line while no request is in flight (nor answered within
	// AnsweredGrace), the upstream having served both, is no one's.
	time.Sleep(tools.AnsweredGrace)
	f.up.SendNotificationToAllClients(string(mcpgo.MethodNotificationMessage), map[string]any{"level": "error", "data": "background"})
	// The upstream sends it from a goroutine: a line that reached the
	// catalog only once alice's next call was in flight would be hers.
	toolgatetest.Eventually(t, "the background line through the catalog", func() bool { return f.wasRelayed("background") })
	say(a, "more")
	toolgatetest.Eventually(t, "alice's second line", has(inA, "working on more"))
	time.Sleep(tools.AnsweredGrace)
	say(b, "more of bob's")
	toolgatetest.Eventually(t, "bob's second line", has(inB, "working on more of bob's"))
	if slices.Contains(logged(inA), "background") || slices.Contains(logged(inB), "background") {
		t.Errorf("a line no request explains was delivered: alice %q, bob %q", logged(inA), logged(inB))
	}

	// A message the catalog put down to no one is dropped; one it put
	// down to anyone goes to every session that set a level.
	f.srv.Notify(tools.Notification{Server: "up", Method: string(mcpgo.MethodNotificationMessage),
		Params: map[string]any{"level": "error", "data": "no one's"}})
	f.srv.Notify(tools.Notification{Server: "up", Method: string(mcpgo.MethodNotificationMessage),
		Params: map[string]any{"level": "error", "data": "anyone's"}, Audience: tools.LogAudience{Anyone: true}})
	toolgatetest.Eventually(t, "the line for anyone", func() bool { return has(inA, "anyone's")() && has(inB, "anyone's")() })
	if slices.Contains(logged(inA), "no one's") || slices.Contains(logged(inB), "no one's") {
		t.Errorf("a line for no one was delivered: alice %q, bob %q", logged(inA), logged(inB))
	}
}
