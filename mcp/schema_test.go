package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// TestInputSchemaLikeMCPGo checks that the handler's schema validation
// accepts and refuses the same arguments as mcp-go's
// server.WithInputSchemaValidation, which it replaces, with the same text.
func TestInputSchemaLikeMCPGo(t *testing.T) {
	schemas := map[string]string{
		"echo":    `{"type":"object","properties":{"text":{"type":"string"},"_confidence":{"type":"number","minimum":0,"maximum":1}},"required":["text"]}`,
		"complex": complexSchema,
		"numbers": `{"type":"object","properties":{"i":{"type":"integer"},"m":{"type":"number","multipleOf":0.1},"e":{"enum":[1,2.5,"x"]},"a":{"type":"array","items":{"type":"integer"},"uniqueItems":true}}}`,
		"nested":  `{"type":"object","properties":{"o":{"type":"object","properties":{"a/b~c":{"type":"boolean"}},"additionalProperties":false}}}`,
		"bad":     `{"type":"object","properties":{"x":{"$ref":"#/nowhere"}}}`,
	}
	cases := []struct{ tool, args string }{
		{"echo", `{"text":"hi"}`},
		{"echo", `{}`},
		{"echo", `null`},
		{"echo", `{"text":5,"_confidence":2}`},
		{"echo", `"rm -rf /"`},
		{"echo", `[1,2]`},
		{"echo", `42`},
		{"complex", `{"mode":"a"}`},
		{"complex", `{"mode":"b"}`},
		{"complex", `{"mode":7,"n":"x"}`},
		{"complex", `{"mode":"b","n":0,"extra":true}`},
		{"numbers", `{"i":3,"m":0.3,"e":2.5,"a":[1,2]}`},
		{"numbers", `{"i":3.0,"m":1e-1,"e":1.0}`},
		{"numbers", `{"i":3.5,"m":0.35,"e":3,"a":[1,1.0]}`},
		{"numbers", `{"i":12345678901234567890,"m":0.30000000000000004}`},
		{"nested", `{"o":{"a/b~c":"yes","z":1}}`},
		{"bad", `{"x":1}`},
	}

	ref := server.NewMCPServer("ref", "1", server.WithInputSchemaValidation())
	compiled := map[string]*inputSchema{}
	for name, sch := range schemas {
		ref.AddTool(mcpgo.NewToolWithRawSchema(name, "", json.RawMessage(sch)),
			func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
				return mcpgo.NewToolResultText("ok"), nil
			})
		in, err := compileInputSchema(name, []byte(sch))
		if (err != nil) != (name == "bad") {
			t.Errorf("%s: compile error %v", name, err)
		}
		compiled[name] = in
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s", tc.tool, tc.args), func(t *testing.T) {
			line := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, i+1, tc.tool, tc.args)
			resp, ok := ref.HandleMessage(context.Background(), []byte(line)).(mcpgo.JSONRPCResponse)
			if !ok {
				t.Fatalf("mcp-go: not a result")
			}
			want := ""
			if res := resp.Result.(*mcpgo.CallToolResult); res.IsError {
				want = res.Content[0].(mcpgo.TextContent).Text
			}
			var args any
			if err := json.Unmarshal([]byte(tc.args), &args); err != nil {
				t.Fatal(err)
			}
			got := ""
			if err := compiled[tc.tool].validate(args); err != nil {
				got = err.Error()
			}
			if (got == "") != (want == "") {
				t.Errorf("validation of %s by %s:\n got %q\nmcp-go %q", tc.args, tc.tool, got, want)
			}
			if strings.Contains(got, "&{") || strings.Contains(got, "<root>") {
				t.Errorf("validation of %s by %s reads like a Go value: %q", tc.args, tc.tool, got)
			}
		})
	}
}

// TestSchemaErrorSentences pins how violations read to the agent.
func TestSchemaErrorSentences(t *testing.T) {
	for _, tc := range []struct{ schema, args, want string }{
		{`{"type":"object","properties":{"n":{"type":"number","multipleOf":0.5}}}`, `{"n":0.7}`,
			"input schema validation failed: at /n: multipleOf: got 0.7, want 0.5"},
		{`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`, `{"text":3}`,
			"input schema validation failed: at /text: got number, want string"},
		{`{"type":"object","required":["a","b"]}`, `{}`,
			"input schema validation failed: at the top level: missing properties 'a', 'b'"},
	} {
		in, err := compileInputSchema("t", []byte(tc.schema))
		if err != nil {
			t.Fatal(err)
		}
		var args any
		_ = json.Unmarshal([]byte(tc.args), &args)
		if err := in.validate(args); err == nil || err.Error() != tc.want {
			t.Errorf("%s against %s:\n got %v\nwant %s", tc.args, tc.schema, err, tc.want)
		}
	}
}

const complexSchema = `{"type":"object","$schema":"https://json-schema.org/draft/2020-12/schema","description":"top-level description","properties":{"mode":{"type":"string","enum":["a","b"]},"n":{"type":"integer","minimum":1}},"required":["mode"],"additionalProperties":false,"anyOf":[{"required":["n"]},{"properties":{"mode":{"const":"a"}}}]}`
