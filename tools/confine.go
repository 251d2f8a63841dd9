package tools

import (
	"fmt"

	"github.com/toolgate/toolgate"
)

// Confine returns the sandbox profile call runs in on its upstream, given
// the profile its decision names (call.Sandbox; "" names none), or an
// error matching ErrSandboxMismatch when the upstream cannot run it there.
// It is the one check every kind of call passes: the gate asks it before
// review and recording (gate.Confiner), and a forwarded tool call is
// checked again on its way out. It implements gate.Confiner.
func (c *Catalog) Confine(call toolgate.Call) (string, error) {
	u := c.byNm[call.Server]
	if u == nil {
		return "", fmt.Errorf("%w: no upstream named %q", ErrUnknownTool, call.Server)
	}
	return u.confine(call)
}

// confine is Confine for u. A stdio process cannot change its sandbox,
// so a call runs in the server's profile or not at all. The in-process
// server confines each tool call in the profile sent in its _meta; its
// resources, prompts and completions carry no profile, so they run
// unconfined and a decision naming one refuses them.
func (u *upstream) confine(call toolgate.Call) (string, error) {
	switch {
	case u.spec.Server != nil && call.KindName() == toolgate.KindTool:
		return call.Sandbox, nil
	case u.spec.Server != nil && call.Sandbox == "":
		return "", nil
	case u.spec.Server != nil:
		return "", fmt.Errorf("upstream %q cannot run the %s %s in a sandbox (only its tool calls are confined), and the decision names profile %q: %w",
			u.spec.Name, call.KindName(), call.Tool, call.Sandbox, ErrSandboxMismatch)
	case call.Sandbox == "" || call.Sandbox == u.spec.Sandbox:
		return u.spec.Sandbox, nil
	}
	what := call.Tool
	if k := call.KindName(); k != toolgate.KindTool {
		what = "the " + k + " " + call.Tool
	}
	return "", fmt.Errorf("upstream %q runs in sandbox profile %q and cannot run %s in profile %q: %w",
		u.spec.Name, u.spec.Sandbox, what, call.Sandbox, ErrSandboxMismatch)
}
