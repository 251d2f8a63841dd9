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

// PinStore keeps tool pins. *audit.Pins is one.
type PinStore interface {
	// CheckPin records d if this is the first time its server and tool
	// are seen, or if it differs from the definition seen last, and
	// returns d's state against its pin.
	CheckPin(ctx context.Context, d toolgate.ToolDef) (toolgate.Pin, error)
}

// Definition returns the canonical JSON of what a pin covers of one
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
func Definition(def mcp.Tool, unannotated bool) (canon json.RawMessage, hash string, err error) {
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
	if canon, err = CanonicalJSON(b); err != nil {
		return nil, "", fmt.Errorf("tool definition: %w", err)
	}
	sum := sha256.Sum256(canon)
	return canon, hex.EncodeToString(sum[:]), nil
}
