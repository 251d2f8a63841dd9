package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

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
	// mode: "mcp-go" (CallTool) or "callTool".
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
			o.res, o.err = (&conn{client: cl}).callTool(ctx, params())
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
		t.Run(tc.name, func(t *testing.T) {
			old, got := run(t, i, "mcp-go"), run(t, i, "callTool")
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
