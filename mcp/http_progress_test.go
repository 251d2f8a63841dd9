package mcp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/tools"
)

// burstUpstreamEnv makes this test binary a stdio MCP server with one
// tool, "burst", which sends 3 progress notifications and then its result
// (TestBurstUpstreamProcess). It writes each message as it is made, so
// toolgate reads them in that order and any reordering is toolgate's.
// (mcp-go's stdio server writes notifications from another goroutine than
// responses, so it cannot be this upstream.)
const burstUpstreamEnv = "TOOLGATE_MCP_TEST_BURST_UPSTREAM"

func TestBurstUpstreamProcess(t *testing.T) {
	if os.Getenv(burstUpstreamEnv) != "1" {
		t.Skip("the upstream of TestHTTPProgressBeforeResult, run as its own process")
	}
	out := json.NewEncoder(os.Stdout)
	answer := func(id json.RawMessage, result string) {
		_ = out.Encode(map[string]any{"jsonrpc": "2.0", "id": id, "result": json.RawMessage(result)})
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Meta struct {
					ProgressToken any `json:"progressToken"`
				} `json:"_meta"`
			} `json:"params"`
		}
		if json.Unmarshal(in.Bytes(), &m) != nil || m.ID == nil {
			continue
		}
		switch m.Method {
		case "initialize":
			answer(m.ID, `{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"burst","version":"1"}}`)
		case "tools/list":
			answer(m.ID, `{"tools":[{"name":"burst","inputSchema":{"type":"object"}}]}`)
		case "tools/call":
			for i := 1; i <= 3; i++ {
				_ = out.Encode(map[string]any{"jsonrpc": "2.0", "method": "notifications/progress",
					"params": map[string]any{"progressToken": m.Params.Meta.ProgressToken, "progress": i, "total": 3}})
			}
			answer(m.ID, `{"content":[{"type":"text","text":"done"}]}`)
		default:
			answer(m.ID, `{}`)
		}
	}
	os.Exit(0)
}

// TestHTTPProgressBeforeResult: over HTTP, every progress notification of
// a call reaches the agent on the call's stream, before its result, also
// when the upstream answers right after its last one and the agent has a
// GET stream open (which mcp-go v1.2.1 would let take them).
func TestHTTPProgressBeforeResult(t *testing.T) {
	var srv *Server
	cat, err := tools.New(tools.Options{
		Upstreams: []tools.Upstream{{Name: "up", Command: os.Args[0], Args: []string{"-test.run=^TestBurstUpstreamProcess$"}, Env: []string{burstUpstreamEnv + "=1"}}},
		OnChange:  func() { srv.SyncSoon() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if srv, err = New(Options{Version: "t", Gate: &recordingGate{fwd: cat}, Catalog: cat}); err != nil {
		t.Fatal(err)
	}
	cat.Start(context.Background())
	t.Cleanup(func() { _ = cat.Close() })
	srv.Sync()
	if len(cat.Tools()) == 0 {
		t.Fatal("the burst upstream did not start")
	}
	h := srv.HTTPHandler(HTTPOptions{})
	ts := httptest.NewServer(h)
	t.Cleanup(func() { _ = h.Close(context.Background()); ts.Close() })

	tr, err := transport.NewStreamableHTTP(ts.URL+PathMCP, transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(mcpgo.ProtocolVersion20251125))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	in := &inbox{}
	c.OnNotification(in.add)
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = mcpgo.ProtocolVersion20251125
	init.Params.ClientInfo = mcpgo.Implementation{Name: "agent", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}

	const calls = 40
	for i := range calls {
		token := fmt.Sprintf("call-%d", i)
		req := mcpgo.CallToolRequest{}
		req.Params.Name = "up__burst"
		req.Params.Meta = &mcpgo.Meta{ProgressToken: token}
		res, err := c.CallTool(ctx, req)
		if err != nil || res.IsError {
			t.Fatalf("call %d: %v %+v", i, err, res)
		}
		if got := in.countToken(token); got != 3 {
			t.Fatalf("call %d: %d of its 3 progress notifications arrived before its result", i, got)
		}
	}
}

// countToken counts the progress notifications carrying token.
func (b *inbox) countToken(token string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, x := range b.ns {
		if x.Method == "notifications/progress" && x.Params.AdditionalFields["progressToken"] == token {
			n++
		}
	}
	return n
}
