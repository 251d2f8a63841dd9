package agent

import (
	"context"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// session is an agent's session whose client declared caps.
type session struct{ caps mcp.ClientCapabilities }

func (s *session) SessionID() string                                   { return "s" }
func (s *session) NotificationChannel() chan<- mcp.JSONRPCNotification { return nil }
func (s *session) Initialize()                                         {}
func (s *session) Initialized() bool                                   { return true }
func (s *session) GetClientInfo() mcp.Implementation                   { return mcp.Implementation{} }
func (s *session) SetClientInfo(mcp.Implementation)                    {}
func (s *session) GetClientCapabilities() mcp.ClientCapabilities       { return s.caps }
func (s *session) SetClientCapabilities(mcp.ClientCapabilities)        {}
func (s *session) RequestElicitation(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return nil, nil
}

// TestCanElicitMode: a client is asked only in the modes it declared; an
// empty elicitation object declares form alone (MCP 2025-11-25).
func TestCanElicitMode(t *testing.T) {
	on := &struct{}{}
	cases := []struct {
		name      string
		cap       *mcp.ElicitationCapability
		form, url bool
	}{
		{name: "none"},
		{name: "empty object", cap: &mcp.ElicitationCapability{}, form: true},
		{name: "form", cap: &mcp.ElicitationCapability{Form: on}, form: true},
		{name: "url", cap: &mcp.ElicitationCapability{URL: on}, url: true},
		{name: "both", cap: &mcp.ElicitationCapability{Form: on, URL: on}, form: true, url: true},
	}
	srv := server.NewMCPServer("t", "1")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := srv.WithContext(context.Background(), &session{caps: mcp.ClientCapabilities{Elicitation: tc.cap}})
			for mode, want := range map[string]bool{"": tc.form, mcp.ElicitationModeForm: tc.form, mcp.ElicitationModeURL: tc.url, "other": false} {
				if err := CanElicitMode(ctx, mode); (err == nil) != want {
					t.Errorf("CanElicitMode(%q) = %v, want allowed %v", mode, err, want)
				}
			}
			if err := CanElicit(ctx); (err == nil) != tc.form {
				t.Errorf("CanElicit = %v, want allowed %v", err, tc.form)
			}
		})
	}
}
