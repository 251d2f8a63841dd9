package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

var toolgateBin, upstreamBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "toolgate-bench")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	toolgateBin, upstreamBin = filepath.Join(dir, "toolgate"), filepath.Join(dir, "upstream")
	for _, b := range [][2]string{{toolgateBin, "../cmd/toolgate"}, {upstreamBin, "../testdata/upstream"}} {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b[1], err, out)
			_ = os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func dial(b *testing.B, command string, args ...string) *client.Client {
	b.Helper()
	c := client.NewClient(transport.NewStdio(command, nil, args...), client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	req.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
	if _, err := c.Initialize(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func run(b *testing.B, c *client.Client, tool string) {
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = map[string]any{"text": "hello, toolgate"}
	ctx := context.Background()
	// One warm-up call outside the timer.
	if _, err := c.CallTool(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for b.Loop() {
		res, err := c.CallTool(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if res.IsError {
			b.Fatalf("tool error: %+v", res.Content)
		}
	}
}

// BenchmarkCallDirect: mcp-go client -> upstream (stdio).
func BenchmarkCallDirect(b *testing.B) {
	run(b, dial(b, upstreamBin), "echo")
}

// BenchmarkCallProxied: mcp-go client -> toolgate (stdio) -> gate -> upstream (stdio).
func BenchmarkCallProxied(b *testing.B) {
	dir := b.TempDir()
	cfg := filepath.Join(dir, "toolgate.yaml")
	rulesFile := filepath.Join(dir, "allow.yaml")
	if err := os.WriteFile(rulesFile, []byte("version: 1\ndefault: allow\nrules: []\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	body := fmt.Sprintf("servers:\n  up: {command: %q}\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n",
		upstreamBin, rulesFile, filepath.Join(auditDir(b, dir), "audit.db"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	run(b, dial(b, toolgateBin, "serve", "--config", cfg, "--log-level", "error"), "up__echo")
}

// auditDir is where the proxied benchmark keeps its audit log: dir, or the
// directory in $TOOLGATE_BENCH_AUDIT_DIR (e.g. /dev/shm, to take fsync out).
func auditDir(b *testing.B, dir string) string {
	if d := os.Getenv("TOOLGATE_BENCH_AUDIT_DIR"); d != "" {
		d, err := os.MkdirTemp(d, "toolgate-bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(d) })
		return d
	}
	return dir
}
