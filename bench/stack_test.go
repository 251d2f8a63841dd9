package bench

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/gate"
	"github.com/toolgate/toolgate/mcp"
	"github.com/toolgate/toolgate/metrics"
	"github.com/toolgate/toolgate/redact"
	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/toolgatetest"
)

// The Stack benchmarks run what `toolgate serve` runs for a stdio agent,
// in-process, so one CPU profile covers all of it: an mcp-go client talks
// over in-memory pipes to the mcp.Server, whose gate evaluates a 100-rule
// set (as tgbench's default), records to the SQLite audit log through the
// redactor and the metrics wrapper, and forwards to the test upstream
// (a stdio subprocess). Stack/nop replaces the audit log with a no-op.

// stack starts the in-process toolgate and returns a client connected to it.
func stack(b *testing.B, withAudit bool) *client.Client {
	b.Helper()
	set, err := rules.Parse("rules-100.yaml", []byte(HundredRules("bench-100")))
	if err != nil {
		b.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry())
	var rec gate.Recorder = toolgatetest.NopRecorder{}
	if withAudit {
		red := redact.New(nil)
		st, err := audit.Open(context.Background(), filepath.Join(auditDir(b, b.TempDir()), "audit.db"), audit.Options{
			Redact: func(args map[string]any) map[string]any {
				out, _ := red.Value(args).(map[string]any)
				return out
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		rec = st
	}
	cat := catalog(b)
	g, err := gate.New(gate.Options{Decider: set, Recorder: m.WrapRecorder(rec), Observer: m, Forwarder: cat})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := mcp.New(mcp.Options{Version: "bench", Gate: g, Catalog: cat})
	if err != nil {
		b.Fatal(err)
	}
	srv.Sync()

	inR, inW := io.Pipe()   // client -> server
	outR, outW := io.Pipe() // server -> client
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeStdio(ctx, inR, outW)
		_ = outW.Close()
	}()
	c := client.NewClient(transport.NewIO(outR, inW, io.NopCloser(strings.NewReader(""))),
		client.WithProtocolVersion(mcpgo.ProtocolVersion20251125))
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	req := mcpgo.InitializeRequest{}
	req.Params.ProtocolVersion = mcpgo.ProtocolVersion20251125
	req.Params.ClientInfo = mcpgo.Implementation{Name: "bench", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = c.Close()
		cancel()
		_ = inW.Close()
		<-done
	})
	return c
}

// BenchmarkStack: in-process toolgate (stdio framing over pipes, 100 rules,
// SQLite audit with redaction, metrics) -> upstream (stdio), one caller.
func BenchmarkStack(b *testing.B) {
	for _, withAudit := range []bool{true, false} {
		name := "audit"
		if !withAudit {
			name = "nop"
		}
		b.Run(name, func(b *testing.B) { run(b, stack(b, withAudit), "up__echo") })
	}
}

// BenchmarkStackParallel: as BenchmarkStack with 16 concurrent callers
// sharing the one connection, as tgbench's stdio side does.
func BenchmarkStackParallel(b *testing.B) {
	for _, withAudit := range []bool{true, false} {
		name := "audit"
		if !withAudit {
			name = "nop"
		}
		b.Run(name, func(b *testing.B) {
			c := stack(b, withAudit)
			req := mcpgo.CallToolRequest{}
			req.Params.Name = "up__echo"
			req.Params.Arguments = map[string]any{"text": "hello, toolgate"}
			b.SetParallelism(8) // x GOMAXPROCS(2) = 16 callers
			b.ResetTimer()
			defer reportCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := c.CallTool(context.Background(), req)
					if err != nil {
						b.Error(err)
						return
					}
					if res.IsError {
						b.Errorf("tool error: %+v", res.Content)
						return
					}
				}
			})
		})
	}
}
