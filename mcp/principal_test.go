package mcp

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// users authenticates a fixed set of credentials.
type users map[string]toolgate.Principal

func (u users) Authenticate(_ context.Context, cred string) (toolgate.Principal, error) {
	if p, ok := u[cred]; ok {
		return p, nil
	}
	return toolgate.Principal{}, errors.New("unknown")
}

func rawPost(t *testing.T, url, token, session, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestPrincipalAndSessionBinding(t *testing.T) {
	alice := toolgate.Principal{User: "alice", Groups: []string{"oncall"}, Auth: toolgate.AuthToken}
	bob := toolgate.Principal{User: "bob", Auth: toolgate.AuthOIDC}
	f := newFixture(t, HTTPOptions{Auth: users{"tok-a": alice, "tok-b": bob, "tok-a2": alice}})

	ca, _ := f.client(t, map[string]string{"Authorization": "Bearer tok-a"})
	call(t, ca, "up__echo", map[string]any{"text": "x"}, nil)
	if p := f.gate.last().Principal; p.User != "alice" || p.Auth != toolgate.AuthToken || len(p.Groups) != 1 {
		t.Fatalf("alice's call carries %+v", p)
	}
	cb, _ := f.client(t, map[string]string{"Authorization": "Bearer tok-b"})
	call(t, cb, "up__echo", map[string]any{"text": "x"}, nil)
	if p := f.gate.last().Principal; p.User != "bob" || p.Auth != toolgate.AuthOIDC {
		t.Fatalf("bob's call carries %+v", p)
	}

	const init = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`
	const list = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	resp := rawPost(t, f.url+PathMCP, "tok-a", "", init)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d %q", resp.StatusCode, sid)
	}
	for _, tc := range []struct {
		name, token, session string
		want                 int
	}{
		{"no credential", "", sid, http.StatusUnauthorized},
		{"unknown credential", "tok-x", sid, http.StatusUnauthorized},
		{"another principal", "tok-b", sid, http.StatusForbidden},
		{"the same principal, another token", "tok-a2", sid, http.StatusOK},
		{"the owner", "tok-a", sid, http.StatusOK},
		{"a session never handed out", "tok-a", "mcp-session-nope", http.StatusNotFound},
	} {
		if got := rawPost(t, f.url+PathMCP, tc.token, tc.session, list).StatusCode; got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// Bob cannot end alice's session either; once she ends it, it is gone.
	del := func(token string) int {
		req, _ := http.NewRequest(http.MethodDelete, f.url+PathMCP, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := del("tok-b"); got != http.StatusForbidden {
		t.Errorf("bob's DELETE of alice's session: %d", got)
	}
	if got := del("tok-a"); got != http.StatusOK {
		t.Errorf("alice's DELETE: %d", got)
	}
	if got := rawPost(t, f.url+PathMCP, "tok-a", sid, list).StatusCode; got != http.StatusNotFound {
		t.Errorf("after DELETE: %d, want 404", got)
	}
}

func TestSharedTokenPrincipal(t *testing.T) {
	f := newFixture(t, HTTPOptions{AuthToken: "s3cret"})
	c, _ := f.client(t, map[string]string{"Authorization": "Bearer s3cret"})
	call(t, c, "up__echo", map[string]any{"text": "x"}, nil)
	if p := f.gate.last().Principal; p.User != SharedUser || p.Auth != toolgate.AuthShared || p.Personal() {
		t.Fatalf("shared-token call carries %+v", p)
	}
	if _, err := (SharedToken{Token: "s3cret", User: "me"}).Authenticate(context.Background(), "s3cret "); err == nil {
		t.Error("a credential with a trailing space was accepted")
	}
}

// TestSurfaceCallsCarryThePrincipal: a resource read, prompt get or
// completion is a gated call like a tool call, and the rules and the audit
// log see who made it.
func TestSurfaceCallsCarryThePrincipal(t *testing.T) {
	alice := toolgate.Principal{User: "alice", Groups: []string{"oncall"}, Auth: toolgate.AuthToken}
	f, _ := newSurfaceFixtureHTTP(t, nil, HTTPOptions{Auth: users{"tok-a": alice}})
	toolgatetest.Eventually(t, "the upstream's resources", func() bool { return len(f.cat.Surface().Resources) == 1 })
	f.srv.Sync()
	c, _ := f.client(t, map[string]string{"Authorization": "Bearer tok-a"})
	ctx := context.Background()
	rr := mcpgo.ReadResourceRequest{}
	rr.Params.URI = "up://a"
	if _, err := c.ReadResource(ctx, rr); err != nil {
		t.Fatal(err)
	}
	if got := f.gate.last(); got.Kind != toolgate.KindResource || got.Principal.User != "alice" || got.Principal.Auth != toolgate.AuthToken || len(got.Principal.Groups) != 1 {
		t.Errorf("the read's call = %+v, want alice's", got)
	}
	gp := mcpgo.GetPromptRequest{}
	gp.Params.Name, gp.Params.Arguments = "up__hello", map[string]string{"who": "bo"}
	if _, err := c.GetPrompt(ctx, gp); err != nil {
		t.Fatal(err)
	}
	if got := f.gate.last(); got.Kind != toolgate.KindPrompt || got.Principal.User != "alice" {
		t.Errorf("the prompt's call = %+v, want alice's", got)
	}
	cr := mcpgo.CompleteRequest{}
	cr.Params.Ref = mcpgo.PromptReference{Type: "ref/prompt", Name: "up__hello"}
	cr.Params.Argument = mcpgo.CompleteArgument{Name: "who", Value: "b"}
	if _, err := c.Complete(ctx, cr); err != nil {
		t.Fatal(err)
	}
	if got := f.gate.last(); got.Kind != toolgate.KindCompletion || got.Principal.User != "alice" {
		t.Errorf("the completion's call = %+v, want alice's", got)
	}
}
