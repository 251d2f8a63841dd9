package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/tools"
)

// echoGate records the last Call and answers with it, so that a response
// shows everything the call carried to the gate.
type echoGate struct {
	mu   sync.Mutex
	last *toolgate.Call
}

func (g *echoGate) Handle(ctx context.Context, c toolgate.Call) toolgate.Result {
	g.mu.Lock()
	g.last = &c
	g.mu.Unlock()
	b, err := json.Marshal(struct {
		toolgate.Call
		Meta     map[string]any `json:"meta"`
		Progress bool           `json:"progress"`
	}{c, c.Meta, toolgate.ProgressFrom(ctx) != nil})
	if err != nil {
		return tools.Decoded(mcpgo.NewToolResultError(err.Error()))
	}
	return tools.Decoded(mcpgo.NewToolResultText(string(b)))
}

func (g *echoGate) take() *toolgate.Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.last
	g.last = nil
	return c
}

// fastCallServer is a Server with an echo, a schema-less and an
// own-_confidence tool, answering through an echoGate.
func fastCallServer(t testing.TB) (*Server, *echoGate) {
	t.Helper()
	yes, no := true, false
	with := func(name string, schema string) tools.Tool {
		def := mcpgo.NewTool(name)
		if schema != "" {
			def = mcpgo.NewToolWithRawSchema(name, "", json.RawMessage(schema))
		}
		return tools.Tool{Name: "up__" + name, Server: "up", Def: def, ServerVersion: "2.0", SchemaHash: "h-" + name,
			Annotations: toolgate.Annotations{ReadOnly: &yes, Destructive: &no}}
	}
	cat := staticTools{
		with("echo", `{"type":"object","properties":{"text":{"type":"string"},"n":{"type":"integer"}},"required":["text"]}`),
		with("free", ""),
		// An upstream with its own _confidence: toolgate leaves it alone.
		with("own", `{"type":"object","properties":{"_confidence":{"type":"string"}}}`),
	}
	g := &echoGate{}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	srv, err := New(Options{Version: "t", Gate: g, Catalog: cat, DefaultModel: toolgate.Peer{Name: "dm", Version: "1"},
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv.Sync()
	return srv, g
}

// fastCallConn is a stdio connection as ServeStdio sets one up, without
// its reader, for calling callFast and HandleMessage side by side.
func fastCallConn(t testing.TB) (*stdioConn, *echoGate) {
	t.Helper()
	srv, g := fastCallServer(t)
	sess := &stdioSession{id: newStdioSessionID(), notifications: make(chan mcpgo.JSONRPCNotification, 100), pending: map[int64]chan *elicitationAnswer{},
		out: io.Discard, log: srv.log}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := srv.mcp.RegisterSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.mcp.UnregisterSession(context.Background(), sess.id) })
	sess.SetClientInfo(mcpgo.Implementation{Name: "agent", Version: "9"})
	sess.Initialize()
	return &stdioConn{srv: srv, sess: sess, ctx: srv.mcp.WithContext(ctx, sess), cancels: map[string]context.CancelFunc{}}, g
}

