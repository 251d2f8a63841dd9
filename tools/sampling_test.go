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

// samplingAgent is an agent whose client answers sampling requests.
type samplingAgent struct {
	*agentSession
	sampled chan mcp.CreateMessageRequest
}

func (s *samplingAgent) RequestSampling(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	s.sampled <- req
	return &mcp.CreateMessageResult{
		SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("4")},
		Model:           "agent-model",
	}, nil
}

// TestSamplingRelayed: an upstream's sampling request during a call reaches
// the agent that made the call, with includeContext "none" whatever the
// upstream asked and a system prompt naming the upstream, and the
// completion goes back to the upstream; an agent
// whose client did not declare sampling is not asked.
func TestSamplingRelayed(t *testing.T) {
	up := server.NewMCPServer("sampler", "1", server.WithToolCapabilities(true))
	up.AddTool(mcp.NewTool("sample"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		req := mcp.CreateMessageRequest{}
		req.Messages = []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent("2+2?")}}
		req.IncludeContext = "allServers"
		req.MaxTokens = 10
		res, err := up.RequestSampling(ctx, req)
		if err != nil {
			return mcp.NewToolResultError("no completion: " + err.Error()), nil
		}
		tc, _ := res.Content.(mcp.TextContent)
		return mcp.NewToolResultText(fmt.Sprintf("%s said %s", res.Model, tc.Text)), nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(up))
	t.Cleanup(srv.Close)
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "s", URL: srv.URL + "/mcp"}}})
	toolgatetest.Eventually(t, "the upstream up", func() bool { return c.Status()[0].Up })

	sample := func(a *samplingAgent) string {
		ctx := up.WithContext(context.Background(), a)
		res, err := c.Forward(ctx, call(c, "s__sample", nil))
		if err != nil {
			t.Fatal(err)
		}
		return text(res)
	}
	agent := func(id string, samples bool) *samplingAgent {
		a := &samplingAgent{agentSession: &agentSession{id: id}, sampled: make(chan mcp.CreateMessageRequest, 1)}
		if samples {
			a.caps.Sampling = &mcp.SamplingCapability{}
		}
		return a
	}

	a := agent("agent-a", true)
	if got := sample(a); got != "agent-model said 4" {
		t.Errorf("completion reaching the upstream: %q", got)
	}
	select {
	case req := <-a.sampled:
		if req.IncludeContext != "none" {
			t.Errorf("includeContext reaching the agent: %q, want none", req.IncludeContext)
		}
		// The request names its upstream, which wrote it, to the client
		// and the model.
		if !strings.HasPrefix(req.SystemPrompt, `toolgate: this request comes from the MCP server "s" behind toolgate`) {
			t.Errorf("system prompt reaching the agent: %q, want it to name the upstream", req.SystemPrompt)
		}
		if tc, ok := req.Messages[0].Content.(mcp.TextContent); !ok || tc.Text != "2+2?" {
			t.Errorf("messages reaching the agent: %+v", req.Messages)
		}
	default:
		t.Fatal("the agent was not asked")
	}

	b := agent("no-sampling", false)
	if got := sample(b); !strings.Contains(got, "did not declare the sampling capability") {
		t.Errorf("agent without the capability: %q", got)
	}
	select {
	case req := <-b.sampled:
		t.Errorf("an agent without the capability was asked: %+v", req)
	default:
	}
}
