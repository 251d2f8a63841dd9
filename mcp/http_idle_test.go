package mcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
	"github.com/toolgate/toolgate/tools"
)

// fakeClock is a settable clock for SessionIdle.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type noTools struct{}

func (noTools) Tools() []tools.Tool { return nil }

// noSurface is a Surface with logging only, so sessions can set a log
// level: per-session state of toolgate's that expiry must free.
type noSurface struct{}

func (noSurface) Surface() tools.Surface {
	return tools.Surface{Caps: tools.Capabilities{Logging: true}}
}
func (noSurface) RouteResource(string) (tools.ResourceRoute, error) {
	return tools.ResourceRoute{}, errors.New("no resources")
}
func (noSurface) ReadResource(context.Context, string, string, map[string]any) (*mcpgo.ReadResourceResult, error) {
	return nil, errors.New("no resources")
}
func (noSurface) LookupPrompt(string) (tools.Prompt, bool) { return tools.Prompt{}, false }
func (noSurface) GetPrompt(context.Context, tools.Prompt, map[string]string, map[string]any) (*mcpgo.GetPromptResult, error) {
	return nil, errors.New("no prompts")
}
func (noSurface) TemplateServer(string) (string, error) { return "", errors.New("no templates") }
func (noSurface) Complete(context.Context, string, any, mcpgo.CompleteArgument, mcpgo.CompleteContext) (*mcpgo.Completion, error) {
	return nil, errors.New("no completions")
}
func (noSurface) Subscribe(context.Context, string) (string, error) {
	return "", errors.New("no resources")
}
func (noSurface) Unsubscribe(context.Context, string, string) error { return nil }
func (noSurface) SetLogLevel(context.Context, mcpgo.LoggingLevel) error {
	return nil
}

// levels is the number of sessions toolgate keeps a log level for.
func (s *idleServer) levels() int {
	s.srv.surf.mu.Lock()
	defer s.srv.surf.mu.Unlock()
	return len(s.srv.surf.levels)
}

type refuseGate struct{}

func (refuseGate) Handle(context.Context, toolgate.Call) toolgate.Result {
	return tools.Decoded(mcpgo.NewToolResultError("refused"))
}

// idleServer is toolgate's HTTP handler, idle limit idle on clock, served
// by an httptest server.
type idleServer struct {
	srv *Server
	h   *HTTPHandler
	url string
}

func newIdleServer(t *testing.T, idle time.Duration, clock *fakeClock) *idleServer {
	t.Helper()
	srv, err := New(Options{Version: "t", Gate: refuseGate{}, Catalog: noTools{}, Surface: noSurface{}})
	if err != nil {
		t.Fatal(err)
	}
	// One principal (no credentials) opens thousands of sessions here.
	h := srv.HTTPHandler(HTTPOptions{SessionIdle: idle, Now: clock.Now, MaxSessions: 1 << 16, MaxSessionsPerPrincipal: 1 << 16})
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		_ = h.Close(context.Background())
		ts.Close()
	})
	return &idleServer{srv: srv, h: h, url: ts.URL + PathMCP}
}

// post sends one JSON-RPC message, in session id ("" for none), and
// returns the status and the session id the response names.
func (s *idleServer) post(c *http.Client, id, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewBufferString(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if id != "" {
		req.Header.Set(headerSessionID, id)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(headerSessionID), nil
}

// status is post's status, for the test goroutine.
func (s *idleServer) status(t *testing.T, c *http.Client, id, body string) int {
	t.Helper()
	status, _, err := s.post(c, id, body)
	if err != nil {
		t.Fatal(err)
	}
	return status
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"abandoner","version":"1"}}}`

// open initializes a session as a client does (initialize, then
// notifications/initialized), sets its log level, and returns its id.
func (s *idleServer) open(c *http.Client) (string, error) {
	status, id, err := s.post(c, "", initializeBody)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK || id == "" {
		return "", fmt.Errorf("initialize: status %d, session %q", status, id)
	}
	if status, _, err = s.post(c, id, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); err != nil || status != http.StatusAccepted {
		return "", fmt.Errorf("notifications/initialized: status %d, %v", status, err)
	}
	if status, _, err = s.post(c, id, `{"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"info"}}`); err != nil || status != http.StatusOK {
		return "", fmt.Errorf("logging/setLevel: status %d, %v", status, err)
	}
	return id, nil
}

