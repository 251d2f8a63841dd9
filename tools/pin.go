package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/toolgate/toolgate"
)

// PinStore keeps tool pins. *audit.Pins is one.
type PinStore interface {
	// CheckPin records d if this is the first time its server and tool
	// are seen, or if it differs from the definition seen last, and
	// returns d's state against its pin.
	CheckPin(ctx context.Context, d toolgate.ToolDef) (toolgate.Pin, error)
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
