package bench

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/gate"
	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/toolgatetest"
	"github.com/toolgate/toolgate/tools"
)

// The benchmarks below take the proxied path apart, in-process: the
// catalog's Forward alone, then the gate around it with a no-op recorder,
// then with the real SQLite audit log.

func catalog(b *testing.B) *tools.Catalog {
	b.Helper()
	c, err := tools.New(tools.Options{Upstreams: []tools.Upstream{{Name: "up", Command: upstreamBin}}})
	if err != nil {
		b.Fatal(err)
	}
	c.Start(context.Background())
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func echoCall() toolgate.Call {
	return toolgate.Call{Server: "up", Tool: "echo", Name: "up__echo", Args: map[string]any{"text": "hello, toolgate"}}
}

func allowRules(b *testing.B) *rules.Set {
	b.Helper()
	s, err := rules.Parse("allow.yaml", []byte("version: 1\ndefault: allow\nrules: []\n"))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func loopGate(b *testing.B, g *gate.Gate) {
	ctx := context.Background()
	defer reportCPU(b)()
	for b.Loop() {
		if res := g.Handle(ctx, echoCall()); res.IsError {
			b.Fatalf("tool error: %+v", res)
		}
	}
}

// BenchmarkPartForward: tools.Catalog.Forward -> upstream (stdio).
func BenchmarkPartForward(b *testing.B) {
	c := catalog(b)
	ctx := context.Background()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := c.Forward(ctx, echoCall()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPartGateNop: gate (allow-all rule set, no audit) -> Forward.
func BenchmarkPartGateNop(b *testing.B) {
	g, err := gate.New(gate.Options{Decider: allowRules(b), Recorder: toolgatetest.NopRecorder{}, Forwarder: catalog(b)})
	if err != nil {
		b.Fatal(err)
	}
	loopGate(b, g)
}

// BenchmarkPartGateAudit: gate (allow-all rule set, SQLite audit) -> Forward.
func BenchmarkPartGateAudit(b *testing.B) {
	st, err := audit.Open(context.Background(), filepath.Join(b.TempDir(), "audit.db"), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	g, err := gate.New(gate.Options{Decider: allowRules(b), Recorder: st, Forwarder: catalog(b)})
	if err != nil {
		b.Fatal(err)
	}
	loopGate(b, g)
}
