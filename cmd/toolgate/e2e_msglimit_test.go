package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeSSEEventOverLimit: an HTTP upstream that answers over SSE with
// one event split into a data line per content item, each line short and
// the whole far over max_message_bytes, gets that call failed with the
// message saying why, not passed on (nor held) whole; the next call works.
func TestServeSSEEventOverLimit(t *testing.T) {
	t.Parallel()
	s := server.NewMCPServer("split", "1", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("items", mcp.WithNumber("n")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		// A notification first makes mcp-go answer over SSE.
		if err := s.SendNotificationToClient(ctx, "notifications/message", map[string]any{"level": "info", "data": "starting"}); err != nil {
			return nil, err
		}
		res := &mcp.CallToolResult{}
		for range int(req.GetFloat("n", 1)) {
			res.Content = append(res.Content, mcp.NewTextContent(strings.Repeat("A", 100)))
		}
		return res, nil
	})
	up := httptest.NewServer(toolgatetest.SplitSSEData(server.NewStreamableHTTPServer(s)))
	t.Cleanup(up.Close)
	cfg, _ := upstreamConfigDB(t, "")
	cfg = strings.Replace(cfg, "servers:\n", "servers:\n  split:\n    url: "+up.URL+"/mcp\n    max_message_bytes: 64KiB\n", 1)
	c, _, _ := startStdio(t, writeConfig(t, cfg))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := callTool(ctx, c, "split__items", map[string]any{"n": 2000}, "")
	if err != nil {
		t.Fatalf("the call over the limit: %v", err)
	}
	if text := resultText(res); !res.IsError || !strings.Contains(text, "max_message_bytes") || len(res.Content) != 1 {
		t.Fatalf("an answer of 2000 items (~230 KB) in short data lines, against a 64 KiB limit: isError %v, %d items: %.300q", res.IsError, len(res.Content), text)
	}
	res, err = callTool(ctx, c, "split__items", map[string]any{"n": 3}, "")
	if err != nil || res.IsError || len(res.Content) != 3 {
		t.Fatalf("the next call: %v %+v", err, res)
	}
}