// fastCallLines are tools/call lines of every kind: the ones the fast path
// serves, and the ones it must leave to mcp-go.
var fastCallLines = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"hi"}}}`,
	`{"jsonrpc":"2.0","id":"s-2","method":"tools/call","params":{"name":"up__echo","arguments":{"text":"hi","n":3,"_confidence":0.4}}}`,
	`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"hi","_confidence":"high"}}}`,
	`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"up__echo","arguments":{"n":1.5}}}`,
	`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"a"},"_meta":{"progressToken":"p","toolgate/model":"m@2","toolgate/confidence":0.7,"trace":"x"}}}`,
	`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"a"},"_meta":{"toolgate/model":{"name":"m3","version":"4"}}}}`,
	`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"up__free"}}`,
	`{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"up__free","arguments":null}}`,
	`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"up__free","arguments":[1,2]}}`,
	`{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"up__free","arguments":"str"}}`,
	`{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"up__own","arguments":{"_confidence":"mine"}}}`,
	`{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"up__free","arguments":{"deep":{"a":[1,{"b":null}],"u":"\u00e9\u2028<&>"},"big":12345678901234567890}}}`,
	`{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"NAME":"up__free","Arguments":{"x":1}}}`,
	`{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"up__free","arguments":{"x":1},"_meta":{"progressToken":7}}}`,
	// Left to mcp-go:
	`{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"nope"}}`,
	`{"jsonrpc":"1.0","id":21,"method":"tools/call","params":{"name":"up__free"}}`,
	`{"jsonrpc":"2.0","id":22,"method":"tools/call"}`,
	`{"jsonrpc":"2.0","id":23,"method":"tools/call","params":{"name":"up__free","task":{"ttl":1000}}}`,
	`{"jsonrpc":"2.0","id":24,"method":"tools/call","params":{"name":"up__free","requestState":"abc"}}`,
	`{"jsonrpc":"2.0","id":25,"method":"tools/call","params":{"name":"up__free","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
	`{"jsonrpc":"2.0","id":26,"method":"tools/call","params":{"name":7}}`,
	`{"jsonrpc":"2.0","id":27,"method":"tools/call","params":[1]}`,
	`{"jsonrpc":"2.0","id":28,"method":"tools/call","params":{"name":"up__free","_meta":"x"}}`,
}

// TestCallFastLikeMCPGo holds the stdio fast path to mcp-go's dispatch: for
// every line it serves, the gate gets the same Call and the agent the same
// response as through HandleMessage.
func TestCallFastLikeMCPGo(t *testing.T) {
	c, g := fastCallConn(t)
	served := 0
	for _, line := range fastCallLines {
		if compareCallFast(t, c, g, []byte(line)) {
			served++
		}
	}
	if served != 14 {
		t.Errorf("the fast path served %d of the 14 plain calls", served)
	}
}

// compareCallFast runs line through callFast and HandleMessage and reports
// whether callFast served it.
func compareCallFast(t testing.TB, c *stdioConn, g *echoGate, line []byte) bool {
	t.Helper()
	var m message
	if json.Unmarshal(line, &m) != nil || m.ID == nil || m.Method != string(mcpgo.MethodToolsCall) {
		return false
	}
	fast, served := c.callFast(m.ID, line)
	fastCall := g.take()
	if !served {
		if fast != nil || fastCall != nil {
			t.Errorf("%s: declined but answered %v, gate saw %v", line, fast, fastCall)
		}
		return false
	}
	slow := c.srv.mcp.HandleMessage(c.ctx, line)
	slowCall := g.take()
	fb, err1 := json.Marshal(fast)
	sb, err2 := json.Marshal(slow)
	if err1 != nil || err2 != nil || !bytes.Equal(fb, sb) {
		t.Errorf("%s:\n fast %s (%v)\n mcp-go %s (%v)", line, fb, err1, sb, err2)
	}
	if !reflect.DeepEqual(fastCall, slowCall) {
		t.Errorf("%s: gate saw\n fast %+v\n mcp-go %+v", line, fastCall, slowCall)
	}
	return true
}

func FuzzCallFast(f *testing.F) {
	for _, l := range fastCallLines {
		f.Add([]byte(l))
	}
	c, g := fastCallConn(f)
	f.Fuzz(func(t *testing.T, line []byte) {
		compareCallFast(t, c, g, line)
	})
}

// TestCallFastCancelled checks that notifications/cancelled reaches a call
// the fast path serves, over a real stdio connection.
func TestCallFastCancelled(t *testing.T) {
	srv, g := newStdioGateServer(t, "block")
	c, _, _ := serveStdioPipe(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{ProtocolVersion: mcpgo.ProtocolVersion20251125}}); err != nil {
		t.Fatal(err)
	}
	callCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.CallTool(callCtx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "t__block"}})
		done <- err
	}()
	<-g.blocked
	stop() // the client sends notifications/cancelled
	select {
	case <-g.cancelled:
	case <-ctx.Done():
		t.Fatal("notifications/cancelled did not cancel the call")
	}
	if err := <-done; err == nil {
		t.Error("the cancelled call reported success")
	}
}

