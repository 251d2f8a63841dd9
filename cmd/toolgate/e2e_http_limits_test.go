package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeHTTPSessionCap: with per-user tokens, a user at
// http.max_sessions_per_principal gets 429 and a message saying what to do,
// while another user still gets in; her DELETE frees a slot. A GET without
// a session gets 400 and opens none.
func TestServeHTTPSessionCap(t *testing.T) {
	t.Parallel()
	cfg, db := upstreamConfigDB(t, "http: {tokens: true, max_sessions_per_principal: 2}\n")
	cfg = writeConfig(t, cfg)
	alice, bob := createToken(t, db, "alice"), createToken(t, db, "bob")
	g := startHTTPProc(t, cfg)
	mcpURL := g.base + "/mcp"
	as := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	var sessions []string
	for range 2 {
		resp, body := post(t, mcpURL, initBody, as(alice))
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
			t.Fatalf("alice's initialize: %d %s", resp.StatusCode, body)
		}
		sessions = append(sessions, resp.Header.Get("Mcp-Session-Id"))
	}
	resp, body := post(t, mcpURL, initBody, as(alice))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Mcp-Session-Id") != "" ||
		!strings.Contains(body, "too many open MCP sessions for alice (2)") || !strings.Contains(body, `"id":1`) {
		t.Fatalf("alice's 3rd initialize: %d %s", resp.StatusCode, body)
	}
	if resp, body := post(t, mcpURL, initBody, as(bob)); resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("bob's initialize while alice is at her cap: %d %s", resp.StatusCode, body)
	}

	req, _ := http.NewRequest(http.MethodDelete, mcpURL, nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	req.Header.Set("Mcp-Session-Id", sessions[0])
	del, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	del.Body.Close()
	if del.StatusCode != http.StatusOK {
		t.Fatalf("alice's DELETE: %d", del.StatusCode)
	}
	if resp, body := post(t, mcpURL, initBody, as(alice)); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice's initialize after her DELETE: %d %s", resp.StatusCode, body)
	}

	req, _ = http.NewRequest(http.MethodGet, mcpURL, nil)
	req.Header.Set("Authorization", "Bearer "+bob)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	stream.Body.Close()
	if stream.StatusCode != http.StatusBadRequest {
		t.Errorf("GET without a session: %d, want 400", stream.StatusCode)
	}
	// The GET opened no session for bob: he has one, and opens his second.
	if resp, body := post(t, mcpURL, initBody, as(bob)); resp.StatusCode != http.StatusOK {
		t.Errorf("bob's 2nd initialize: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(g.stderr.String(), `msg="http initialize refused: the principal's session cap is reached" user=alice`) {
		t.Errorf("the refusal is not logged")
	}
}

// rawConn is a TCP connection to toolgate speaking HTTP/1.1 by hand, as a
// peer that holds connections or sends slowly would.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, base string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// healthz sends GET /healthz and reads the answer; the connection stays
// open (keep-alive).
func (c *rawConn) healthz(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
}

// closedByServer waits (at most a minute, as a bound on a hung test, not a
// timing claim) for the server to close c, reading what it sends first.
func (c *rawConn) closedByServer(t *testing.T) (string, bool) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	b, err := io.ReadAll(c.r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(b), false
	}
	return string(b), true
}

