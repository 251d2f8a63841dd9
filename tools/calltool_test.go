package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// resultCases are tools/call results, each with why it is here. The old path
// (mcp.ParseCallToolResult) and decodeCallToolResult must agree on all.
var resultCases = []struct{ name, raw string }{
	{"text", `{"content":[{"type":"text","text":"hello"}]}`},
	{"text escapes", `{"content":[{"type":"text","text":"a\"b\\c\n\u00e9\ud83d\ude00 \u0000"}]}`},
	{"text annotations and meta", `{"content":[{"type":"text","text":"x","annotations":{"audience":["user","assistant"],"priority":0.5,"lastModified":"2025-01-12T15:00:58Z"},"_meta":{"progressToken":7,"k":{"a":[1,2]}}}]}`},
	{"image", `{"content":[{"type":"image","data":"aGVsbG8=","mimeType":"image/png","annotations":{"priority":1}}]}`},
	{"audio", `{"content":[{"type":"audio","data":"UklGRg==","mimeType":"audio/wav","_meta":{}}]}`},
	{"resource_link", `{"content":[{"type":"resource_link","uri":"file:///a","name":"a","title":"A","description":"d","mimeType":"text/plain","size":12}]}`},
	{"resource_link size zero", `{"content":[{"type":"resource_link","uri":"file:///a","name":"a","size":0}]}`},
	{"resource_link size negative", `{"content":[{"type":"resource_link","uri":"file:///a","name":"a","size":-3}]}`},
	{"resource_link size fraction", `{"content":[{"type":"resource_link","uri":"file:///a","name":"a","size":1.5}]}`},
	{"embedded text resource", `{"content":[{"type":"resource","resource":{"uri":"file:///a","mimeType":"text/plain","text":"body"},"annotations":{"audience":["user"]}}]}`},
	{"embedded blob resource", `{"content":[{"type":"resource","resource":{"uri":"file:///b","blob":"AAEC","_meta":{"x":1}}}]}`},
	{"embedded resource without variant", `{"content":[{"type":"resource","resource":{"uri":"file:///b"}}]}`},
	{"embedded resource without uri", `{"content":[{"type":"resource","resource":{"text":"t"}}]}`},
	{"tool_use", `{"content":[{"type":"tool_use","id":"u1","name":"f","input":{"a":1}}]}`},
	{"tool_result", `{"content":[{"type":"tool_result","toolUseId":"u1","content":[{"type":"text","text":"r"}],"isError":true}]}`},
	{"mixed", `{"content":[{"type":"text","text":"a"},{"type":"image","data":"eA==","mimeType":"image/gif"},{"type":"resource","resource":{"uri":"u","text":""}},{"type":"resource_link","uri":"u","name":"n"},{"type":"audio","data":"eA==","mimeType":"audio/mpeg"}]}`},
	{"structuredContent", `{"content":[{"type":"text","text":"{\"a\":1}"}],"structuredContent":{"a":1,"b":[true,null,"s",1e3],"c":{}}}`},
	{"structuredContent null", `{"content":[],"structuredContent":null}`},
	{"structuredContent array", `{"content":[],"structuredContent":[1,2]}`},
	{"structuredContent number overflow", `{"content":[],"structuredContent":{"n":1e400}}`},
	{"isError", `{"content":[{"type":"text","text":"boom"}],"isError":true}`},
	{"isError false", `{"content":[{"type":"text","text":"ok"}],"isError":false}`},
	{"isError wrong type", `{"content":[],"isError":"yes"}`},
	{"result _meta", `{"_meta":{"progressToken":"t","io.example/k":{"v":[1]}},"content":[{"type":"text","text":"m"}]}`},
	{"result _meta null", `{"_meta":null,"content":[{"type":"text","text":"m"}]}`},
	{"result _meta not object", `{"_meta":3,"content":[]}`},
	{"unknown fields", `{"content":[{"type":"text","text":"u","extra":{"deep":[1]},"data":"ignored"}],"ttlMs":5,"cacheScope":"x","whatever":[null]}`},
	{"unknown field of wrong type for another content type", `{"content":[{"type":"text","text":"u","data":5,"size":"big","uri":[]}]}`},
	{"empty content", `{"content":[]}`},
	{"null content", `{"content":null}`},
	{"missing content", `{"isError":true}`},
	{"content not array", `{"content":{"type":"text","text":"x"}}`},
	{"content item null", `{"content":[null]}`},
	{"content item not object", `{"content":["text"]}`},
	{"content item without type", `{"content":[{"text":"x"}]}`},
	{"content type null", `{"content":[{"type":null,"text":"x"}]}`},
	{"content type number", `{"content":[{"type":1,"text":"x"}]}`},
	{"content type unknown", `{"content":[{"type":"video","text":"x"}]}`},
	{"content type case", `{"content":[{"type":"Text","text":"x"}]}`},
	{"key case", `{"Content":[{"TYPE":"text","Text":"x","MimeType":"m"}],"ISERROR":true}`},
	{"duplicate keys in item", `{"content":[{"type":"image","type":"text","text":"a","text":"b"}]}`},
	{"duplicate content arrays", `{"content":[{"type":"image","data":"x","mimeType":"m"},{"type":"text","text":"a"}],"content":[{"type":"text","text":"b"}]}`},
	{"duplicate content, last lacks type", `{"content":[{"type":"text","text":"a"}],"content":[{"text":"b"}]}`},
	{"duplicate content, last null", `{"content":[{"type":"text","text":"a"}],"content":null}`},
	{"input_required", `{"resultType":"input_required","inputRequests":{"a":{"method":"elicitation/create","params":{"message":"m","requestedSchema":{"type":"object"}}}},"requestState":"s"}`},
	{"input_required without content or requests", `{"resultType":"input_required","requestState":"s"}`},
	{"resultType complete", `{"resultType":"complete","content":[]}`},
	{"resultType wrong type", `{"resultType":1,"content":[]}`},
	{"top null", `null`},
	{"top array", `[]`},
	{"top string", `"x"`},
	{"invalid json", `{"content":[`},
	{"trailing data", `{"content":[]} x`},
	{"whitespace", " \n{ \"content\" : [ { \"type\" : \"text\" , \"text\" : \"w\" } ] }\t"},
}

