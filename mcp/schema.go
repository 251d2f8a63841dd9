package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	xmessage "golang.org/x/text/message"
)

// Input-schema validation, done here rather than by mcp-go's
// server.WithInputSchemaValidation: mcp-go re-encodes the decoded arguments
// to JSON and decodes them again on every call, and looks the compiled
// schema up by a sha256 of the schema's bytes. Here each tool's schema is
// compiled once, when the tool is registered, and validates the arguments
// as decoded. The outcome is mcp-go's (same validator; numbers decoded as
// float64 compare as the shortest decimal that round-trips, which is what
// mcp-go's re-encoding produces). The messages are not: mcp-go prints the
// validator's error kinds as Go values ("&{Got:3/2 Want:1/1}"), these are
// its English sentences, listed in a stable order.

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

// english renders the validator's messages ("missing property 'text'",
// "got number, want string") in English, as its own Error does.
var english = xmessage.NewPrinter(language.English)

// validate checks the arguments of a call (nil: none given, validated as an
// empty object) and returns an error an agent can act on: each violation
// as a sentence naming where it is, e.g. "input schema validation failed:
// at /text: got number, want string; at the top level: missing property
// 'mode'".
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
// "at <json pointer>: <message>" ("at the top level" for the arguments
// object itself), the message in the validator's English wording.
func leafMessages(verr *jsonschema.ValidationError, out []string) []string {
	if len(verr.Causes) == 0 {
		loc := "at the top level"
		if len(verr.InstanceLocation) > 0 {
			var b strings.Builder
			b.WriteString("at ")
			for _, seg := range verr.InstanceLocation {
				b.WriteByte('/')
				b.WriteString(strings.ReplaceAll(strings.ReplaceAll(seg, "~", "~0"), "/", "~1"))
			}
			loc = b.String()
		}
		return append(out, fmt.Sprintf("%s: %s", loc, verr.ErrorKind.LocalizedString(english)))
	}
	for _, c := range verr.Causes {
		out = leafMessages(c, out)
	}
	return out
}

// confidenceInput checks a stated _confidence on its own, against the
// property toolgate advertises.
var confidenceInput = func() *inputSchema {
	in, err := compileInputSchema("_confidence", []byte(`{"type":"object","properties":{"`+ConfidenceParam+`":`+string(confidenceSchema)+`}}`))
	if err != nil {
		panic(err) // confidenceSchema is a constant
	}
	return in
}()

// validateArgs checks a call's arguments against e's schema. When toolgate
// added _confidence to the tool's schema, the upstream's own schema (e.schema)
// checks the arguments without it, and _confidence is checked on its own:
// the upstream never sees it, and a schema whose root is a $ref or allOf,
// or forbids additional properties, would otherwise refuse the property
// toolgate itself advertises.
func validateArgs(e *exposedTool, arguments any) error {
	args, ok := arguments.(map[string]any)
	conf, present := args[ConfidenceParam]
	if !ok || !e.ownsConfidence || !present {
		return e.schema.validate(arguments)
	}
	rest := make(map[string]any, len(args)-1)
	for k, v := range args {
		if k != ConfidenceParam {
			rest[k] = v
		}
	}
	if err := e.schema.validate(rest); err != nil {
		return err
	}
	return confidenceInput.validate(map[string]any{ConfidenceParam: conf})
}
