package workspace

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/tools"
	"github.com/toolgate/toolgate/tools/sandbox"
)

// BenchmarkRunCommand measures one run_command of `true` through the
// in-process server, unsandboxed (profile none) and in each built-in
// profile: what the sandbox adds to a command. It reports p50 and p99.
func BenchmarkRunCommand(b *testing.B) {
	root := b.TempDir()
	for _, profile := range []string{sandbox.None, sandbox.ReadOnly, sandbox.WorkspaceWrite} {
		b.Run(profile, func(b *testing.B) {
			c := connect(b, Options{Root: root})
			req := mcp.CallToolRequest{}
			req.Params.Name = ToolRunCommand
			req.Params.Arguments = map[string]any{"command": "true"}
			req.Params.Meta = &mcp.Meta{AdditionalFields: map[string]any{tools.MetaSandbox: profile}}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				res, err := c.CallTool(context.Background(), req)
				if err != nil || res.IsError {
					b.Fatalf("run_command: %v %+v", err, res)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkLinksCheck measures what the gate asks of Links for a call to a
// server outside the sandbox with one short string argument that names
// no workspace path (tgbench's echo): the fence held and let go, and the
// links looked for.
func BenchmarkLinksCheck(b *testing.B) {
	l := &Links{Root: b.TempDir(), Outside: []string{"up"}}
	c := toolgate.Call{Server: "up", Tool: "echo", Args: map[string]any{"message": "hello"}}
	for b.Loop() {
		_, release, _, err := l.Links(context.Background(), c)
		if err != nil {
			b.Fatal(err)
		}
		release()
	}
}
