package tools

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
)

// attributed is text an upstream wants shown to the agent's user (an
// elicitation's message), each line made visible (toolgate.Visible) and
// prefixed with "[server] ". No line the upstream writes can then erase or
// reorder the prefix (a CR, an ESC sequence, a bidi override), start
// without it, or pass for toolgate's own review question, whose first line
// starts "toolgate:".
func (u *upstream) attributed(text string) string {
	prefix := "[" + toolgate.Visible(u.spec.Name) + "] "
	lines := strings.Split(toolgate.VisibleLines(strings.ReplaceAll(text, "\r\n", "\n")), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// labelSampling names the upstream at the head of a sampling request's
// system prompt, the one part of the request both the agent's client (when
// it shows the request to its user) and the model read as the request's
// framing: without it the request reaches them as if the agent or the
// user had written it. mcp-go's CreateMessageParams has no _meta to carry
// it otherwise.
func (u *upstream) labelSampling(p *mcp.CreateMessageParams) {
	label := fmt.Sprintf("toolgate: this request comes from the MCP server %q behind toolgate, not from the user or the agent.", u.spec.Name)
	if p.SystemPrompt != "" {
		label += "\n\n" + p.SystemPrompt
	}
	p.SystemPrompt = label
}

// plainForm checks that every string of an upstream's form (its fields'
// titles, descriptions, choices) shows as written: the client shows them
// as the upstream wrote them, not attributed, so one with a line break, a
// control or bidi character or an invisible one (toolgate.Visible would
// escape it) could hide what the form asks or pass for toolgate's own
// review question. Such a form is not relayed.
func plainForm(v any, depth int) error {
	if depth > 32 {
		return errors.New("the form's schema nests too deep to check")
	}
	switch x := v.(type) {
	case string:
		if toolgate.Visible(x) != x {
			return fmt.Errorf("the form's text %q holds line breaks, control, bidi or invisible characters, which could hide what it asks: not shown to the user", toolgate.Visible(x))
		}
	case map[string]any:
		for k, e := range x {
			if err := plainForm(k, depth+1); err != nil {
				return err
			}
			if err := plainForm(e, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := plainForm(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
