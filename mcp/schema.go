package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Input-schema validation, done here rather than by mcp-go's
// server.WithInputSchemaValidation: mcp-go re-encodes the decoded arguments
// to JSON and decodes them again on every call, and looks the compiled
// schema up by a sha256 of the schema's bytes. Here each tool's schema is
// compiled once, when the tool is registered, and validates the arguments
// as decoded. The outcome and the messages are mcp-go's (same validator,
// same formatting; several violations are listed in a stable order, where
// mcp-go's follows map iteration): numbers decoded as float64 compare as the shortest
// decimal that round-trips, which is what mcp-go's re-encoding produces.

// inputSchema is one tool's compiled input schema.
type inputSchema struct {
	schema *jsonschema.Schema
}

// compileInputSchema compiles a tool's input schema. As in mcp-go, a schema
// that does not compile is not enforced; the error says why.
func compileInputSchema(tool string, raw []byte) (*inputSchema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("decode input schema: %w", err)
	}
	url := "mem:///toolgate/tools/" + tool + "/input-schema.json"
	c := jsonschema.NewCompiler()
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("register input schema: %w", err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile input schema: %w", err)
	}
	return &inputSchema{schema: sch}, nil
}

// validate checks the arguments of a call (nil: none given, validated as an
// empty object) and returns an error an agent can act on.
func (s *inputSchema) validate(args any) error {
	if s == nil {
		return nil
	}
	if args == nil {
		args = map[string]any{}
	}
	err := s.schema.Validate(args)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return fmt.Errorf("input schema validation failed: %w", err)
	}
	parts := leafMessages(verr, nil)
	slices.Sort(parts) // the validator's order follows Go map iteration
	if len(parts) == 0 {
		return fmt.Errorf("input schema validation failed: %s", verr.Error())
	}
	return fmt.Errorf("input schema validation failed: %s", strings.Join(parts, "; "))
}

// leafMessages renders each leaf cause of a validation error as
// "<json pointer>: <message>" ("<root>" for the arguments object itself).
func leafMessages(verr *jsonschema.ValidationError, out []string) []string {
	if len(verr.Causes) == 0 {
		loc := "<root>"
		if len(verr.InstanceLocation) > 0 {
			var b strings.Builder
			for _, seg := range verr.InstanceLocation {
				b.WriteByte('/')
				b.WriteString(strings.ReplaceAll(strings.ReplaceAll(seg, "~", "~0"), "/", "~1"))
			}
			loc = b.String()
		}
		return append(out, fmt.Sprintf("%s: %+v", loc, verr.ErrorKind))
	}
	for _, c := range verr.Causes {
		out = leafMessages(c, out)
	}
	return out
}
