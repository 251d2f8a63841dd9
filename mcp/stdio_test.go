package mcp

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/tools"
)

// stdioGate answers tools/call by tool name: "ask" elicits from the agent,
// "block" waits until released or its context ends, "progress" reports
// progress, anything else echoes the call's session and client.
type stdioGate struct {
	srv       *Server
	release   chan struct{}
	blocked   chan struct{}
	cancelled chan struct{}
}

func (g *stdioGate) Handle(ctx context.Context, c toolgate.Call) toolgate.Result {
	switch c.Tool {
	case "ask":
		req := mcpgo.ElicitationRequest{}
		req.Params.Message = "approve?"
		req.Params.RequestedSchema = map[string]any{"type": "object", "properties": map[string]any{"ok": map[string]any{"type": "boolean"}}}
		res, err := g.srv.MCPServer().RequestElicitation(ctx, req)
		if err != nil {
			return tools.Decoded(mcpgo.NewToolResultError(err.Error()))
		}
		return tools.Decoded(mcpgo.NewToolResultText(fmt.Sprintf("%s %v", res.Action, res.Content)))
	case "block":
		g.blocked <- struct{}{}
		select {
		case <-g.release:
			return tools.Decoded(mcpgo.NewToolResultText("released"))
		case <-ctx.Done():
			close(g.cancelled)
			return tools.Decoded(mcpgo.NewToolResultError("cancelled"))
		}
	case "progress":
		if fn := toolgate.ProgressFrom(ctx); fn != nil {
			fn(1, 2, "half")
			fn(2, 2, "done")
		}
		return tools.Decoded(mcpgo.NewToolResultText("progressed"))
	}
	return tools.Decoded(mcpgo.NewToolResultText(c.SessionID + " " + c.Client.Name))
}

type elicitYes struct{}

func (elicitYes) Elicit(context.Context, mcpgo.ElicitationRequest) (*mcpgo.ElicitationResult, error) {
	return &mcpgo.ElicitationResult{ElicitationResponse: mcpgo.ElicitationResponse{Action: mcpgo.ElicitationResponseActionAccept, Content: map[string]any{"ok": true}}}, nil
}

// newStdioGateServer returns a Server exposing the stdioGate tools named
// (as "t__" + name), and its gate.
func newStdioGateServer(t *testing.T, names ...string) (*Server, *stdioGate) {
	t.Helper()
	var cat staticTools
	for _, name := range names {
		cat = append(cat, tools.Tool{Name: "t__" + name, Server: "t", Def: mcpgo.NewTool(name)})
	}
	g := &stdioGate{release: make(chan struct{}), blocked: make(chan struct{}, 1), cancelled: make(chan struct{})}
	srv, err := New(Options{Version: "t", Gate: g, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	g.srv = srv
	srv.Sync()
	return srv, g
}

func TestServeStdio(t *testing.T) {
	srv, g := newStdioGateServer(t, "ask", "block", "progress", "who")

	c, inW, served := serveStdioPipe(t, srv, client.WithElicitationHandler(elicitYes{}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var progress sync.WaitGroup
	progress.Add(2)
	c.OnNotification(func(n mcpgo.JSONRPCNotification) {
		if n.Method == string(mcpgo.MethodNotificationProgress) {
			progress.Done()
		}
	})
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = mcpgo.ProtocolVersion20251125
	init.Params.ClientInfo = mcpgo.Implementation{Name: "agent", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	callText := func(name string, meta *mcpgo.Meta) string {
		req := mcpgo.CallToolRequest{}
		req.Params.Name, req.Params.Meta = name, meta
		res, err := c.CallTool(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res.Content[0].(mcpgo.TextContent).Text
	}

	// A call that blocks does not hold up the others.
	blockedDone := make(chan string, 1)
	go func() { blockedDone <- callText("t__block", nil) }()
	<-g.blocked
	if got := callText("t__who", nil); !regexp.MustCompile(`^stdio-[0-9a-f]{12} agent$`).MatchString(got) {
		t.Errorf("session and client: %q, want a stdio session of its own and the client", got)
	}
	if got := callText("t__ask", nil); got != "accept map[ok:true]" {
		t.Errorf("elicitation over stdio: %q", got)
	}
	if got := callText("t__progress", &mcpgo.Meta{ProgressToken: "p1"}); got != "progressed" {
		t.Errorf("progress call: %q", got)
	}
	progress.Wait()
	close(g.release)
	if got := <-blockedDone; got != "released" {
		t.Errorf("blocked call: %q", got)
	}

	// The input ending cancels calls still running, and ServeStdio returns
	// once they have finished.
	g.release = make(chan struct{})
	go func() { _, _ = c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "t__block"}}) }()
	<-g.blocked
	_ = inW.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeStdio: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("ServeStdio did not return after its input ended")
	}
	select {
	case <-g.cancelled:
	default:
		t.Error("the running call was not cancelled")
	}
	_ = c.Close()
}

// serveStdioPipe serves srv over a pair of pipes and returns an mcp-go
// client on their other ends (not started), the agent's side of the input
// (closing it ends the session), and ServeStdio's result.
func serveStdioPipe(t *testing.T, srv *Server, opts ...client.ClientOption) (*client.Client, io.Closer, <-chan error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- srv.ServeStdio(context.Background(), inR, outW)
		_ = outW.Close()
	}()
	t.Cleanup(func() { _ = inW.Close() })
	opts = append([]client.ClientOption{client.WithProtocolVersion(mcpgo.ProtocolVersion20251125)}, opts...)
	return client.NewClient(transport.NewIO(outR, inW, io.NopCloser(strings.NewReader(""))), opts...), inW, served
}

type staticTools []tools.Tool

func (s staticTools) Tools() []tools.Tool { return s }
