package rules

import (
	"context"
	"testing"

	"github.com/toolgate/toolgate"
)

// TestPinVariables: rules read tool.pinned and tool.changed, and the
// annotations of a tool whose definition is not trusted are empty, so a
// rug-pulled definition that claims readOnlyHint is not allowed by it.
func TestPinVariables(t *testing.T) {
	s := mustParse(t, `version: 1
default: review
rules:
  - name: changed
    match: 'tool.changed'
    action: deny
  - name: reads
    match: 'tool.annotations.?readOnlyHint.orValue(false) == true'
    action: allow
  - name: unpinned
    match: '!tool.pinned'
    action: review
    reason: not pinned
`)
	ro := toolgate.Annotations{ReadOnly: yes()}
	for _, tc := range []struct {
		pin  toolgate.PinState
		rule string
	}{
		{toolgate.PinPinned, "reads"},
		{toolgate.PinBuiltin, "reads"},
		{toolgate.PinChanged, "changed"},
		{toolgate.PinPending, "unpinned"},
		{toolgate.PinError, "unpinned"},
		{toolgate.PinUnchecked, "reads"}, // no pinning in effect: the hints are as given
	} {
		d := s.Evaluate(context.Background(), toolgate.Call{Server: "up", Tool: "echo", Annotations: ro, Pin: toolgate.Pin{State: tc.pin}})
		if d.Rule != tc.rule {
			t.Errorf("pin %q: rule %q (%s), want %q", tc.pin, d.Rule, d.Action, tc.rule)
		}
	}
}
