package gate

import (
	"fmt"

	"github.com/toolgate/toolgate"
)

// Confiner says which sandbox profile a call runs in, given the profile
// its decision names (c.Sandbox), or why its upstream cannot run it there.
// A Forwarder that is one (*tools.Catalog is) has every call checked
// before it is recorded and reviewed: a rule's auto_approve_at is allowed
// only with a sandbox, so a call the profile cannot hold must be refused,
// not approved, and reviewers must not be told it runs confined.
type Confiner interface {
	Confine(c toolgate.Call) (profile string, err error)
}

// RuleSandbox is the rule name recorded for a call refused because its
// upstream cannot run it in the sandbox profile its decision names.
const RuleSandbox = "toolgate:sandbox"

// confine settles the profile c runs in, turning d into a denial by
// RuleSandbox when it cannot be held. Without a Confiner, a tool call is
// left to the Forwarder's own check; any other call reaches its upstream
// by a path that carries no profile, so naming one refuses it.
func (g *Gate) confine(c *toolgate.Call, d *toolgate.Decision) {
	if d.Action == toolgate.Deny {
		return
	}
	cf, ok := g.o.Forwarder.(Confiner)
	var err error
	switch {
	case ok:
		var p string
		if p, err = cf.Confine(*c); err == nil {
			c.Sandbox, d.Sandbox = p, p
			return
		}
	case c.KindName() == toolgate.KindTool || c.Sandbox == "":
		return
	default:
		err = fmt.Errorf("the decision names sandbox profile %q, which toolgate cannot apply to this %s", c.Sandbox, c.KindName())
	}
	by := "the matching rule"
	if d.Rule != "" {
		by = fmt.Sprintf("rule %q", d.Rule)
	}
	c.Sandbox = ""
	d.Action, d.Rule, d.Sandbox = toolgate.Deny, RuleSandbox, ""
	d.AutoApproved, d.ConfidenceEffect = false, ""
	d.Reason = fmt.Sprintf("%v; %s names a sandbox profile, so the call runs only on an upstream that runs in it", err, by)
}
