package rules

import (
	"context"
	"errors"

	"github.com/toolgate/toolgate/tools"
)

// Set is a compiled, immutable rule set. Safe for concurrent use.
// (Placeholder API: the rules task replaces this file.)
type Set struct{}

// Parse compiles a rules file's contents; name is used in error positions.
func Parse(name string, data []byte) (*Set, error) { return nil, errors.New("rules: not implemented") }

// Load reads and compiles a rules file.
func Load(path string) (*Set, error) { return nil, errors.New("rules: not implemented") }

// Evaluate decides c. It never returns an empty Action.
func (s *Set) Evaluate(ctx context.Context, c tools.Call) Decision {
	return Decision{Action: Deny, Error: "rules: not implemented"}
}
