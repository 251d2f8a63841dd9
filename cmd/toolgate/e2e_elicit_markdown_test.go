package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeElicitationQuestionIsCode: through the binary, an agent whose
// call is reviewed by its own user cannot get markdown into the question
// outside code, even with arguments built so that a redaction mask would
// span the question's lines (round 15's attack): an image there would be
// fetched by a client that renders markdown, from outside the sandbox.
func TestServeElicitationQuestionIsCode(t *testing.T) {
	dir := t.TempDir()
	ws, home := filepath.Join(dir, "ws"), filepath.Join(dir, "home")
	for _, d := range []string{ws, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := writeConfig(t, fmt.Sprintf("workspace: {enabled: true, root: %q}\naudit: {path: %q}\nreview: {timeout: 60s, channels: [elicitation]}\n",
		ws, filepath.Join(dir, "audit.db")))
	stderr := &toolgatetest.SyncBuffer{}
	user := decliningUser{asked: make(chan string, 1)}
	c, _ := connect(t, transport.NewStdioWithOptions(toolgateBin, []string{"HOME=" + home, "XDG_STATE_HOME=", "XDG_CONFIG_HOME="},
		[]string{"serve", "--config", cfg}, transport.WithCommandStderrWriter(stderr)), client.WithElicitationHandler(user))
	defer func() {
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	}()
	// The default pack reviews the unfamiliar command, and its reason
	// quotes the command, outside the arguments' block.
	img := "![pixel](https://evil.example/p.png?x=1) [Approve here](https://evil.example/ok)"
	res, err := callTool(t.Context(), c, "workspace__run_command", map[string]any{"command": `frobnicate 'password="' "` + img + `"`}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError {
		t.Fatalf("a declined review ran the call: %s", resultText(res))
	}
	q := <-user.asked
	if md := toolgatetest.OutsideMarkdownCode(q); strings.Contains(md, "](") || strings.Contains(md, "![") {
		t.Errorf("markdown outside code:\n%s\nin the question:\n%s", md, q)
	}
	for _, line := range []string{"\nIf approved, it runs in ", "\nArguments:\n```\n"} {
		if !strings.Contains(q, line) {
			t.Errorf("no %q in the question:\n%s", line, q)
		}
	}
}

// decliningUser is an agent's user who denies every review question,
// and tells the test what it was asked.
type decliningUser struct{ asked chan string }

func (u decliningUser) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	u.asked <- req.Params.Message
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"approve": false}}}, nil
}
