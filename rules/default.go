package rules

import (
	_ "embed"
	"fmt"
	"sync"
)

//go:embed default.yaml
var defaultPack []byte

// DefaultName is the name the embedded default pack has in errors and in
// the CLI, where it can stand in for a rules file path.
const DefaultName = "@default"

// defaultSet compiles the embedded pack once; the pack is immutable, so
// sharing the compiled Set is safe.
var defaultSet = sync.OnceValue(func() *Set {
	s, err := Parse(DefaultName, defaultPack)
	if err != nil {
		// The pack is compiled into the binary and a test compiles it:
		// failing here is a programming error.
		panic(fmt.Sprintf("rules: the embedded default pack does not compile: %v", err))
	}
	return s
})

// Default returns the embedded default rule pack for coding agents, which
// `toolgate serve` uses when no rules file is given.
func Default() *Set { return defaultSet() }

// DefaultSource returns the embedded default pack's YAML source.
func DefaultSource() []byte { return append([]byte(nil), defaultPack...) }
