package rules

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/bench"
)

// synthFile builds a rules file of n rules. Indexed rules each name one of
// n/2 tools (`tool.name == "tool_k" && ...`), so the tool-name index leaves
// about two candidates per call; unindexed rules must all be evaluated.
func synthFile(n int, indexed bool) string {
	var b strings.Builder
	b.WriteString("version: 1\ndefault: review\nrules:\n")
	tools := max(n/2, 1)
	for i := range n {
		cond := fmt.Sprintf(`glob(args.?path.orValue(""), "**/secret%d/**")`, i)
		if indexed {
			cond = fmt.Sprintf(`tool.name == "tool_%d" && `, i%tools) + cond
		}
		fmt.Fprintf(&b, "  - name: r%d\n    match: '%s'\n    action: deny\n", i, cond)
	}
	return b.String()
}

var benchCall = toolgate.Call{
	Tool: "tool_7", Server: "fs",
	Args: map[string]any{"path": "/home/u/project/src/main.go", "content": strings.Repeat("x", 200)},
}

func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, indexed := range []bool{true, false} {
			name := fmt.Sprintf("rules=%d", n)
			if !indexed {
				name += "/unindexed"
			}
			b.Run(name, func(b *testing.B) {
				s := mustParse(b, synthFile(n, indexed))
				ctx := context.Background()
				b.ReportAllocs()
				defer reportCPU(b)()
				for b.Loop() {
					if d := s.Evaluate(ctx, benchCall); d.Action != toolgate.Review {
						b.Fatalf("unexpected %+v", d)
					}
				}
			})
		}
	}
}

// BenchmarkEvaluateHundred measures tgbench's 100-rule set on its echo
// call, which the last rule allows after 49 argument checks.
func BenchmarkEvaluateHundred(b *testing.B) {
	s := mustParse(b, bench.HundredRules("bench-100"))
	c := toolgate.Call{Tool: "echo", Server: "up", Name: "up__echo", Args: map[string]any{"text": "hello, toolgate"}}
	ctx := context.Background()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if d := s.Evaluate(ctx, c); d.Action != toolgate.Allow {
			b.Fatalf("unexpected %+v", d)
		}
	}
}

// packCalls are calls as the gate hands them to the default pack: with
// the tool's description, schema and annotations (tools.Tool.Call), in a
// known workspace. echo is tgbench's upstream tool; the others are the
// built-in workspace tools.
func packCalls() map[string]toolgate.Call {
	no := func() *bool { b := false; return &b }
	ws := func(tool, desc, schema string, readOnly bool, args map[string]any) toolgate.Call {
		destructive := !readOnly
		return toolgate.Call{Server: "workspace", Tool: tool, Name: tool, Description: desc, InputSchema: []byte(schema),
			Annotations: toolgate.Annotations{ReadOnly: &readOnly, Destructive: &destructive},
			Args:        args, Sandbox: "workspace-read", SessionID: "stdio-0123456789ab"}
	}
	return map[string]toolgate.Call{
		"echo": {Server: "up", Tool: "echo", Name: "up__echo", Description: "Returns the text it is given.",
			InputSchema: []byte(`{"type":"object","properties":{"text":{"type":"string","description":"what to echo"}},"required":["text"]}`),
			Annotations: toolgate.Annotations{Title: "Echo", ReadOnly: yes(), Idempotent: yes(), Destructive: no()},
			Args:        map[string]any{"text": "hello, toolgate"}, SessionID: "stdio-0123456789ab"},
		"read_file": ws("read_file", "Read a UTF-8 text file in the workspace and return its contents.",
			`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`, true,
			map[string]any{"path": "src/main.go"}),
		"write_file": ws("write_file", "Create or overwrite a text file in the workspace, atomically.",
			`{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"},"create_dirs":{"type":"boolean"}},"required":["path","content"]}`, false,
			map[string]any{"path": "src/main.go", "content": "package main\n\nfunc main() {}\n"}),
		"run_command": ws("run_command", "Run a shell command in the workspace with /bin/sh -c and return its exit code, stdout and stderr.",
			`{"type":"object","properties":{"command":{"type":"string"},"args":{"type":"array","items":{"type":"string"}},"cwd":{"type":"string"}},"required":["command"]}`, false,
			map[string]any{"command": "go test ./... && git status"}),
		"other_annotated": {Tool: "search", Server: "gh", Annotations: toolgate.Annotations{ReadOnly: yes()}, Args: map[string]any{"q": "x"}},
	}
}

// packWorkspace is where packCalls run.
var packWorkspace = Workspace{Root: "/home/u/project", Home: "/home/u"}

