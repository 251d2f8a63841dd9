package mcp

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
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

// recordingGate records every Call and forwards it to the catalog.
type recordingGate struct {
	fwd   *tools.Catalog
	mu    sync.Mutex
	calls []toolgate.Call
}

func (g *recordingGate) Handle(ctx context.Context, c toolgate.Call) toolgate.Result {
	g.mu.Lock()
	g.calls = append(g.calls, c)
	g.mu.Unlock()
	res, err := g.fwd.ForwardResult(ctx, c)
	if err != nil {
		return tools.Decoded(mcpgo.NewToolResultError(err.Error()))
	}
	return res
}

func (g *recordingGate) last() toolgate.Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[len(g.calls)-1]
}

// upstreamServer is an in-process upstream with an echo and a progress tool.
func upstreamServer() *server.MCPServer {
	s := server.NewMCPServer("up", "2.0", server.WithToolCapabilities(true))
	s.AddTool(mcpgo.NewTool("echo", mcpgo.WithString("text"), mcpgo.WithDestructiveHintAnnotation(false)),
		func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			b, _ := json.Marshal(req.GetArguments())
			return mcpgo.NewToolResultText(string(b)), nil
		})
	s.AddTool(mcpgo.NewTool("prog"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		for i := 1; i <= 3; i++ {
			_ = s.SendNotificationToClient(ctx, "notifications/progress", map[string]any{"progressToken": req.Params.Meta.ProgressToken, "progress": i, "total": 3})
		}
		time.Sleep(100 * time.Millisecond)
		return mcpgo.NewToolResultText("done"), nil
	})
	return s
}

type fixture struct {
	up   *server.MCPServer
	cat  *tools.Catalog
	gate *recordingGate
	srv  *Server
	url  string
	// relayed is what the catalog handed the server to notify, in order.
	relayed struct {
		sync.Mutex
		ns []tools.Notification
	}
}

// wasRelayed reports whether the catalog handed the server a notification
// whose data is data.
func (f *fixture) wasRelayed(data string) bool {
	f.relayed.Lock()
	defer f.relayed.Unlock()
	return slices.ContainsFunc(f.relayed.ns, func(n tools.Notification) bool { return n.Params["data"] == data })
}

