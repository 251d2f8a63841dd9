package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeHTTPSessionIdle: a session whose client goes away without
// DELETE is ended once idle past http.session_idle (toolgate logs it), a
// request naming it then gets 404, and a new initialize gets a new session.
func TestServeHTTPSessionIdle(t *testing.T) {
	t.Parallel()
	g := startHTTPProc(t, writeConfig(t, upstreamConfig(t, "http: {session_idle: 1s}\n")))
	mcpURL := g.base + "/mcp"
	resp, body := post(t, mcpURL, initBody, nil)
	id := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("initialize: status %d, session %q: %s", resp.StatusCode, id, body)
	}
	// Any request of the session would keep it alive, so what is waited on
	// is toolgate's log.
	toolgatetest.EventuallyWithin(t, "the idle session to be ended", 30*time.Second, func() bool {
		for _, line := range strings.Split(g.stderr.String(), "\n") {
			if strings.Contains(line, `msg="http session expired"`) && strings.Contains(line, "session="+id) {
				return true
			}
		}
		return false
	})
	resp, body = post(t, mcpURL, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, map[string]string{"Mcp-Session-Id": id})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("tools/list in the expired session: status %d, want 404 (%s)", resp.StatusCode, body)
	}
	resp, body = post(t, mcpURL, initBody, nil)
	if fresh := resp.Header.Get("Mcp-Session-Id"); resp.StatusCode != http.StatusOK || fresh == "" || fresh == id {
		t.Errorf("re-initialize: status %d, session %q (expired one %q): %s", resp.StatusCode, fresh, id, body)
	}
}