// BenchmarkEvaluateDefault measures the embedded pack on typical calls.
func BenchmarkEvaluateDefault(b *testing.B) {
	s := Default().WithWorkspace(packWorkspace)
	for name, c := range packCalls() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				s.Evaluate(context.Background(), c)
			}
		})
	}
}

// BenchmarkEvaluateDefaultCold measures the embedded pack on tgbench's echo
// call with the CPU caches cold, as in a server: between two calls it
// touches 32 MiB, about what the rest of a call's path and the other
// processes evict, so each evaluation reads the rules' programs from
// memory. eval-cpu-ns is the evaluating thread's CPU time (Linux only).
// Against BenchmarkEvaluateDefault/echo it shows why the rules cost
// several times more per call in toolgate serve than in a loop, and why
// skipping a rule (see need.go) saves more there than here.
func BenchmarkEvaluateDefaultCold(b *testing.B) {
	if threadCPU() < 0 {
		b.Skip("no thread CPU clock")
	}
	s := Default()
	c := packCalls()["echo"]
	s.Evaluate(context.Background(), c) // first use estimates cost bounds
	evict := make([]byte, 32<<20)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var in time.Duration
	for b.Loop() {
		for i := 0; i < len(evict); i += 64 {
			evict[i]++
		}
		start := threadCPU()
		s.Evaluate(context.Background(), c)
		in += threadCPU() - start
	}
	b.ReportMetric(float64(in.Nanoseconds())/float64(b.N), "eval-cpu-ns")
}

// reportCPU adds the process's CPU time per operation (cpu-ns/op, GC
// included) to a benchmark: on a shared machine it varies much less than
// wall time, which counts the time other processes hold the CPU. Call it
// just before the loop and defer the function it returns.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkParse measures compiling a set and the heap it keeps alive
// (retained-B/set after a GC, the memory cost of a loaded rule set).
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			data := []byte(synthFile(n, true))
			var keep *Set
			for b.Loop() {
				keep = mustParse(b, string(data))
			}
			b.StopTimer()
			retained := heapOf(func() any { return mustParse(b, string(data)) })
			b.ReportMetric(float64(retained), "retained-B/set")
			b.ReportMetric(float64(retained)/float64(n), "retained-B/rule")
			_ = keep
		})
	}
}

// heapOf returns the live heap growth caused by keeping make()'s result.
func heapOf(make func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := make()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// TestIndexPreservesOrder checks that indexed and unindexed rules interleave
// in file order: the index only skips rules, it never reorders them.
func TestIndexPreservesOrder(t *testing.T) {
	s := mustParse(t, `version: 1
default: deny
rules:
  - {name: a, match: 'tool.name == "x" && args.?k.orValue("") == "a"', action: allow}
  - {name: b, match: 'args.?k.orValue("") in ["a", "b"]', action: review}
  - {name: c, match: '"x" == tool.name && args.?k.orValue("") in ["b", "c"]', action: allow}
  - {name: d, match: 'tool.name in ["x", "y"] && true', action: deny}
  - {name: e, match: 'tool.name == "x" || true', action: allow}
`)
	if got := s.byTool["x"]; fmt.Sprint(got) != "[0 2 3]" {
		t.Errorf("index for x = %v", got)
	}
	if fmt.Sprint(s.unindexed) != "[1 4]" {
		t.Errorf("unindexed = %v", s.unindexed)
	}
	for k, want := range map[string]string{"a": "a", "b": "b", "c": "c", "z": "d"} {
		if d := s.Evaluate(context.Background(), toolgate.Call{Tool: "x", Args: map[string]any{"k": k}}); d.Rule != want {
			t.Errorf("k=%s: rule %q, want %q", k, d.Rule, want)
		}
	}
	if d := s.Evaluate(context.Background(), toolgate.Call{Tool: "q"}); d.Rule != "e" {
		t.Errorf("other tool: rule %q, want e", d.Rule)
	}
}

// longText is an issue's body of 6 KB, without the words the pack looks for.
var longText = strings.Repeat("The test fails one run in ten on CI, with a timeout in the setup of its fixture. ", 75)

// issueCall is a call of an upstream's tool that the pack knows nothing
// about, with a long text argument.
func issueCall(body string) toolgate.Call {
	return toolgate.Call{Tool: "create_issue", Server: "gh", Name: "gh__create_issue", Description: "Create an issue.",
		Args: map[string]any{"title": "Flaky test", "body": body}}
}

// BenchmarkEvaluateLongText measures the embedded pack on a call whose
// argument is a long text: the pack's checks of free text run over all of
// it (see regex.go).
func BenchmarkEvaluateLongText(b *testing.B) {
	s := Default().WithWorkspace(packWorkspace)
	c := issueCall(longText)
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		s.Evaluate(context.Background(), c)
	}
}
