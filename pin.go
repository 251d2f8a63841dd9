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

// ToolDef is what a pin covers of one tool as its upstream lists it: where
// it is, the name agents see, and its canonical definition.
type ToolDef struct {
	// Server is the upstream's name in the config; Tool the tool's name
	// on it; Name the name agents see.
	Server, Tool, Name string
	// Definition is the canonical JSON of the definition (name, title,
	// description, schemas, annotations); Hash its hex sha256.
	Definition json.RawMessage
	Hash       string
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

// Refusal says why a call of quarantined tool name is refused, in words an
// agent can pass on to its user. Like a review's refusal, it does not name
// the command that approves the tool: the agent is the adversary, and an
// agent with a shell of its own must not be handed it. The admin finds it
// in toolgate's log and in `toolgate tools list`.
func (p Pin) Refusal(name string) string {
	switch p.State {
	case PinChanged:
		return fmt.Sprintf("tool %s's definition changed since it was approved on %s, so it is quarantined until an admin reviews and approves the new definition; ask the user",
			name, p.ApprovedAt.UTC().Format(time.DateOnly))
	case PinPending:
		return fmt.Sprintf("tool %s is new and not approved yet (pinning mode strict), so it is quarantined until an admin reviews and approves its definition; ask the user", name)
	case PinError:
		return fmt.Sprintf("toolgate could not check tool %s's definition against its pin (%s), so it does not run it (fail closed)", name, p.Err)
	}
	return ""
}