// parseOld is what mcp-go's client did with a tools/call result.
func parseOld(raw []byte) (*mcp.CallToolResult, error) {
	m := json.RawMessage(append([]byte(nil), raw...))
	return mcp.ParseCallToolResult(&m)
}

// sameOutcome reports how two (result, error) pairs differ, or "".
func sameOutcome(oldRes *mcp.CallToolResult, oldErr error, newRes *mcp.CallToolResult, newErr error) string {
	if (oldErr == nil) != (newErr == nil) || (oldErr != nil && oldErr.Error() != newErr.Error()) {
		return fmt.Sprintf("error: old %v, new %v", oldErr, newErr)
	}
	if !reflect.DeepEqual(oldRes, newRes) {
		o, _ := json.Marshal(oldRes)
		n, _ := json.Marshal(newRes)
		return fmt.Sprintf("result:\nold %#v\n    %s\nnew %#v\n    %s", oldRes, o, newRes, n)
	}
	return ""
}

func TestDecodeCallToolResultMatchesMCPGo(t *testing.T) {
	for _, tc := range resultCases {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.raw)
			oldRes, oldErr := parseOld(raw)
			newRes, newErr := decodeCallToolResult(append([]byte(nil), raw...))
			if d := sameOutcome(oldRes, oldErr, newRes, newErr); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// TestDecodeCallToolResultFastPath checks that the common results do not
// fall back to mcp.ParseCallToolResult, so the equivalence test above tests
// the new code and not the old one twice.
func TestDecodeCallToolResultFastPath(t *testing.T) {
	for _, name := range []string{"text", "text escapes", "text annotations and meta", "image", "audio",
		"resource_link", "embedded text resource", "mixed", "structuredContent", "isError", "result _meta",
		"unknown fields", "unknown field of wrong type for another content type", "empty content", "key case"} {
		if _, ok := decodeResultFast(json.RawMessage(resultCase(name))); !ok {
			t.Errorf("%s: fell back to mcp.ParseCallToolResult", name)
		}
	}
}

func resultCase(name string) string {
	for _, tc := range resultCases {
		if tc.name == name {
			return tc.raw
		}
	}
	panic("no result case " + name)
}

// FuzzDecodeCallToolResult: on any input, the new decoder returns what
// mcp.ParseCallToolResult returns, and leaves its input alone.
func FuzzDecodeCallToolResult(f *testing.F) {
	for _, tc := range resultCases {
		f.Add([]byte(tc.raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		oldRes, oldErr := parseOld(raw)
		in := append([]byte(nil), raw...)
		newRes, newErr := decodeCallToolResult(in)
		if d := sameOutcome(oldRes, oldErr, newRes, newErr); d != "" {
			t.Fatalf("input %q: %s", raw, d)
		}
		if string(in) != string(raw) {
			t.Fatalf("input modified: %q", in)
		}
	})
}

func bigTextResult(n int) []byte {
	raw, err := json.Marshal(mcp.NewToolResultText(strings.Repeat("lorem ipsum dolor sit amet, ", n/28+1)[:n]))
	if err != nil {
		panic(err)
	}
	return raw
}

func BenchmarkDecodeCallToolResult(b *testing.B) {
	for _, size := range []int{8000, 64} {
		raw := bigTextResult(size)
		b.Run(fmt.Sprintf("old/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				m := json.RawMessage(raw)
				if _, err := mcp.ParseCallToolResult(&m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("new/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeCallToolResult(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// scriptTransport is a transport.Interface that answers initialize itself
// and tools/call with answer, and records what it was sent.
type scriptTransport struct {
	answer func(ctx context.Context, n int, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error)
	http   bool // pretend to be an HTTP transport (for notifications/cancelled)

	mu            sync.Mutex
	calls         int
	ids           []mcp.RequestId
	params        []string // JSON of each tools/call's params
	notifications []mcp.JSONRPCNotification
	notified      chan struct{}
}

func (s *scriptTransport) Start(context.Context) error { return nil }
func (s *scriptTransport) SendRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	if req.Method == string(mcp.MethodInitialize) {
		res := json.RawMessage(`{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"script","version":"1"}}`)
		return &transport.JSONRPCResponse{JSONRPC: mcp.JSONRPC_VERSION, ID: req.ID, Result: res}, nil
	}
	p, err := json.Marshal(req.Params)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	n := s.calls
	s.calls++
	s.ids = append(s.ids, req.ID)
	s.params = append(s.params, string(p))
	s.mu.Unlock()
	resp, err := s.answer(ctx, n, req)
	if resp != nil {
		resp.ID = req.ID
	}
	return resp, err
}
func (s *scriptTransport) SendNotification(_ context.Context, n mcp.JSONRPCNotification) error {
	if n.Method == string(mcp.MethodNotificationInitialized) {
		return nil
	}
	s.mu.Lock()
	s.notifications = append(s.notifications, n)
	s.mu.Unlock()
	s.notified <- struct{}{}
	return nil
}
func (s *scriptTransport) SetNotificationHandler(func(mcp.JSONRPCNotification)) {}
func (s *scriptTransport) Close() error                                         { return nil }
func (s *scriptTransport) GetSessionId() string                                 { return "" }

type scriptHTTPTransport struct{ *scriptTransport }

func (scriptHTTPTransport) SetProtocolVersion(string) {}

func result(raw string) *transport.JSONRPCResponse {
	return &transport.JSONRPCResponse{JSONRPC: mcp.JSONRPC_VERSION, Result: json.RawMessage(raw)}
}

// TestCallToolMatchesMCPGo runs the same scripted upstream under mcp-go's
// CallTool and under callTool, and compares what each returned and sent.
func TestCallToolMatchesMCPGo(t *testing.T) {
	errPipe := errors.New("write |1: broken pipe")
	params := func() mcp.CallToolParams {
		return mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/a", "n": 1},
			Meta: &mcp.Meta{ProgressToken: "toolgate-1", AdditionalFields: map[string]any{"k": "v"}}}
	}
	cases := []struct {
		name   string
		http   bool
		ctx    func() (context.Context, context.CancelFunc)
		answer func(ctx context.Context, n int, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error)
		cancel bool // a notifications/cancelled is expected
	}{
		{name: "text result", answer: func(context.Context, int, transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			return result(`{"content":[{"type":"text","text":"hi"}],"structuredContent":{"a":1},"_meta":{"m":1}}`), nil
		}},
		{name: "isError result", answer: func(context.Context, int, transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			return result(`{"content":[{"type":"text","text":"no"}],"isError":true}`), nil
		}},
		{name: "bad result", answer: func(context.Context, int, transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			return result(`{"isError":true}`), nil
		}},
		{name: "unknown content type", answer: func(context.Context, int, transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			return result(`{"content":[{"type":"video"}]}`), nil
		}},
		{name: "jsonrpc error", answer: func(context.Context, int, transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			return &transport.JSONRPCResponse{JSONRPC: mcp.JSONRPC_VERSION, Error: &mcp.JSONRPCErrorDetails{Code: mcp.INVALID_PARAMS, Message: "unknown tool"}}, nil
		}},
		{name: "jsonrpc error with data", answer: func(context.Context, int, transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			return &transport.JSONRPCResponse{JSONRPC: mcp.JSONRPC_VERSION, Error: &mcp.JSONRPCErrorDetails{Code: -32000, Message: "boom", Data: map[string]any{"x": 1}}}, nil
		}},
		{name: "transport error", answer: func(context.Context, int, transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			return nil, errPipe
		}},
		{name: "cancelled while waiting", cancel: true,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(20*time.Millisecond, cancel)
				return ctx, cancel
			},
			answer: func(ctx context.Context, _ int, _ transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}},
		{name: "timed out while waiting", cancel: true,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeoutCause(context.Background(), 20*time.Millisecond, errCallTimeout)
			},
			answer: func(ctx context.Context, _ int, _ transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}},
		{name: "cancelled over http", http: true,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(20*time.Millisecond, cancel)
				return ctx, cancel
			},
			answer: func(ctx context.Context, _ int, _ transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
				<-ctx.Done()
				return nil, fmt.Errorf("post: %w", ctx.Err())
			}},
		{name: "cancelled before sending",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			answer: func(context.Context, int, transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
				return result(`{"content":[]}`), nil
			}},
		{name: "load shedding then result", answer: func(_ context.Context, n int, _ transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			if n < 2 {
				return result(fmt.Sprintf(`{"resultType":"input_required","requestState":"s%d"}`, n)), nil
			}
			return result(`{"content":[{"type":"text","text":"finally"}]}`), nil
		}},
		{name: "load shedding forever", answer: func(_ context.Context, n int, _ transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			return result(fmt.Sprintf(`{"resultType":"input_required","requestState":"s%d","inputRequests":{}}`, n)), nil
		}},
		{name: "elicitation requested", answer: func(context.Context, int, transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			return result(`{"resultType":"input_required","requestState":"s","inputRequests":{"q":{"method":"elicitation/create","params":{"message":"name?","requestedSchema":{"type":"object"}}}}}`), nil
		}},
		{name: "roots requested", answer: func(context.Context, int, transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			return result(`{"resultType":"input_required","inputRequests":{"r":{"method":"roots/list"}}}`), nil
		}},
		{name: "shedding then sampling requested", answer: func(_ context.Context, n int, _ transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			if n == 0 {
				return result(`{"resultType":"input_required","requestState":"s"}`), nil
			}
			return result(`{"resultType":"input_required","inputRequests":{"s":{"method":"sampling/createMessage","params":{"messages":[],"maxTokens":5}}}}`), nil
		}},
	}
	type outcome struct {
		res           *mcp.CallToolResult
		err           error
		ids           []mcp.RequestId
		params        []string
		notifications []mcp.JSONRPCNotification
	}
	// mode: "mcp-go" (CallTool), "decoded" or "raw" (callTool).
	run := func(t *testing.T, i int, mode string) outcome {
		tc := cases[i]
		st := &scriptTransport{answer: tc.answer, notified: make(chan struct{}, 8)}
		var tr transport.Interface = st
		if tc.http {
			tr = scriptHTTPTransport{st}
		}
		cl := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
		if err := cl.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = mcp.ProtocolVersion20251125
		if _, err := cl.Initialize(context.Background(), init); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if tc.ctx != nil {
			ctx, cancel = tc.ctx()
		}
		defer cancel()
		var o outcome
		switch mode {
		case "mcp-go":
			o.res, o.err = cl.CallTool(ctx, mcp.CallToolRequest{Params: params()})
		default:
			var r Result
			r, o.err = (&conn{client: cl}).callTool(ctx, params(), mode == "raw")
			if mode == "decoded" && r.Raw != nil {
				t.Errorf("decoded mode returned raw %s", r.Raw)
			}
			if o.err == nil {
				o.res, o.err = r.Decode()
				if o.err == nil && r.IsError != o.res.IsError {
					t.Errorf("%s: IsError %v, result says %v", mode, r.IsError, o.res.IsError)
				}
			}
		}
		if tc.cancel {
			select {
			case <-st.notified:
			case <-time.After(5 * time.Second):
				t.Fatal("no notifications/cancelled")
			}
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		o.ids, o.params, o.notifications = st.ids, st.params, st.notifications
		return o
	}
	for i, tc := range cases {
		for _, mode := range []string{"decoded", "raw"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				old, got := run(t, i, "mcp-go"), run(t, i, mode)
				if d := sameOutcome(old.res, old.err, got.res, got.err); d != "" {
					t.Fatal(d)
				}
				if old.err != nil {
					_, oldTransport := errors.AsType[*transport.Error](old.err)
					_, newTransport := errors.AsType[*transport.Error](got.err)
					if oldTransport != newTransport {
						t.Errorf("transport error: old %v, new %v", oldTransport, newTransport)
					}
					if errors.Is(old.err, context.Canceled) != errors.Is(got.err, context.Canceled) ||
						errors.Is(old.err, context.DeadlineExceeded) != errors.Is(got.err, context.DeadlineExceeded) ||
						errors.Is(old.err, client.ErrMaxInputRoundTripsExceeded) != errors.Is(got.err, client.ErrMaxInputRoundTripsExceeded) {
						t.Errorf("errors.Is differs: old %v, new %v", old.err, got.err)
					}
				}
				if !reflect.DeepEqual(old.params, got.params) {
					t.Errorf("params sent:\nold %q\nnew %q", old.params, got.params)
				}
				for j, id := range got.ids {
					want := fmt.Sprintf("toolgate-call-%d", j+1)
					if s, ok := id.Value().(string); !ok || s != want {
						t.Errorf("request id %d = %v, want %q", j, id.Value(), want)
					}
				}
				if len(old.notifications) != len(got.notifications) {
					t.Fatalf("notifications: old %v, new %v", old.notifications, got.notifications)
				}
				for j := range old.notifications {
					o, n := old.notifications[j], got.notifications[j]
					if n.Params.AdditionalFields["requestId"] != got.ids[0] {
						t.Errorf("cancelled names %v, want %v", n.Params.AdditionalFields["requestId"], got.ids[0])
					}
					delete(o.Params.AdditionalFields, "requestId")
					delete(n.Params.AdditionalFields, "requestId")
					if !reflect.DeepEqual(o, n) {
						t.Errorf("notification: old %+v, new %+v", o, n)
					}
				}
			})
		}
	}
}
