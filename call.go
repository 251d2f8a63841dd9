package toolgate

import (
	"encoding/json"
	"fmt"
	"time"
)

// The kinds of call the gate sees (Call.Kind). A tool call's Kind may be
// ""; Call.KindName reports it "tool".
const (
	KindTool       = "tool"
	KindResource   = "resource"
	KindPrompt     = "prompt"
	KindCompletion = "completion"
)

// Peer names a piece of software and its version: the agent's MCP client
// (from initialize) or the model driving it. Rule test cases write it in
// YAML under the same keys.
type Peer struct {
	Name    string `json:"name,omitempty" yaml:"name"`
	Version string `json:"version,omitempty" yaml:"version"`
}

// Annotations are the upstream tool's behaviour hints, copied unchanged.
// A nil hint means the upstream did not say. Rule test cases write them
// in YAML under the MCP names.
type Annotations struct {
	Title       string `json:"title,omitempty" yaml:"title"`
	ReadOnly    *bool  `json:"readOnlyHint,omitempty" yaml:"readOnlyHint"`
	Destructive *bool  `json:"destructiveHint,omitempty" yaml:"destructiveHint"`
	Idempotent  *bool  `json:"idempotentHint,omitempty" yaml:"idempotentHint"`
	OpenWorld   *bool  `json:"openWorldHint,omitempty" yaml:"openWorldHint"`
}

// Call is one call as the gate sees it. The MCP edge (package mcp) builds it from
// the agent's request; rules decide on it, review shows it, audit records it,
// and the catalog forwards it. It holds no transport state.
type Call struct {
	// ID is the decision id the gate assigns (a ULID, sortable by time).
	ID string `json:"id"`
	// Server is the upstream's name in the config ("workspace" for built-ins).
	Server string `json:"server"`
	// Tool is the tool's name on its upstream.
	Tool string `json:"tool"`
	// Name is the name exposed to agents, e.g. "fs__read_file".
	Name string `json:"name"`
	// Kind is what the call does: KindTool (tools/call; "" counts as one),
	// KindResource (resources/read: Tool and Name are the resource's or
	// matching template's, Args {"uri": ...}), KindPrompt (prompts/get:
	// Args the prompt's arguments) or KindCompletion (completion/complete).
	Kind string `json:"kind,omitempty"`
	// Args are the agent's arguments with toolgate's own keys (_confidence) removed.
	Args map[string]any `json:"args"`
	// Annotations are the upstream tool's hints.
	Annotations Annotations `json:"annotations"`
	// SchemaHash is the hex sha256 of the tool's input schema as its upstream declared it.
	SchemaHash string `json:"schema_hash,omitempty"`
	// ServerVersion is the upstream's serverInfo.version.
	ServerVersion string `json:"server_version,omitempty"`
	// Description is the tool's description and InputSchema its input
	// schema (raw JSON), as its upstream declared them: rules infer the
	// tool's kind from them (tool.kind). Not recorded; SchemaHash is.
	Description string          `json:"-"`
	InputSchema json.RawMessage `json:"-"`
	// Pin is the tool's definition's state against its pin (tools.Tool.Pin) when
	// the call was received. The gate refuses a quarantined tool's calls.
	Pin Pin `json:"pin,omitzero"`
	// Client is the agent's MCP client, from initialize.
	Client Peer `json:"client"`
	// Model is the model driving the agent, when known.
	Model Peer `json:"model"`
	// Confidence is the agent's stated confidence in 0..1; nil means unknown.
	Confidence *float64 `json:"confidence,omitempty"`
	// Sandbox is the sandbox profile the call runs in: the tool's default
	// (tools.Tool.Sandbox) until the gate applies the decision's choice. "" means
	// the tool runs outside any sandbox toolgate controls (a remote
	// upstream, or a local one configured without a profile).
	Sandbox string `json:"sandbox,omitempty"`
	// SessionID identifies the agent's MCP session ("stdio-" and 12 hex
	// digits on stdio, one per agent process).
	SessionID string `json:"session_id,omitempty"`
	// Principal is who made the call, as the edge authenticated them.
	Principal Principal `json:"principal,omitzero"`
	// Time is when toolgate received the call; rules see it as `now`.
	Time time.Time `json:"time"`
	// Meta is the request's _meta that goes upstream with the arguments:
	// the agent's, without progressToken and the reserved keys (see
	// tools.StripMeta). What toolgate adds when forwarding is its own:
	// the sandbox profile and session its built-in servers get (Sandbox,
	// SessionID) and a progress token of its own per hop. The audit log
	// records Meta redacted, reviewers are shown it with the arguments,
	// and a grant binds it with them. nil when there is none.
	Meta map[string]any `json:"meta,omitempty"`
	// Settle, set by the gate for a call that may change the links held
	// for it until its answer (gate.Linker), asks the forwarder to return
	// only once the server is done with it: given up on (the agent
	// cancelled, it timed out) without the server's answer, a stdio
	// server is stopped first. Not recorded.
	Settle bool `json:"-"`
}

// KindName is c's kind, KindTool for a call that names none.
func (c *Call) KindName() string {
	if c.Kind == "" {
		return KindTool
	}
	return c.Kind
}

// Wants says what the call asks for, for a human reviewer: "run NAME (TOOL
// on server S)" for a tool, "read the resource URI (server S)" for a
// resource, and so on. Quote marks are left to the caller.
func (c *Call) Wants() string {
	switch c.Kind {
	case KindResource:
		uri, _ := c.Args["uri"].(string)
		return fmt.Sprintf("read the resource %s (from server %s)", uri, c.Server)
	case KindPrompt:
		return fmt.Sprintf("get the prompt %s (%s on server %s)", c.Name, c.Tool, c.Server)
	case KindCompletion:
		return fmt.Sprintf("complete an argument of %s (server %s)", c.Name, c.Server)
	}
	return fmt.Sprintf("run %s (%s on server %s)", c.Name, c.Tool, c.Server)
}

// TrustedAnnotations returns the call's annotations when its tool's
// definition is trusted (or pinning is not in effect: PinUnchecked), and
// none otherwise: the hints of a definition nobody approved (changed, or
// new under strict) must not make a call look harmless to the rules.
func (c *Call) TrustedAnnotations() Annotations {
	if c.Pin.State == PinUnchecked || c.Pin.Trusted() {
		return c.Annotations
	}
	return Annotations{}
}
