package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Tools added with --fidelity, for what a proxy must pass on as the
// upstream sent it.
//
//	<90 characters>  a name longer than Claude's 64; returns "long".
//	files.read       a name with '.'; returns its name.
//	repo/list        a name with '/'; returns its name.
//	url_needed       fails with JSON-RPC error -32042 (URL elicitation
//	                 required), whose data lists one elicitation.
//	with_meta        returns a result with _meta {"com.example/trace": "t-1"}
//	                 and structured content.
//	form             asks the user to fill a form whose fields come in the
//	                 order zeta, alpha, mid; returns the answer's content.
//	task_required    declares execution.taskSupport "required" (and the
//	                 server declares tasks); returns "task", run as one.
//	task_optional    declares execution.taskSupport "optional"; returns "sync".

// LongToolName is the 90-character tool name.
var LongToolName = "a_tool_name_that_goes_on_" + strings.Repeat("and_on_", 8) + "_until_90"

// formSchema lists its fields in an order that is not alphabetical.
const formSchema = `{"type":"object","properties":{"zeta":{"type":"string","title":"Zeta"},"alpha":{"type":"string","title":"Alpha"},"mid":{"type":"boolean","title":"Mid"}},"required":["zeta"]}`

func addFidelityTools(s *server.MCPServer) {
	text := func(reply string) server.ToolHandlerFunc {
		return func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(reply), nil
		}
	}
	if len(LongToolName) != 90 {
		panic(fmt.Sprintf("LongToolName has %d characters", len(LongToolName)))
	}
	s.AddTool(mcp.NewTool(LongToolName, mcp.WithDescription("Has a 90-character name.")), text("long"))
	s.AddTool(mcp.NewTool("files.read", mcp.WithDescription("Has a dot in its name.")), text("files.read"))
	s.AddTool(mcp.NewTool("repo/list", mcp.WithDescription("Has a slash in its name.")), text("repo/list"))

	s.AddTool(mcp.NewTool("url_needed", mcp.WithDescription("Needs the user to visit a URL first.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, mcp.URLElicitationRequiredError{Elicitations: []mcp.ElicitationParams{{
				Mode: mcp.ElicitationModeURL, ElicitationID: "e-1", URL: "https://example.com/authorize", Message: "Authorize",
			}}}
		})

	s.AddTool(mcp.NewTool("with_meta", mcp.WithDescription("Returns a result with _meta.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res := mcp.NewToolResultStructured(map[string]any{"n": 1}, `{"n":1}`)
			res.Meta = &mcp.Meta{AdditionalFields: map[string]any{"com.example/trace": "t-1"}}
			return res, nil
		})

	s.AddTool(mcp.NewTool("form", mcp.WithDescription("Asks the user to fill a form.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := s.RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
				Message: "fill the form", RequestedSchema: json.RawMessage(formSchema),
			}})
			if err != nil {
				return mcp.NewToolResultError("no answer: " + err.Error()), nil
			}
			b, _ := json.Marshal(res.Content)
			return mcp.NewToolResultText(fmt.Sprintf("%s %s", res.Action, b)), nil
		})

	s.AddTool(mcp.NewTool("task_required", mcp.WithDescription("Runs only as a task."),
		mcp.WithTaskSupport(mcp.TaskSupportRequired)), text("task"))
	s.AddTool(mcp.NewTool("task_optional", mcp.WithDescription("Runs as a task or not."),
		mcp.WithTaskSupport(mcp.TaskSupportOptional)), text("sync"))

}