func newFixture(t *testing.T, o HTTPOptions) *fixture {
	t.Helper()
	f := &fixture{up: upstreamServer()}
	var err error
	f.cat, err = tools.New(tools.Options{
		Upstreams: []tools.Upstream{{Name: "up", Server: f.up}},
		OnChange:  func() { f.srv.SyncSoon() },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.gate = &recordingGate{fwd: f.cat}
	f.srv, err = New(Options{Version: "t", Gate: f.gate, Catalog: f.cat, DefaultModel: toolgate.Peer{Name: "default-model", Version: "0"}})
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
	return f
}

type inbox struct {
	mu sync.Mutex
	ns []mcpgo.JSONRPCNotification
}

func (b *inbox) add(n mcpgo.JSONRPCNotification) { b.mu.Lock(); b.ns = append(b.ns, n); b.mu.Unlock() }
func (b *inbox) count(method string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := 0
	for _, n := range b.ns {
		if n.Method == method {
			c++
		}
	}
	return c
}

func (f *fixture) client(t *testing.T, headers map[string]string) (*client.Client, *inbox) {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(f.url+PathMCP, transport.WithHTTPHeaders(headers), transport.WithContinuousListening(),
		transport.WithHTTPLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(mcpgo.ProtocolVersion20251125))
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	in := &inbox{}
	c.OnNotification(in.add)
	req := mcpgo.InitializeRequest{}
	req.Params.ProtocolVersion = mcpgo.ProtocolVersion20251125
	req.Params.ClientInfo = mcpgo.Implementation{Name: "agent-x", Version: "3.1"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, in
}

func call(t *testing.T, c *client.Client, name string, args map[string]any, meta *mcpgo.Meta) *mcpgo.CallToolResult {
	t.Helper()
	req := mcpgo.CallToolRequest{}
	req.Params.Name, req.Params.Arguments, req.Params.Meta = name, args, meta
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

func TestCallBuilding(t *testing.T) {
	f := newFixture(t, HTTPOptions{})
	c, in := f.client(t, map[string]string{HeaderModel: "header-model@7"})

	res := call(t, c, "up__echo", map[string]any{"text": "a", "_confidence": 0.25}, nil)
	if got := res.Content[0].(mcpgo.TextContent).Text; got != `{"text":"a"}` {
		t.Errorf("upstream args = %s", got)
	}
	got := f.gate.last()
	if got.Server != "up" || got.Tool != "echo" || got.Name != "up__echo" || got.ServerVersion != "2.0" || got.SchemaHash == "" {
		t.Errorf("call identity = %+v", got)
	}
	if got.Annotations.Destructive == nil || *got.Annotations.Destructive {
		t.Errorf("annotations = %+v", got.Annotations)
	}
	if got.Client != (toolgate.Peer{Name: "agent-x", Version: "3.1"}) || !strings.HasPrefix(got.SessionID, "mcp-session-") {
		t.Errorf("client %+v session %q", got.Client, got.SessionID)
	}
	if got.Model != (toolgate.Peer{Name: "header-model", Version: "7"}) {
		t.Errorf("model from header = %+v", got.Model)
	}
	if got.Confidence == nil || *got.Confidence != 0.25 {
		t.Errorf("confidence = %v", got.Confidence)
	}
	if _, ok := got.Args["_confidence"]; ok || got.Args["text"] != "a" {
		t.Errorf("args = %v", got.Args)
	}
	if got.Time.IsZero() {
		t.Error("call time not set")
	}

	// A _confidence argument outside the published schema (a number in
	// 0..1) is refused by input validation before the gate sees the call.
	for _, bad := range []any{1.5, "high"} {
		before := f.gate.last()
		res := call(t, c, "up__echo", map[string]any{"text": "x", "_confidence": bad}, nil)
		text := ""
		if len(res.Content) > 0 {
			text = res.Content[0].(mcpgo.TextContent).Text
		}
		if !res.IsError || !strings.Contains(text, "_confidence") {
			t.Errorf("_confidence %v: isError %v, %q; want a schema error naming _confidence", bad, res.IsError, text)
		}
		if after := f.gate.last(); !after.Time.Equal(before.Time) {
			t.Errorf("_confidence %v: the gate saw the call", bad)
		}
	}

	cases := []struct {
		name      string
		args      map[string]any
		meta      map[string]any
		wantModel toolgate.Peer
		wantConf  *float64
	}{
		{"meta model string", nil, map[string]any{MetaModel: "m1@2"}, toolgate.Peer{Name: "m1", Version: "2"}, nil},
		{"meta model object", nil, map[string]any{MetaModel: map[string]any{"name": "m2", "version": "3"}}, toolgate.Peer{Name: "m2", Version: "3"}, nil},
		{"meta confidence", nil, map[string]any{MetaConfidence: 0.9}, toolgate.Peer{Name: "header-model", Version: "7"}, ptr(0.9)},
		{"arg beats meta", map[string]any{"_confidence": 0.1}, map[string]any{MetaConfidence: 0.9}, toolgate.Peer{Name: "header-model", Version: "7"}, ptr(0.1)},
		{"negative meta", nil, map[string]any{MetaConfidence: -0.1}, toolgate.Peer{Name: "header-model", Version: "7"}, nil},
	}
	for _, tc := range cases {
		var meta *mcpgo.Meta
		if tc.meta != nil {
			meta = &mcpgo.Meta{AdditionalFields: tc.meta}
		}
		args := map[string]any{"text": "x"}
		for k, v := range tc.args {
			args[k] = v
		}
		call(t, c, "up__echo", args, meta)
		got := f.gate.last()
		if got.Model != tc.wantModel {
			t.Errorf("%s: model = %+v, want %+v", tc.name, got.Model, tc.wantModel)
		}
		if (got.Confidence == nil) != (tc.wantConf == nil) || (got.Confidence != nil && *got.Confidence != *tc.wantConf) {
			t.Errorf("%s: confidence = %v, want %v", tc.name, deref(got.Confidence), deref(tc.wantConf))
		}
		if _, ok := got.Args["_confidence"]; ok {
			t.Errorf("%s: _confidence left in args", tc.name)
		}
		if _, ok := got.Meta[MetaModel]; ok {
			t.Errorf("%s: toolgate meta key forwarded: %v", tc.name, got.Meta)
		}
	}

	// Default model when nothing names one.
	c2, _ := f.client(t, nil)
	call(t, c2, "up__echo", map[string]any{"text": "x"}, nil)
	if got := f.gate.last(); got.Model != (toolgate.Peer{Name: "default-model", Version: "0"}) {
		t.Errorf("default model = %+v", got.Model)
	}

	// Progress is relayed under the agent's own token.
	call(t, c, "up__prog", nil, &mcpgo.Meta{ProgressToken: "agent-token"})
	toolgatetest.Eventually(t, "progress", func() bool { return in.count("notifications/progress") == 3 })
	in.mu.Lock()
	for _, n := range in.ns {
		if n.Method == "notifications/progress" && n.Params.AdditionalFields["progressToken"] != "agent-token" {
			t.Errorf("progress token = %v", n.Params.AdditionalFields["progressToken"])
		}
	}
	in.mu.Unlock()

	// A new upstream tool reaches the agent with list_changed.
	before := in.count("notifications/tools/list_changed")
	f.up.AddTool(mcpgo.NewTool("late"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText("late"), nil
	})
	toolgatetest.Eventually(t, "list_changed", func() bool { return in.count("notifications/tools/list_changed") > before })
	lt, err := c.ListTools(context.Background(), mcpgo.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tl := range lt.Tools {
		found = found || tl.Name == "up__late"
	}
	if !found {
		t.Error("up__late not listed")
	}
}

func ptr(f float64) *float64 { return &f }

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func TestHTTPGuards(t *testing.T) {
	f := newFixture(t, HTTPOptions{AuthToken: "tok", AllowedOrigins: []string{"http://localhost", "https://app.example:8443"}, MaxRequestBytes: 1024})
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`
	cases := []struct {
		name   string
		path   string
		hdr    map[string]string
		body   string
		chunky bool
		want   int
	}{
		{"healthz needs no token", PathHealth, nil, "", false, 200},
		{"no token", PathMCP, nil, body, false, 401},
		{"lowercase bearer ok", PathMCP, map[string]string{"Authorization": "bearer tok"}, body, false, 200},
		{"token prefix", PathMCP, map[string]string{"Authorization": "Bearer to"}, body, false, 401},
		{"origin any port", PathMCP, map[string]string{"Authorization": "Bearer tok", "Origin": "http://localhost:5173"}, body, false, 200},
		{"origin exact port", PathMCP, map[string]string{"Authorization": "Bearer tok", "Origin": "https://app.example:8443"}, body, false, 200},
		{"origin wrong port", PathMCP, map[string]string{"Authorization": "Bearer tok", "Origin": "https://app.example:9999"}, body, false, 403},
		{"origin wrong scheme", PathMCP, map[string]string{"Authorization": "Bearer tok", "Origin": "https://localhost"}, body, false, 403},
		{"origin null", PathMCP, map[string]string{"Authorization": "Bearer tok", "Origin": "null"}, body, false, 403},
		{"foreign origin before auth", PathMCP, map[string]string{"Origin": "http://evil.example"}, body, false, 403},
		{"too large", PathMCP, map[string]string{"Authorization": "Bearer tok"}, strings.Repeat(" ", 1025) + body, false, 413},
		{"too large chunked", PathMCP, map[string]string{"Authorization": "Bearer tok"}, strings.Repeat(" ", 1025) + body, true, 413},
	}
	for _, tc := range cases {
		var r *http.Request
		if tc.body == "" {
			r, _ = http.NewRequest(http.MethodGet, f.url+tc.path, nil)
		} else {
			var rd = strings.NewReader(tc.body)
			r, _ = http.NewRequest(http.MethodPost, f.url+tc.path, rd)
			if tc.chunky {
				r.ContentLength = -1
				r.Body = struct {
					*strings.Reader
					closer
				}{rd, closer{}}
			}
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Accept", "application/json, text/event-stream")
		}
		for k, v := range tc.hdr {
			r.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", tc.name)
		}
	}
}

type closer struct{}

func (closer) Close() error { return nil }

func TestNewRequiresParts(t *testing.T) {
	if _, err := New(Options{Catalog: &tools.Catalog{}}); err == nil {
		t.Error("no gate accepted")
	}
	if _, err := New(Options{Gate: &recordingGate{}}); err == nil {
		t.Error("no catalog accepted")
	}
}

func TestParseModel(t *testing.T) {
	for in, want := range map[string]toolgate.Peer{
		"claude-sonnet-4":     {Name: "claude-sonnet-4"},
		"gpt-5@2025-08-07":    {Name: "gpt-5", Version: "2025-08-07"},
		" a @ b ":             {Name: "a", Version: "b"},
		"@v":                  {Name: "@v"},
		"org/model@v1@latest": {Name: "org/model@v1", Version: "latest"},
	} {
		if got := ParseModel(in); got != want {
			t.Errorf("ParseModel(%q) = %+v, want %+v", in, got, want)
		}
	}
}
