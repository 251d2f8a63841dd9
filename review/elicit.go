package review

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/lookalike"
	"github.com/toolgate/toolgate/mcp/agent"
)

// elicit asks the agent's user and stores the answer as a verdict with
// channel "elicitation". It returns an error when the question could not be
// asked or answered; an answer that loses the race is not an error.
func (s *Service) elicit(ctx context.Context, c toolgate.Call, d toolgate.Decision, expires time.Time) error {
	res, err := agent.Elicit(ctx, mcpgo.ElicitationRequest{
		Request: mcpgo.Request{Method: string(mcpgo.MethodElicitationCreate)},
		Params: mcpgo.ElicitationParams{
			Message:         s.elicitMessage(c, d, expires),
			RequestedSchema: elicitSchema,
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // another channel answered, or the call went away
		}
		return fmt.Errorf("elicitation request: %w", err)
	}
	// Whoever answers in the agent's client is the agent's own user: the
	// call's principal user, or without one (stdio) the OS account that
	// runs toolgate and the agent (Options.Account).
	v := toolgate.Verdict{Channel: toolgate.ChannelElicitation, Reviewer: elicitReviewer(c), ReviewerUser: cmp.Or(c.Principal.User, s.o.Account)}
	switch res.Action {
	case mcpgo.ElicitationResponseActionAccept:
		content, _ := res.Content.(map[string]any)
		v.Approved, _ = content["approve"].(bool)
		if reason, ok := content["reason"].(string); ok {
			v.Reason = strings.TrimSpace(reason)
		}
	case mcpgo.ElicitationResponseActionDecline:
		v.Reason = "declined by the user"
	default:
		// Dismissing the question is not consent.
		v.Reason = "the user dismissed the review question"
	}
	if _, err := s.submit(context.WithoutCancel(ctx), c.ID, v); err != nil {
		return fmt.Errorf("storing elicitation verdict: %w", err)
	}
	return nil
}

var elicitSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"approve": map[string]any{
			"type":        "boolean",
			"title":       "Approve this tool call?",
			"description": "Tick to let the call run; leave unticked to deny it.",
			"default":     false,
		},
		"reason": map[string]any{
			"type":        "string",
			"title":       "Reason (optional)",
			"description": "Sent to the agent when you deny.",
		},
	},
	"required": []string{"approve"},
}

// elicitMessage is the question put to the agent's user, with the
// look-alike characters in it (lookalike.InCall) named before anything else.
// Each part is redacted on its own, before it is put in the question, so
// that no mask can span two parts. What the agent, an upstream or a rule
// wrote goes in Visible, so it adds no line of its own, and in markdown
// code (inline, or the arguments' fenced block), so that a client that
// renders markdown draws nothing of it.
func (s *Service) elicitMessage(c toolgate.Call, d toolgate.Decision, expires time.Time) string {
	r := s.o.Redactor
	shown := func(s string) string { return inlineCode(toolgate.Visible(r.String(s))) }
	var b strings.Builder
	fmt.Fprintf(&b, "toolgate: the agent wants to %s.", shown(c.Wants()))
	if w := lookalike.InCall(c, d, r); w != "" {
		b.WriteString("\nWARNING: look-alike characters: " + inlineCode(w))
	}
	if p := c.Principal.String(); p != "" {
		fmt.Fprintf(&b, "\nRequested by %s.", shown(p))
	}
	if d.Rule != "" {
		fmt.Fprintf(&b, "\nRule %s asks for a human review", shown(d.Rule))
		if d.Reason != "" {
			b.WriteString(": " + shown(d.Reason))
		}
		b.WriteString(".")
	}
	fmt.Fprintf(&b, "\nIf approved, it runs in %s.", sandboxText(d.Sandbox))
	args, cut := argsPreview(r.Value(c.Args))
	fmt.Fprintf(&b, "\nArguments:\n%s", fenced(args))
	if len(c.Meta) > 0 {
		meta, metaCut := argsPreview(r.Value(c.Meta))
		fmt.Fprintf(&b, "\n_meta (sent to the tool's server with the arguments):\n%s", fenced(meta))
		cut = cut || metaCut
	}
	if cut {
		fmt.Fprintf(&b, "\nSome values above are cut, and approving runs them whole: deny unless you have read them all (`toolgate audit show %s` on toolgate's host shows the call).", c.ID)
	}
	fmt.Fprintf(&b, "\nDecision %s; denied automatically at %s.", c.ID, expires.Format(time.Kitchen))
	return b.String()
}

// inlineCode is s, one line, as a markdown code span: delimited by more
// backticks than any run of them in s, so nothing in s ends it, and
// padded with a space where s starts or ends with one.
func inlineCode(s string) string {
	n, run := 1, 0
	for i := range len(s) {
		if s[i] != '`' {
			run = 0
			continue
		}
		run++
		n = max(n, run+1)
	}
	d := strings.Repeat("`", n)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return d + s + d
}

// fenced puts an argsPreview in a markdown code block, so that a client
// that renders the question as markdown shows the agent's arguments as
// they are: no link, image (which a client would fetch), heading or
// emphasis. No line of a preview can close the block: each is JSON's (a
// brace, or an indented key and quoted value). A client showing plain
// text shows the fence lines as they are.
func fenced(preview string) string {
	return "```\n" + preview + "\n```"
}

// elicitReviewer names whoever answers an elicitation about call c by
// what toolgate knows of the agent's user: "elicitation:" and c's
// principal user, or, without a credential (stdio), "elicitation:session:"
// and c's session, which toolgate assigned. Never by the client's name:
// the agent declares that itself in initialize, and one named "root via
// cli, checked by security team" would be recorded as that approver. The
// name stays where it is labelled as the client's (the call's client in
// the audit log).
func elicitReviewer(c toolgate.Call) string {
	switch {
	case c.Principal.User != "":
		return "elicitation:" + c.Principal.User
	case c.SessionID != "":
		return "elicitation:session:" + c.SessionID
	}
	return "elicitation:unknown-user"
}
