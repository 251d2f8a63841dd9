package toolgate

import (
	"encoding/json"
	"fmt"
	"time"
)

// PinState is how a tool's current definition stands against its pin: the
// definition approved when the tool was first seen (trust on first use) or
// later by an admin (`toolgate tools approve`).
type PinState string

// The pin states. Only PinPinned and PinBuiltin are trusted: a tool in any
// other state set by a PinStore is quarantined, its calls refused.
const (
	// PinUnchecked: no PinStore was asked (pinning not wired, as in
	// offline rule evaluation). Calls are not refused for it.
	PinUnchecked PinState = ""
	// PinPinned: the definition is the approved one.
	PinPinned PinState = "pinned"
	// PinChanged: the definition differs from the approved one (a rug pull,
	// or an upgrade nobody approved yet).
	PinChanged PinState = "changed"
	// PinPending: a tool first seen under pinning mode strict, never approved.
	PinPending PinState = "new-pending"
	// PinBuiltin: one of toolgate's own in-process tools (workspace,
	// toolgate), whose definitions ship in the binary; never pinned.
	PinBuiltin PinState = "builtin"
	// PinError: the pin could not be checked (the audit DB failed); fail
	// closed.
	PinError PinState = "error"
)

// KindResourceTemplate is the kind of a resource template's pin
// (ToolDef.Kind). It is no call's kind: a read through a template is a
// call of KindResource.
const KindResourceTemplate = "resource_template"

// KindInstructions is the kind of the pin of an upstream's initialize
// instructions (ToolDef.Kind), which agents are sent as toolgate's own:
// its Tool and Name are the upstream's name. It is no call's kind.
const KindInstructions = "instructions"

// ToolDef is what a pin covers of one declaration an upstream lists (a
// tool, prompt, resource or resource template): what it is, where, the
// name agents see, and its canonical definition. Kind, Server and Tool
// identify the pin: no two declarations share all three, whatever their
// names, since each kind is its own namespace.
type ToolDef struct {
	// Kind is KindTool, KindPrompt, KindResource or KindResourceTemplate;
	// "" counts as KindTool.
	Kind string
	// Server is the upstream's name in the config; Tool what identifies
	// the declaration on it: a tool's or prompt's name, a resource's URI,
	// a template's URI template (a resource's name need not be unique,
	// its URI is). Name is the name agents see.
	Server, Tool, Name string
	// Definition is the canonical JSON of everything agents are sent of
	// the declaration (see tools.Definition); Hash its hex sha256.
	Definition json.RawMessage
	Hash       string
}

// KindName is d's kind, KindTool when it names none.
func (d ToolDef) KindName() string {
	if d.Kind == "" {
		return KindTool
	}
	return d.Kind
}

// KindNoun is how messages name a declaration of kind: "resource
// template" for KindResourceTemplate, "instructions of server" for
// KindInstructions, the kind itself otherwise.
func KindNoun(kind string) string {
	switch kind {
	case "":
		return KindTool
	case KindResourceTemplate:
		return "resource template"
	case KindInstructions:
		return "instructions of server"
	}
	return kind
}

// Pin is a tool's pin status as the catalog last checked it.
type Pin struct {
	State PinState `json:"state,omitempty"`
	// ApprovedAt is when the pinned definition was approved; zero if none was.
	ApprovedAt time.Time `json:"approved_at,omitzero"`
	// Err says why the check failed (PinError).
	Err string `json:"error,omitempty"`
}

// Quarantined reports whether calls of the tool are refused.
func (p Pin) Quarantined() bool {
	return p.State == PinChanged || p.State == PinPending || p.State == PinError
}

// Trusted reports whether the tool's definition (and so its annotations) is
// one toolgate or an admin approved.
func (p Pin) Trusted() bool { return p.State == PinPinned || p.State == PinBuiltin }

// Refusal says why a call of quarantined declaration name, of kind (a
// call's or a pin's kind), is refused, in words an agent can pass on to
// its user. Like a review's refusal, it does not name
// the command that approves the tool: the agent is the adversary, and an
// agent with a shell of its own must not be handed it. The admin finds it
// in toolgate's log and in `toolgate tools list`.
func (p Pin) Refusal(kind, name string) string {
	what := KindNoun(kind)
	switch p.State {
	case PinChanged:
		return fmt.Sprintf("%s %s's definition changed since it was approved on %s, so it is quarantined until an admin reviews and approves the new definition; ask the user",
			what, name, p.ApprovedAt.UTC().Format(time.DateOnly))
	case PinPending:
		return fmt.Sprintf("%s %s is new and not approved yet (pinning mode strict), so it is quarantined until an admin reviews and approves its definition; ask the user", what, name)
	case PinError:
		return fmt.Sprintf("toolgate could not check %s %s's definition against its pin (%s), so it does not use it (fail closed)", what, name, p.Err)
	}
	return ""
}
