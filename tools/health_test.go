package tools

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestHTTPUpstreamHealth: a remote upstream that stops answering is
// declared down by the pings, with no call failing first, and comes back
// when it answers again.
func TestHTTPUpstreamHealth(t *testing.T) {
	s, _ := newInProcess(t)
	var broken atomic.Bool
	mcpHandler := server.NewStreamableHTTPServer(s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		mcpHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	c := startCatalog(t, Options{
		Upstreams:    []Upstream{{Name: "r", URL: srv.URL + "/mcp"}},
		PingInterval: 50 * time.Millisecond,
		MinBackoff:   50 * time.Millisecond,
		MaxBackoff:   200 * time.Millisecond,
	})
	status := func() UpstreamStatus { return c.Status()[0] }
	toolgatetest.Eventually(t, "the upstream up", func() bool { return status().Up })
	if res, err := c.Forward(context.Background(), call(c, "r__echo", map[string]any{"text": "hi"})); err != nil || text(res) != "hi" {
		t.Fatalf("call while up: %v, %v", text(res), err)
	}

	broken.Store(true)
	toolgatetest.Eventually(t, "the pings to declare it down", func() bool { return !status().Up })
	if st := status(); !strings.Contains(st.LastError, "health check") {
		t.Errorf("last error %q does not name the health check", st.LastError)
	}
	if _, err := c.Forward(context.Background(), call(c, "r__echo", map[string]any{"text": "hi"})); err == nil {
		t.Error("a call to a down upstream succeeded")
	}

	broken.Store(false)
	toolgatetest.Eventually(t, "the upstream back up", func() bool { return status().Up })
	if res, err := c.Forward(context.Background(), call(c, "r__echo", map[string]any{"text": "back"})); err != nil || text(res) != "back" {
		t.Fatalf("call after recovery: %v, %v", text(res), err)
	}
}

// TestPingsSkippedWhileAnswering: an upstream answering calls is not
// pinged on top of them; a negative PingInterval disables the pings.
func TestPingsSkippedWhileAnswering(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		calls    bool
		maxPings int64
	}{
		{"idle", 20 * time.Millisecond, false, 1000},
		{"busy", 100 * time.Millisecond, true, 2},
		{"disabled", -1, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newInProcess(t)
			var pings atomic.Int64
			mcpHandler := server.NewStreamableHTTPServer(s)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && r.ContentLength > 0 {
					var b [256]byte
					n, _ := r.Body.Read(b[:])
					if strings.Contains(string(b[:n]), `"method":"ping"`) {
						pings.Add(1)
					}
					r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b[:n]), r.Body)) // give back what was read
				}
				mcpHandler.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "r", URL: srv.URL + "/mcp"}}, PingInterval: tc.interval})
			toolgatetest.Eventually(t, "the upstream up", func() bool { return c.Status()[0].Up })
			deadline := time.Now().Add(500 * time.Millisecond)
			for time.Now().Before(deadline) {
				if tc.calls {
					if _, err := c.Forward(context.Background(), call(c, "r__echo", map[string]any{"text": "x"})); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
			got := pings.Load()
			switch {
			case got > tc.maxPings:
				t.Errorf("%d pings in 500ms, want at most %d", got, tc.maxPings)
			case tc.name == "idle" && got < 5:
				t.Errorf("%d pings in 500ms at a 20ms interval, want at least 5", got)
			}
		})
	}
}

// TestHTTPUpstreamReusesConnections: calls in flight to a remote upstream
// reuse its connections instead of dialling new ones (net/http keeps only
// two idle connections a host unless told otherwise).
func TestHTTPUpstreamReusesConnections(t *testing.T) {
	s, _ := newInProcess(t)
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(server.NewStreamableHTTPServer(s))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "r", URL: srv.URL + "/mcp"}}})
	toolgatetest.Eventually(t, "the upstream up", func() bool { return c.Status()[0].Up })

	const inFlight, rounds = 16, 20
	for range rounds {
		var wg sync.WaitGroup
		for range inFlight {
			wg.Go(func() {
				if _, err := c.Forward(context.Background(), call(c, "r__echo", map[string]any{"text": "x"})); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	// The listening stream, the handshake and one connection per call in
	// flight, give or take; without reuse it is most of the 320 calls.
	if n := conns.Load(); n > 2*inFlight+4 {
		t.Errorf("%d connections opened for %d calls, %d at a time", n, inFlight*rounds, inFlight)
	}
}