// TestServeHTTPConnLimits: a keep-alive connection left idle is closed
// after http.conn_idle; a request whose body stalls gets 408 once
// http.body_timeout has passed, though it is authenticated, while a call
// running for longer than that is not cut; with every
// connection of http.max_connections held idle by a peer without
// credentials, an agent still gets in (the idle ones are closed for it).
func TestServeHTTPConnLimits(t *testing.T) {
	t.Parallel()
	const token = "limits-t0ken"

	t.Run("idle connection closed", func(t *testing.T) {
		t.Parallel()
		base := startHTTP(t, writeConfig(t, upstreamConfig(t, "http: {conn_idle: 1s}\n")), "--auth-token", token)
		c := dialRaw(t, base)
		c.healthz(t)
		if rest, closed := c.closedByServer(t); !closed || rest != "" {
			t.Fatalf("idle connection: closed %v, sent %q", closed, rest)
		}
	})

	t.Run("slow body cut", func(t *testing.T) {
		t.Parallel()
		base := startHTTP(t, writeConfig(t, upstreamConfig(t, "http: {body_timeout: 1s}\n")), "--auth-token", token)
		c := dialRaw(t, base)
		// Headers complete, 10 of the 100 body bytes, then nothing.
		if _, err := fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"", token); err != nil {
			t.Fatal(err)
		}
		out, closed := c.closedByServer(t)
		if !closed || !strings.HasPrefix(out, "HTTP/1.1 408 ") {
			t.Fatalf("stalled body: closed %v, got %q", closed, out)
		}
		// The timeout is the body's: a call that runs for longer than it,
		// once its body is in, is not cut.
		if out := mustCall(t, idClient(t, base, token), "up__slow", map[string]any{"seconds": 3, "steps": 1}); out != "slept 3s" {
			t.Fatalf("a call running past body_timeout: %q", out)
		}
	})

	t.Run("idle peers cannot shut agents out", func(t *testing.T) {
		t.Parallel()
		const max = 6
		base := startHTTP(t, writeConfig(t, upstreamConfig(t, fmt.Sprintf("http: {max_connections: %d, conn_idle: 10m}\n", max))), "--auth-token", token)
		held := make([]*rawConn, max)
		for i := range held {
			held[i] = dialRaw(t, base)
			held[i].healthz(t)
		}
		// The agent's own client, so no idle connection of another test's
		// pool is on this server.
		agent := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
		defer agent.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(initBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := agent.Do(req)
		if err != nil {
			t.Fatalf("initialize with %d idle connections held: %v", max, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("initialize with %d idle connections held: %d", max, resp.StatusCode)
		}
		// One idle connection was closed for the agent's: which one is the
		// longest idle by the server's clock, which marks a connection idle
		// after its response is out, so the order the client saw is no
		// proof of it under load.
		// Each is read at once: a read past the deadline times out even on
		// a connection already closed, so reading them one after another
		// would miss a victim behind one that stays open.
		deadline := time.Now().Add(5 * time.Second)
		var closed atomic.Int32
		var wg sync.WaitGroup
		for _, c := range held {
			_ = c.SetReadDeadline(deadline)
			wg.Go(func() {
				if _, err := io.ReadAll(c.r); err == nil {
					closed.Add(1)
				}
			})
		}
		wg.Wait()
		if closed := closed.Load(); closed != 1 {
			t.Errorf("%d of the %d idle connections were closed for the agent's, want 1", closed, max)
		}
	})
}

// TestServeHTTPRequestCap: a user holding http.max_requests_per_principal
// POSTs in flight (bodies sent slowly) gets 429 for one more, on a
// connection then closed, while another user is served; her slots come
// back when her requests end. A body with more values than
// http.max_request_values gets 413 before anything decodes it.
func TestServeHTTPRequestCap(t *testing.T) {
	t.Parallel()
	cfg, db := upstreamConfigDB(t, "http: {tokens: true, max_requests_per_principal: 3, max_request_values: 50}\n")
	cfg = writeConfig(t, cfg)
	alice, bob := createToken(t, db, "alice"), createToken(t, db, "bob")
	g := startHTTPProc(t, cfg)
	mcpURL := g.base + "/mcp"
	as := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	// Alice's three requests: headers complete, the body never.
	held := make([]*rawConn, 3)
	for i := range held {
		held[i] = dialRaw(t, g.base)
		if _, err := fmt.Fprintf(held[i], "POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", alice); err != nil {
			t.Fatal(err)
		}
	}
	// The server takes a slot once it has read a request's headers, which
	// the client cannot see: retry until the fourth is refused (bounded).
	var out string
	toolgatetest.Eventually(t, "alice's fourth request refused", func() bool {
		c := dialRaw(t, g.base)
		if _, err := fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", alice, len(initBody), initBody); err != nil {
			t.Fatal(err)
		}
		var closed bool
		out, closed = c.closedByServer(t)
		return closed && strings.HasPrefix(out, "HTTP/1.1 429 ")
	})
	if !strings.Contains(out, "too many requests in flight for alice (3)") || !strings.Contains(out, "Retry-After: 1") {
		t.Fatalf("alice's refusal: %q", out)
	}
	if resp, body := post(t, mcpURL, initBody, as(bob)); resp.StatusCode != http.StatusOK {
		t.Fatalf("bob's initialize while alice holds her requests: %d %s", resp.StatusCode, body)
	}
	if n := strings.Count(g.stderr.String(), "the principal's requests in flight are at the cap"); n != 1 {
		t.Errorf("alice's refusals logged %d times, want once:\n%s", n, g.stderr.String())
	}

	many := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"x"},"_meta":{` +
		strings.Repeat(`"k":1,`, 50) + `"last":1}}}`
	if resp, body := post(t, mcpURL, many, as(bob)); resp.StatusCode != http.StatusRequestEntityTooLarge ||
		!strings.Contains(body, "more than 50 object members and array elements") {
		t.Fatalf("a body of 55 values: %d %s", resp.StatusCode, body)
	}

	for _, c := range held {
		c.Close()
	}
	toolgatetest.Eventually(t, "alice served once her held requests end", func() bool {
		resp, _ := post(t, mcpURL, initBody, as(alice))
		return resp.StatusCode == http.StatusOK
	})
}

// TestServeUpstreamShare: with servers.NAME.max_requests and
// max_requests_per_principal, a user whose slow call fills her share of a
// shared upstream waits for it with her next call, while another user's
// calls are served at once.
func TestServeUpstreamShare(t *testing.T) {
	t.Parallel()
	cfg, db := upstreamConfigDB(t, "http: {tokens: true}\n")
	cfg = strings.Replace(cfg, "    command:", "    max_requests: 2\n    max_requests_per_principal: 1\n    command:", 1)
	cfg = writeConfig(t, cfg)
	alice, bob := createToken(t, db, "alice"), createToken(t, db, "bob")
	g := startHTTPProc(t, cfg)
	ac, bc := idClient(t, g.base, alice), idClient(t, g.base, bob)

	slow := make(chan error, 1)
	go func() {
		_, err := callTool(context.Background(), ac, "up__slow", map[string]any{"seconds": 5, "steps": 1}, "")
		slow <- err
	}()
	toolgatetest.Eventually(t, "alice's slow call at the upstream", func() bool {
		text, _ := idCall(t, bc, "up__stats")
		return strings.Contains(text, `"started":1`)
	})
	second := make(chan string, 1)
	go func() {
		res, err := callTool(context.Background(), ac, "up__echo", map[string]any{"text": "after"}, "")
		if err != nil {
			second <- err.Error()
			return
		}
		second <- resultText(res)
	}()
	for range 3 {
		if text, isErr := idCall(t, bc, "up__echo"); isErr || text != "hi" {
			t.Fatalf("bob's call while alice's share is full: %q (error %v)", text, isErr)
		}
	}
	select {
	case err := <-slow:
		t.Fatalf("alice's slow call ended (%v) before bob's were served: bob waited for her", err)
	case got := <-second:
		t.Fatalf("alice's second call ran (%q) while her first held her share", got)
	default:
	}
	if err := <-slow; err != nil {
		t.Fatalf("alice's slow call: %v", err)
	}
	if got := <-second; got != "after" {
		t.Fatalf("alice's second call: %q", got)
	}
}
