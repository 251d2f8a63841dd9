package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
)

// PinStore keeps the pins of upstream tools, prompts, resources and
// resource templates. *audit.Pins is one.
type PinStore interface {
	// CheckPin records d if this is the first time its kind, server and
	// tool are seen, or if it differs from the definition seen last, and
	// returns d's state against its pin.
	CheckPin(ctx context.Context, d toolgate.ToolDef) (toolgate.Pin, error)
}

// ToolDefinition returns the canonical JSON of what a pin covers of one
// upstream tool and its hex sha256, the definition hash. def is the tool
// as decoded for agents and rules (DecodeTool), unannotated whether it
// was listed without annotations (Tool.Unannotated).
//
// A pin covers every member of def that agents are sent (name, title,
// description, schemas, annotations, _meta, icons, execution, ...), taken
// from def itself, never from the upstream's bytes beside it: what is
// pinned, what `toolgate tools show` displays and what agents and rules
// get are one value, so no spelling of a member (another letter case, a
// key given twice) can reach an agent or a rule unpinned.
func ToolDefinition(def mcp.Tool, unannotated bool) (canon json.RawMessage, hash string, err error) {
	b, err := json.Marshal(def)
	if err != nil {
		return nil, "", fmt.Errorf("tool definition: %w", err)
	}
	if unannotated {
		// mcp-go writes annotations always; agents are sent none (mcp/toolslist.go).
		var members map[string]json.RawMessage
		if err := json.Unmarshal(b, &members); err != nil {
			return nil, "", fmt.Errorf("tool definition: %w", err)
		}
		delete(members, "annotations")
		if b, err = json.Marshal(members); err != nil {
			return nil, "", fmt.Errorf("tool definition: %w", err)
		}
	}
	return canonicalDefinition(b)
}

// Definition returns the canonical JSON of what a pin covers of one
// upstream prompt, resource or resource template (an mcp.Prompt,
// mcp.Resource or mcp.ResourceTemplate) and its hex sha256. decl is the
// value agents are sent (re-encoded, its name aside: see the mcp
// package's syncSurface), decoded once from the upstream's list, so every
// member it has is pinned (a prompt's name, title, description,
// arguments, _meta and icons; a resource's URI, name, title, description,
// MIME type, size, annotations, _meta and icons), and no spelling of a
// member the upstream sent (another letter case, a key given twice) can
// reach an agent other than as pinned: no bytes of the upstream's are
// passed on beside it.
func Definition(decl any) (canon json.RawMessage, hash string, err error) {
	b, err := json.Marshal(decl)
	if err != nil {
		return nil, "", fmt.Errorf("definition: %w", err)
	}
	return canonicalDefinition(b)
}

// canonicalDefinition is b's canonical JSON and its hex sha256.
func canonicalDefinition(b []byte) (json.RawMessage, string, error) {
	canon, err := CanonicalJSON(b)
	if err != nil {
		return nil, "", fmt.Errorf("definition: %w", err)
	}
	sum := sha256.Sum256(canon)
	return canon, hex.EncodeToString(sum[:]), nil
}
