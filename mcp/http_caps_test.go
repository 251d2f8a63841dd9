package mcp

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// capsServer is toolgate's HTTP handler with small session caps, three
// users and a settable clock.
func capsServer(t *testing.T, clock *fakeClock, log *toolgatetest.SyncBuffer) (*HTTPHandler, string) {
	t.Helper()
	srv, err := New(Options{Version: "t", Gate: refuseGate{}, Catalog: noTools{}, Surface: noSurface{},
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.HTTPHandler(HTTPOptions{
		Auth: users{
			"tok-a": {User: "alice", Auth: toolgate.AuthToken},
			"tok-b": {User: "bob", Auth: toolgate.AuthToken},
			"tok-c": {User: "carol", Auth: toolgate.AuthToken},
		},
		MaxSessionsPerPrincipal: 3, MaxSessions: 5, SessionIdle: time.Minute, Now: clock.Now,
	})
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		_ = h.Close(context.Background())
		ts.Close()
	})
	return h, ts.URL + PathMCP
}

const capsInit = `{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`

// capsDo sends one request and returns its status, the session id it hands
// out and its body.
func capsDo(t *testing.T, method, url, token, session, contentType, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	if session != "" {
		req.Header.Set(headerSessionID, session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get(headerSessionID), string(b)
}

// TestSessionCaps: a principal at its session cap gets 429 with a JSON-RPC
// error saying what to do, whatever the initialize carries, while another
// principal still gets in; the gateway's cap gives 503; ending a session
// (DELETE, idle expiry) frees its slot, and so does an initialize that
// opened none.
func TestSessionCaps(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log := &toolgatetest.SyncBuffer{}
	h, url := capsServer(t, clock, log)
	open := func(token string) (int, string, string) {
		return capsDo(t, http.MethodPost, url, token, "", "application/json", capsInit)
	}
	var alice []string
	for range 3 {
		status, id, body := open("tok-a")
		if status != http.StatusOK || id == "" {
			t.Fatalf("alice's initialize: %d %q %s", status, id, body)
		}
		alice = append(alice, id)
	}

	status, id, body := open("tok-a")
	var refusal struct {
		ID    int `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &refusal); err != nil {
		t.Fatalf("refusal body %q: %v", body, err)
	}
	if status != http.StatusTooManyRequests || id != "" || refusal.ID != 7 || refusal.Error.Code != codeTooManySessions ||
		!strings.Contains(refusal.Error.Message, "alice") || !strings.Contains(refusal.Error.Message, "DELETE") {
		t.Fatalf("alice's 4th initialize: %d, session %q, %s", status, id, body)
	}
	// An initialize naming one of her sessions opens a new one all the same
	// (mcp-go ignores the id), so it counts.
	if status, id, body := capsDo(t, http.MethodPost, url, "tok-a", alice[0], "application/json", capsInit); status != http.StatusTooManyRequests {
		t.Fatalf("alice's initialize naming her session: %d, session %q, %s", status, id, body)
	}

	// Refusals are logged once until the principal is below its cap.
	if n := strings.Count(log.String(), "initialize refused: the principal's session cap is reached"); n != 1 {
		t.Errorf("2 refusals of alice logged %d times, want once:\n%s", n, log.String())
	}
	for range 2 {
		if status, id, body := open("tok-b"); status != http.StatusOK || id == "" {
			t.Fatalf("bob's initialize while alice is at her cap: %d %q %s", status, id, body)
		}
	}
	if status, _, body := open("tok-c"); status != http.StatusServiceUnavailable || !strings.Contains(body, "this gateway") {
		t.Fatalf("carol's initialize with 5 of 5 open: %d %s", status, body)
	}

	if status, _, _ := capsDo(t, http.MethodDelete, url, "tok-a", alice[0], "application/json", ""); status != http.StatusOK {
		t.Fatalf("alice's DELETE: %d", status)
	}
	// Initializes that open no session (mcp-go refuses the content type)
	// give their slot back.
	for range 4 {
		if status, _, _ := capsDo(t, http.MethodPost, url, "tok-a", "", "text/plain", capsInit); status != http.StatusBadRequest {
			t.Fatalf("initialize as text/plain: %d", status)
		}
	}
	if status, id, body := open("tok-a"); status != http.StatusOK || id == "" {
		t.Fatalf("alice's initialize after her DELETE: %d %q %s", status, id, body)
	}

	clock.Add(2 * time.Minute)
	if n := h.sweep(); n != 5 {
		t.Fatalf("sweep ended %d sessions, want 5", n)
	}
	for _, tok := range []string{"tok-a", "tok-a", "tok-a", "tok-c"} {
		if status, id, body := open(tok); status != http.StatusOK || id == "" {
			t.Fatalf("initialize (%s) after every session idled out: %d %q %s", tok, status, id, body)
		}
	}
}

// TestGetWithoutSession: a GET without Mcp-Session-Id gets 400 and opens
// no session (mcp-go would open one of its own, outside the caps and bound
// to nobody, and hold it for the stream).
func TestGetWithoutSession(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h, url := capsServer(t, clock, &toolgatetest.SyncBuffer{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer tok-a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET without a session: %d, want 400", resp.StatusCode)
	}
	if n := h.sessions.len(); n != 0 {
		t.Errorf("%d sessions live after a GET without a session, want 0", n)
	}
}

// len is the number of live sessions.
func (t *sessionTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}

// TestOneStreamPerSession: a session's second GET stream gets 409 while its
// first is open (each holds a connection for as long as it lasts); another
// session's is served, and once the first closes the session may open one
// again.
func TestOneStreamPerSession(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	_, url := capsServer(t, clock, &toolgatetest.SyncBuffer{})
	session := func() string {
		status, id, body := capsDo(t, http.MethodPost, url, "tok-a", "", "application/json", capsInit)
		if status != http.StatusOK || id == "" {
			t.Fatalf("initialize: %d %q %s", status, id, body)
		}
		return id
	}
	stream := func(ctx context.Context, id string) *http.Response {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer tok-a")
		req.Header.Set(headerSessionID, id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	one, two := session(), session()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := stream(ctx, one)
	if first.StatusCode != http.StatusOK {
		t.Fatalf("the session's GET stream: %d", first.StatusCode)
	}
	// Bounded: were it served, its body would be a stream without end.
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	second := stream(sctx, one)
	body, _ := io.ReadAll(second.Body)
	second.Body.Close()
	if second.StatusCode != http.StatusConflict || !strings.Contains(string(body), "one per session") {
		t.Fatalf("a second GET stream of the session: %d %s", second.StatusCode, body)
	}
	other := stream(ctx, two)
	if other.StatusCode != http.StatusOK {
		t.Fatalf("another session's GET stream: %d", other.StatusCode)
	}
	cancel()
	first.Body.Close()
	other.Body.Close()
	toolgatetest.Eventually(t, "a new stream once the first is closed", func() bool {
		sctx, scancel := context.WithCancel(context.Background())
		defer scancel()
		resp := stream(sctx, one)
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
