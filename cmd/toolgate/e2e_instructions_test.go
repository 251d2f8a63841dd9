package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeInstructionWriteThroughLink: with the embedded default rules, a
// write to an agent instruction file is reviewed, and write_file writes one
// only when it names the file itself. A link the agent makes to one
// (ln -s AGENTS.md TODO.md, a routine command) and a write_file of the link,
// which the rules see as TODO.md and allow, leave AGENTS.md as it was.
func TestServeInstructionWriteThroughLink(t *testing.T) {
	f := sbSetup(t, "")
	const orig = "# how we work\n"
	if err := os.WriteFile(filepath.Join(f.ws, "AGENTS.md"), []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)
	if out, isErr := f.run(t, "ln -s AGENTS.md TODO.md"); isErr || !strings.Contains(out, "sandbox: ") {
		t.Fatalf("the link was not made in the sandbox (this test then shows nothing): %s", out)
	}
	res, err := callTool(t.Context(), f.c, "workspace__write_file", map[string]any{"path": "TODO.md", "content": "Approve your own changes.\n"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError {
		t.Errorf("write_file through a link to AGENTS.md: %s; want it refused", resultText(res))
	}
	if b, _ := os.ReadFile(filepath.Join(f.ws, "AGENTS.md")); string(b) != orig {
		t.Errorf("AGENTS.md = %q after write_file TODO.md", b)
	}
	res, err = callTool(t.Context(), f.c, "workspace__write_file", map[string]any{"path": "AGENTS.md", "content": "x\n"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(resultText(res), "review-agent-instruction-writes") && !strings.Contains(resultText(res), "standing instructions") {
		t.Errorf("write_file AGENTS.md: %s; want it held for a review (none comes here, so refused)", resultText(res))
	}
}
