package tools

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/toolgate/toolgate/toolgatetest"
)

// agentSession is an agent's MCP session as the mcp package puts it in a
// call's context; its user answers elicitations with answer.
type agentSession struct {
	id     string
	caps   mcp.ClientCapabilities
	answer func(mcp.ElicitationRequest) *mcp.ElicitationResult
	asked  chan string
}

func (s *agentSession) SessionID() string                                   { return s.id }
func (s *agentSession) NotificationChannel() chan<- mcp.JSONRPCNotification { return nil }
func (s *agentSession) Initialize()                                         {}
func (s *agentSession) Initialized() bool                                   { return true }
func (s *agentSession) GetClientInfo() mcp.Implementation                   { return mcp.Implementation{Name: s.id} }
func (s *agentSession) SetClientInfo(mcp.Implementation)                    {}
func (s *agentSession) GetClientCapabilities() mcp.ClientCapabilities       { return s.caps }
func (s *agentSession) SetClientCapabilities(mcp.ClientCapabilities)        {}
func (s *agentSession) RequestElicitation(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	s.asked <- req.Params.Message
	return s.answer(req), nil
}

// TestElicitationRelayed: an upstream's question during a call reaches the
// user of the agent that made the call, named as the upstream's, and the
// answer goes back to the upstream; it is refused when the agent cannot be
// asked, or when calls of several agents are in flight.
func TestElicitationRelayed(t *testing.T) {
	up := server.NewMCPServer("asker", "1", server.WithToolCapabilities(true), server.WithElicitation())
	release := make(chan struct{})
	up.AddTool(mcp.NewTool("ask"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := up.RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
			Message:         "which branch?",
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"branch": map[string]any{"type": "string"}}},
		}})
		if err != nil {
			return mcp.NewToolResultError("no answer: " + err.Error()), nil
		}
		return mcp.NewToolResultText(fmt.Sprintf("%s %v", res.Action, res.Content)), nil
	})
	up.AddTool(mcp.NewTool("wait"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		<-release
		return mcp.NewToolResultText("released"), nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(up))
	t.Cleanup(srv.Close)
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "r", URL: srv.URL + "/mcp"}}})
	toolgatetest.Eventually(t, "the upstream up", func() bool { return c.Status()[0].Up })

	agent := func(id string, elicits bool) *agentSession {
		a := &agentSession{id: id, asked: make(chan string, 1), answer: func(mcp.ElicitationRequest) *mcp.ElicitationResult {
			return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"branch": "main"}}}
		}}
		if elicits {
			a.caps.Elicitation = &mcp.ElicitationCapability{}
		}
		return a
	}
	ask := func(a *agentSession) string {
		ctx := up.WithContext(context.Background(), a) // any server's WithContext puts the session in the context
		res, err := c.Forward(ctx, call(c, "r__ask", nil))
		if err != nil {
			t.Fatal(err)
		}
		return text(res)
	}

	a := agent("agent-a", true)
	if got := ask(a); got != "accept map[branch:main]" {
		t.Errorf("answer reaching the upstream: %q", got)
	}
	if q := <-a.asked; q != "[r] which branch?" {
		t.Errorf("question shown to the user: %q", q)
	}

	if got := ask(agent("no-elicitation", false)); !strings.Contains(got, "did not declare the elicitation capability") {
		t.Errorf("agent without the capability: %q", got)
	}

	// Another agent's call in flight: whose user to ask is unknown.
	other := agent("agent-b", true)
	waiting := make(chan string, 1)
	go func() {
		ctx := up.WithContext(context.Background(), other)
		res, err := c.Forward(ctx, call(c, "r__wait", nil))
		if err != nil {
			waiting <- err.Error()
			return
		}
		waiting <- text(res)
	}()
	toolgatetest.Eventually(t, "the other agent's call in flight", func() bool {
		cn := c.byNm["r"].conn
		cn.flightMu.Lock()
		defer cn.flightMu.Unlock()
		return len(cn.flights) == 1
	})
	if got := ask(a); !strings.Contains(got, "several agents") {
		t.Errorf("with two agents' calls in flight: %q", got)
	}
	close(release)
	if got := <-waiting; got != "released" {
		t.Errorf("the other call: %q", got)
	}
	select {
	case q := <-other.asked:
		t.Errorf("the other agent's user was asked %q", q)
	case q := <-a.asked:
		t.Errorf("the user was asked %q although the agent could not be told apart", q)
	default:
	}
}