// BenchmarkDispatch compares serving a tools/call line (to a gate that
// answers at once) through the fast path and through mcp-go's
// HandleMessage, with a small and an 8 KB argument.
func BenchmarkDispatch(b *testing.B) {
	c, _ := fastCallConn(b)
	c.srv.o.Gate = nopGate{}
	for _, size := range []int{15, 8192} {
		line := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"` +
			strings.Repeat("x", size) + `","_confidence":0.9}}}`)
		b.Run(fmt.Sprintf("fast/%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := c.callFast(float64(1), line); !ok {
					b.Fatal("not served")
				}
			}
		})
		b.Run(fmt.Sprintf("mcp-go/%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.srv.mcp.HandleMessage(c.ctx, line)
			}
		})
	}
}

type nopGate struct{}

func (nopGate) Handle(context.Context, toolgate.Call) toolgate.Result {
	return tools.Decoded(mcpgo.NewToolResultText("ok"))
}

// TestSyncUpdatesRecordedVersion checks that an upstream that comes back
// with a new version but the same tools is recorded with its new version
// on both dispatch paths, although agents are not sent list_changed.
func TestSyncUpdatesRecordedVersion(t *testing.T) {
	c, g := fastCallConn(t)
	before := c.srv.registered
	cat := append(staticTools(nil), c.srv.o.Catalog.(staticTools)...)
	for i := range cat {
		cat[i].ServerVersion = "3.0"
	}
	c.srv.o.Catalog = cat
	c.srv.Sync()
	if c.srv.registered != before {
		t.Error("a version change re-registered the tools (agents would get list_changed)")
	}
	line := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up__free"}}`)
	if _, ok := c.callFast(float64(1), line); !ok {
		t.Fatal("not served by the fast path")
	}
	if got := g.take(); got == nil || got.ServerVersion != "3.0" {
		t.Errorf("fast path recorded %+v, want server version 3.0", got)
	}
	c.srv.mcp.HandleMessage(c.ctx, line)
	if got := g.take(); got == nil || got.ServerVersion != "3.0" {
		t.Errorf("mcp-go path recorded %+v, want server version 3.0", got)
	}
}

// rawGate answers every call with an upstream result passed on undecoded.
type rawGate struct{}

const rawResult = `{ "content" : [{"type":"text","text":"<raw>"}], "future": {"x":1} }`

func (rawGate) Handle(context.Context, toolgate.Call) toolgate.Result {
	return toolgate.Result{Raw: json.RawMessage(rawResult)}
}

// TestCallFastPassesRawResult: a result the gate returns as its upstream's
// JSON reaches the stdio agent byte for byte, under the request's id; the
// mcp-go path (HTTP) gets the same result, decoded.
func TestCallFastPassesRawResult(t *testing.T) {
	c, _ := fastCallConn(t)
	c.srv.o.Gate = rawGate{}
	var out bytes.Buffer
	c.sess.out = &out
	for _, tc := range []struct{ id, line string }{
		{`7`, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"up__free"}}`},
		{`"a\"b"`, `{"jsonrpc":"2.0","id":"a\"b","method":"tools/call","params":{"name":"up__free"}}`},
	} {
		out.Reset()
		var m message
		if err := json.Unmarshal([]byte(tc.line), &m); err != nil {
			t.Fatal(err)
		}
		c.handle(true, m.ID, []byte(tc.line))
		want := `{"jsonrpc":"2.0","id":` + tc.id + `,"result":` + rawResult + "}\n"
		if out.String() != want {
			t.Errorf("wrote %q, want %q", out.String(), want)
		}
	}
	resp := c.srv.mcp.HandleMessage(c.ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up__free"}}`))
	b, _ := json.Marshal(resp)
	if !strings.Contains(string(b), `"text":"\u003craw\u003e"`) {
		t.Errorf("mcp-go path: %s, want the same result, decoded", b)
	}
}
