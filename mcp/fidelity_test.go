package mcp

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/tools"
)

// okGate records calls and answers each with "ok".
type okGate struct {
	mu    sync.Mutex
	calls []toolgate.Call
}

func (g *okGate) Handle(_ context.Context, c toolgate.Call) toolgate.Result {
	g.mu.Lock()
	g.calls = append(g.calls, c)
	g.mu.Unlock()
	return tools.Decoded(mcpgo.NewToolResultText("ok"))
}

// rawTool is a catalog tool decoded from a tools/list entry, as the
// catalog keeps it (raw input schema).
func rawTool(t *testing.T, server, def string) tools.Tool {
	t.Helper()
	var d mcpgo.Tool
	if err := json.Unmarshal([]byte(def), &d); err != nil {
		t.Fatal(err)
	}
	var s struct {
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	_ = json.Unmarshal([]byte(def), &s)
	d.InputSchema, d.RawInputSchema = mcpgo.ToolInputSchema{}, s.InputSchema
	return tools.Tool{Name: server + "__" + d.Name, Server: server, Def: d}
}

// rpc sends one request to s's mcp-go server and returns the response.
func rpc(t *testing.T, s *Server, method string, params any) mcpgo.JSONRPCMessage {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	return s.MCPServer().HandleMessage(context.Background(), b)
}

// listedTools returns the tools/list entries, by name, as JSON.
func listedTools(t *testing.T, s *Server) map[string]json.RawMessage {
	t.Helper()
	b, err := json.Marshal(rpc(t, s, "tools/list", map[string]any{}))
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Result struct{ Tools []json.RawMessage }
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for _, raw := range resp.Result.Tools {
		var n struct{ Name string }
		_ = json.Unmarshal(raw, &n)
		out[n.Name] = raw
	}
	return out
}

func callResult(t *testing.T, s *Server, name, args string) (string, bool) {
	t.Helper()
	resp, ok := rpc(t, s, "tools/call", map[string]any{"name": name, "arguments": json.RawMessage(args)}).(mcpgo.JSONRPCResponse)
	if !ok {
		t.Fatalf("tools/call %s: not a result", name)
	}
	res := resp.Result.(*mcpgo.CallToolResult)
	return res.Content[0].(mcpgo.TextContent).Text, res.IsError
}

// A schema whose root is a $ref or an allOf, forbidding other properties,
// still takes the _confidence toolgate advertises in it; the upstream's
// schema checks the rest, and the upstream never sees _confidence.
func TestConfidenceWithRefAndAllOfRoots(t *testing.T) {
	refRoot := `{"name":"ref","inputSchema":{"$ref":"#/$defs/args","$defs":{"args":{"type":"object","properties":{"x":{"type":"string"}},"required":["x"],"additionalProperties":false}}}}`
	allOfRoot := `{"name":"allof","inputSchema":{"allOf":[{"type":"object","properties":{"x":{"type":"string"}},"required":["x"]}],"unevaluatedProperties":false}}`
	g := &okGate{}
	s, err := New(Options{Gate: g, Catalog: staticTools{rawTool(t, "up", refRoot), rawTool(t, "up", allOfRoot)}})
	if err != nil {
		t.Fatal(err)
	}
	s.Sync()
	listed := listedTools(t, s)
	for _, name := range []string{"up__ref", "up__allof"} {
		if !strings.Contains(string(listed[name]), `"_confidence"`) {
			t.Errorf("%s: _confidence not advertised: %s", name, listed[name])
		}
		for _, tc := range []struct {
			args    string
			wantErr string // "" for accepted
		}{
			{`{"x":"a","_confidence":0.9}`, ""},
			{`{"x":"a"}`, ""},
			{`{"x":"a","_confidence":3}`, "at /_confidence: maximum: got 3, want 1"},
			{`{"x":1,"_confidence":0.5}`, "at /x: got number, want string"},
			{`{"x":"a","y":1,"_confidence":0.5}`, "y"},
		} {
			g.calls = nil
			text, isErr := callResult(t, s, name, tc.args)
			if tc.wantErr == "" {
				if isErr || len(g.calls) != 1 {
					t.Errorf("%s %s: refused: %s", name, tc.args, text)
					continue
				}
				if _, leaked := g.calls[0].Args[ConfidenceParam]; leaked {
					t.Errorf("%s %s: _confidence passed on in %v", name, tc.args, g.calls[0].Args)
				}
				if strings.Contains(tc.args, "0.9") && (g.calls[0].Confidence == nil || *g.calls[0].Confidence != 0.9) {
					t.Errorf("%s %s: confidence %v", name, tc.args, g.calls[0].Confidence)
				}
			} else if !isErr || !strings.Contains(text, tc.wantErr) || len(g.calls) != 0 {
				t.Errorf("%s %s: got %q (error %v, %d calls), want an error with %q", name, tc.args, text, isErr, len(g.calls), tc.wantErr)
			}
		}
	}
}

// Every tool is listed without execution (toolgate relays no tasks); one
// its upstream runs only as a task says in its description that toolgate
// runs it synchronously.
func TestTaskSupportDefinitions(t *testing.T) {
	cat := staticTools{
		rawTool(t, "up", `{"name":"required","description":"Long job.","inputSchema":{"type":"object"},"execution":{"taskSupport":"required"}}`),
		rawTool(t, "up", `{"name":"optional","description":"Maybe long.","inputSchema":{"type":"object"},"execution":{"taskSupport":"optional"}}`),
		rawTool(t, "up", `{"name":"forbidden","inputSchema":{"type":"object"},"execution":{"taskSupport":"forbidden"}}`),
	}
	s, err := New(Options{Gate: &okGate{}, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	s.Sync()
	listed := listedTools(t, s)
	for _, name := range []string{"up__required", "up__optional", "up__forbidden"} {
		tl, ok := listed[name]
		if !ok || strings.Contains(string(tl), `"execution"`) {
			t.Errorf("%s: listed %v as %s; want listed without execution", name, ok, tl)
		}
		var d struct{ Description string }
		_ = json.Unmarshal(tl, &d)
		if noted := strings.Contains(d.Description, TaskNote); noted != (name == "up__required") {
			t.Errorf("%s: description %q", name, d.Description)
		}
		if text, isErr := callResult(t, s, name, `{}`); isErr || text != "ok" {
			t.Errorf("%s: %q %v", name, text, isErr)
		}
	}
}

// A tool its upstream listed without annotations is listed without them,
// over stdio and HTTP; one listed with annotations keeps them.
func TestNoAnnotationsAdded(t *testing.T) {
	bare := rawTool(t, "up", `{"name":"bare","inputSchema":{"type":"object"}}`)
	bare.Unannotated = true
	hinted := rawTool(t, "up", `{"name":"hinted","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`)
	s, err := New(Options{Gate: &okGate{}, Catalog: staticTools{bare, hinted}})
	if err != nil {
		t.Fatal(err)
	}
	s.Sync()
	check := func(how, list string) {
		t.Helper()
		var resp struct {
			Result struct{ Tools []map[string]json.RawMessage }
		}
		if err := json.Unmarshal([]byte(list), &resp); err != nil || len(resp.Result.Tools) != 2 {
			t.Fatalf("%s: tools/list %s (%v)", how, list, err)
		}
		for _, tl := range resp.Result.Tools {
			_, has := tl["annotations"]
			if name := string(tl["name"]); has != (name == `"up__hinted"`) {
				t.Errorf("%s: %s listed with annotations %v: %s", how, name, has, tl["annotations"])
			}
			if len(tl["inputSchema"]) == 0 {
				t.Errorf("%s: %s lost its input schema", how, tl["name"])
			}
		}
	}

	// stdio
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.ServeStdio(ctx, inR, outW) }()
	t.Cleanup(func() { _ = inW.Close() })
	lines := bufio.NewReader(outR)
	for _, l := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"a","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`,
	} {
		if _, err := io.WriteString(inW, l+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	var list string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, `{"jsonrpc":"2.0","id":2,`) || strings.Contains(l, `"id":2`) {
			list = l
			break
		}
	}
	check("stdio", list)

	// streamable HTTP
	h := s.HTTPHandler(HTTPOptions{})
	ts := httptest.NewServer(h)
	defer ts.Close()
	defer func() { _ = h.Close(context.Background()) }()
	post := func(body, session string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+PathMCP, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, _ := post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"a","version":"1"}}}`, "")
	sid := resp.Header.Get("Mcp-Session-Id")
	post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, sid)
	_, body := post(`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`, sid)
	if i := strings.LastIndex(body, "data: "); i >= 0 {
		body = strings.TrimSpace(body[i+len("data: "):])
	}
	check("http", body)
}

// A tool seen eliciting is listed, and callable, only for agents whose
// client declared elicitation.
func TestElicitingToolHiddenWithoutElicitation(t *testing.T) {
	asks := rawTool(t, "up", `{"name":"asks","inputSchema":{"type":"object"}}`)
	asks.Elicits = true
	plain := rawTool(t, "up", `{"name":"plain","inputSchema":{"type":"object"}}`)
	s, err := New(Options{Gate: &okGate{}, Catalog: staticTools{asks, plain}})
	if err != nil {
		t.Fatal(err)
	}
	s.Sync()
	for _, caps := range []string{`{}`, `{"elicitation":{}}`} {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		go func() { _ = s.ServeStdio(ctx, inR, outW) }()
		lines := bufio.NewReader(outR)
		next := func(id string) string {
			for {
				l, err := lines.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(l, `"id":`+id+`,`) {
					return l
				}
			}
		}
		send := func(l string) {
			if _, err := io.WriteString(inW, l+"\n"); err != nil {
				t.Fatal(err)
			}
		}
		send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":` + caps + `,"clientInfo":{"name":"a","version":"1"}}}`)
		next("1")
		send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		send(`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`)
		list := next("2")
		send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__asks","arguments":{}}}`)
		called := next("3")
		canAsk := caps != `{}`
		if listed := strings.Contains(list, `"up__asks"`); listed != canAsk || !strings.Contains(list, `"up__plain"`) {
			t.Errorf("capabilities %s: tools/list %s", caps, list)
		}
		if ran := strings.Contains(called, `"result"`); ran != canAsk {
			t.Errorf("capabilities %s: calling up__asks: %s", caps, called)
		}
		cancel()
		_ = inW.Close()
	}
}