// mustOpen is open for the test goroutine.
func (s *idleServer) mustOpen(t *testing.T, c *http.Client) string {
	t.Helper()
	id, err := s.open(c)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// activeOf is the number of requests of session id in progress.
func (t *sessionTable) activeOf(id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if u := t.live[id]; u != nil {
		return u.active
	}
	return 0
}

// registered counts the ids mcp-go still holds a registered session for.
func (s *idleServer) registered(ids []string) int {
	n := 0
	for _, id := range ids {
		if err := s.srv.MCPServer().SendNotificationToSpecificClient(id, "notifications/message", map[string]any{"level": "debug", "data": "x"}); !errors.Is(err, server.ErrSessionNotFound) {
			n++
		}
	}
	return n
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestIdleSessionsExpire: thousands of sessions that end without DELETE
// are all ended once idle past the limit: no longer live, no longer
// registered with mcp-go, their state in toolgate (log levels) gone, and
// the heap they took is returned.
func TestIdleSessionsExpire(t *testing.T) {
	const sessions = 4000
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newIdleServer(t, 30*time.Minute, clock)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer c.CloseIdleConnections()
	s.mustOpen(t, c) // warm up: first-use allocations are not the sessions'
	clock.Add(31 * time.Minute)
	s.h.sweep()
	before := heapInUse()

	ids := make([]string, sessions)
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < sessions; i += workers {
				var err error
				if ids[i], err = s.open(c); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("opening sessions: %v (and %d more errors)", err, len(errs))
	}
	held := heapInUse()
	if got := s.h.sessions.len(); got != sessions {
		t.Fatalf("%d live sessions, want %d", got, sessions)
	}
	if got := s.registered(ids); got != sessions {
		t.Fatalf("%d sessions registered with mcp-go, want %d", got, sessions)
	}
	if got := s.levels(); got != sessions {
		t.Fatalf("toolgate keeps a log level for %d sessions, want %d", got, sessions)
	}

	// Not yet idle long enough: nothing ends.
	clock.Add(29 * time.Minute)
	if n := s.h.sweep(); n != 0 {
		t.Fatalf("a sweep before the idle limit ended %d sessions", n)
	}
	clock.Add(time.Minute)
	if n := s.h.sweep(); n != sessions {
		t.Errorf("the sweep at the idle limit ended %d sessions, want %d", n, sessions)
	}
	if got := s.h.sessions.len(); got != 0 {
		t.Errorf("%d live sessions after expiry, want 0", got)
	}
	if got := s.registered(ids); got != 0 {
		t.Errorf("%d sessions still registered with mcp-go after expiry, want 0", got)
	}
	if got := s.levels(); got != 0 {
		t.Errorf("toolgate still keeps a log level for %d sessions after expiry, want 0", got)
	}
	after := heapInUse()
	t.Logf("heap: %.1f MB before, %.1f MB with %d sessions, %.1f MB after expiry",
		mb(before), mb(held), sessions, mb(after))
	// Sessions held must be measurable for the comparison to mean anything
	// (mcp-go keeps ~10 KB each: queues of notifications and requests).
	if held < before+sessions*2<<10 {
		t.Fatalf("heap grew only %.1f MB for %d sessions; cannot tell whether expiry frees them", mb(held-before), sessions)
	}
	// Generous: GC timing and pools vary, but a leak is the whole growth.
	if after > before+(held-before)/4 {
		t.Errorf("heap after expiry %.1f MB, baseline %.1f MB: more than a quarter of the sessions' %.1f MB kept",
			mb(after), mb(before), mb(held-before))
	}
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// TestExpiredSessionGets404: a request naming an expired session gets 404
// (POST, GET and DELETE alike), and the client can initialize anew; a
// session used recently, or with a request in progress, is not expired.
func TestExpiredSessionGets404(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newIdleServer(t, time.Minute, clock)
	c := &http.Client{}
	defer c.CloseIdleConnections()

	idle := s.mustOpen(t, c)
	used := s.mustOpen(t, c)
	streaming := s.mustOpen(t, c)

	// streaming holds a GET stream open across the sweep.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(headerSessionID, streaming)
	stream, err := c.Do(req) // returns once the stream's headers are sent
	if err != nil {
		t.Fatal(err)
	}
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: status %d", stream.StatusCode)
	}

	clock.Add(50 * time.Second)
	if status := s.status(t, c, used, `{"jsonrpc":"2.0","id":2,"method":"ping"}`); status != http.StatusOK {
		t.Fatalf("ping in a live session: status %d", status)
	}
	clock.Add(10 * time.Second)
	if n := s.h.sweep(); n != 1 {
		t.Fatalf("sweep ended %d sessions, want 1 (the idle one)", n)
	}

	for _, tc := range []struct {
		method, body string
	}{
		{http.MethodPost, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`},
		{http.MethodGet, ""},
		{http.MethodDelete, ""},
	} {
		req, err := http.NewRequest(tc.method, s.url, bytes.NewBufferString(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set(headerSessionID, idle)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s in the expired session: status %d, want 404", tc.method, resp.StatusCode)
		}
	}
	if status := s.status(t, c, used, `{"jsonrpc":"2.0","id":4,"method":"ping"}`); status != http.StatusOK {
		t.Errorf("ping in the recently used session: status %d, want 200", status)
	}
	if fresh := s.mustOpen(t, c); fresh == idle {
		t.Errorf("re-initializing reissued the expired id %s", fresh)
	}

	// The stream kept its session live; once closed, the session idles out.
	clock.Add(10 * time.Minute)
	s.h.sweep()
	if got := s.registered([]string{streaming}); got != 1 {
		t.Fatalf("the session with an open GET stream was ended")
	}
	cancel()
	stream.Body.Close()
	toolgatetest.Eventually(t, "the streaming session to end", func() bool { return s.h.sessions.activeOf(streaming) == 0 })
	clock.Add(time.Minute)
	s.h.sweep()
	if got := s.registered([]string{streaming}); got != 0 {
		t.Errorf("the session idle since its stream closed is still registered")
	}
	if status := s.status(t, c, streaming, `{"jsonrpc":"2.0","id":5,"method":"ping"}`); status != http.StatusNotFound {
		t.Errorf("ping in the session expired after its stream: status %d, want 404", status)
	}
}
