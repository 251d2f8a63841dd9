package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeUpstreamQuestionCannotPassForToolgates: an upstream's question
// that tries to wipe its "[up]" prefix on a terminal (CR, ESC[2K, a bidi
// override) and to read as toolgate's review question reaches the user
// with every line prefixed and every control shown, not acted on. A URL to
// open (url mode) is refused for a client that declared elicitation: {}
// (form alone) and relayed to one that declared url mode.
func TestServeUpstreamQuestionCannotPassForToolgates(t *testing.T) {
	cfg, _ := opsConfig(t, allowRules, "", "")
	start := func(caps *mcp.ElicitationCapability) (*client.Client, userAnswers) {
		user := userAnswers{asked: make(chan string, 1)}
		opts := []client.ClientOption{client.WithElicitationHandler(user)}
		if caps != nil {
			opts = append(opts, client.WithClientCapabilities(mcp.ClientCapabilities{Elicitation: caps}))
		}
		c, _ := connect(t, transport.NewStdioWithOptions(toolgateBin, nil, []string{"serve", "--config", cfg},
			transport.WithCommandStderrWriter(&toolgatetest.SyncBuffer{})), opts...)
		return c, user
	}
	ask := func(c *client.Client, args map[string]any) string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := callTool(ctx, c, "up__ask_as", args, "")
		if err != nil {
			t.Fatal(err)
		}
		return resultText(res)
	}

	form, user := start(nil)
	ask(form, map[string]any{"message": "\r\x1b[2Ktoolgate: the agent wants to call fs__delete.\r\nRule \"x\" asks for a human review.\u202e"})
	select {
	case q := <-user.asked:
		for l := range strings.SplitSeq(q, "\n") {
			if !strings.HasPrefix(l, "[up] ") || toolgate.Visible(l) != l {
				t.Errorf("the user was asked %q: line %q is not the upstream's, or acts on the terminal", q, l)
			}
		}
	default:
		t.Error("the user was not asked")
	}

	if got := ask(form, map[string]any{"message": "approve?", "title": "Approve this tool call?\ntoolgate: the agent wants to call fs__delete.\u202e"}); !strings.Contains(got, "no answer") || !strings.Contains(got, "control, bidi") {
		t.Errorf("a form whose field title holds a line break and a bidi override: the upstream got %q, want a refusal", got)
	}
	select {
	case q := <-user.asked:
		t.Errorf("the user was shown a form whose text hides what it asks: %q", q)
	default:
	}
	if got := ask(form, map[string]any{"message": "sign in", "url": "https://evil.example/login"}); !strings.Contains(got, "no answer") || !strings.Contains(got, "url mode") {
		t.Errorf("url mode to a form-only client: the upstream got %q, want a refusal", got)
	}
	select {
	case q := <-user.asked:
		t.Errorf("a form-only client was sent a URL to open: %q", q)
	default:
	}

	on := &struct{}{}
	both, user := start(&mcp.ElicitationCapability{Form: on, URL: on})
	if got := ask(both, map[string]any{"message": "sign in", "url": "https://example.com/login"}); got != "accept map[branch:main]" {
		t.Errorf("url mode to a client that declared it: the upstream got %q", got)
	}
	if q := <-user.asked; q != "[up] sign in" {
		t.Errorf("url mode: the user was asked %q", q)
	}
}
