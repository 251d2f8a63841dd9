package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// PinStore keeps tool pins. *audit.Pins is one.
type PinStore interface {
	// CheckPin records t's definition (DefHash, Definition) if this is the
	// first time its server and name are seen, or if it differs from the
	// one seen last, and returns t's state against its pin.
	CheckPin(ctx context.Context, t Tool) (Pin, error)
}

// pinnedFields are the members of a tools/list entry a definition hash
// covers: everything an agent (and a rule) reads to decide what the tool
// does. A change in any of them is a new definition.
var pinnedFields = []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"}

// Definition returns the canonical JSON of the pinned members of one
// tools/list entry (raw) and its hex sha256, the definition hash.
func Definition(raw json.RawMessage) (canon json.RawMessage, hash string, err error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, "", fmt.Errorf("tool definition: %w", err)
	}
	pinned := make(map[string]json.RawMessage, len(pinnedFields))
	for _, k := range pinnedFields {
		if v, ok := all[k]; ok && string(v) != "null" {
			pinned[k] = v
		}
	}
	b, err := json.Marshal(pinned)
	if err != nil {
		return nil, "", fmt.Errorf("tool definition: %w", err)
	}
	if canon, err = CanonicalJSON(b); err != nil {
		return nil, "", fmt.Errorf("tool definition: %w", err)
	}
	sum := sha256.Sum256(canon)
	return canon, hex.EncodeToString(sum[:]), nil
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
