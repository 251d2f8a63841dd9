package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPersistenceAndInstructionsHeld: the workspace files that make code
// run later outside the sandbox (Persistence) and agents' instruction
// files (AgentInstructions) stay out of a run's reach: one that exists is
// read-only, whether a file or a directory, and one a run creates is
// taken away after it, not the directory it made on the way (.github).
func TestPersistenceAndInstructionsHeld(t *testing.T) {
	f := newFixture(t)
	existing := map[string]string{
		".pre-commit-config.yaml": "repos: []\n", "CLAUDE.md": "# notes\n", ".husky/pre-commit": "npm test\n",
		".github/dependabot.yml": "version: 2\n",
	}
	for rel, content := range existing {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(f.ws, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(f.ws, rel), content)
	}
	var script []string
	for _, p := range slices.Concat(Persistence, AgentInstructions) {
		script = append(script, `mkdir -p "$(dirname '`+p+`')"; echo PWN > '`+p+`' || echo PWN > '`+p+`/x'`)
	}
	f.run(t, WorkspaceWrite, strings.Join(script, "; ")+"; mv .husky husky2; echo PWN >> .husky/pre-commit")
	for rel, content := range existing {
		if b, err := os.ReadFile(filepath.Join(f.ws, rel)); err != nil || string(b) != content {
			t.Errorf("%s = %q, %v after the run; want %q", rel, b, err, content)
		}
	}
	for _, p := range slices.Concat(Persistence, AgentInstructions) {
		if _, ok := existing[p]; ok || p == ".husky" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(f.ws, p)); err == nil {
			t.Errorf("%s survived the run", p)
		}
		if !f.sb.Protected(p) {
			t.Errorf("Protected(%q) = false: write_file would not refuse it", p)
		}
	}
	// Where there was no .github, the workflows a run makes go; the
	// .github it made, with what else is in it, stays.
	if err := os.RemoveAll(filepath.Join(f.ws, ".github")); err != nil {
		t.Fatal(err)
	}
	f.run(t, WorkspaceWrite, "mkdir -p .github/workflows && echo PWN > .github/workflows/ci.yml && echo '* @me' > .github/CODEOWNERS")
	if _, err := os.Lstat(filepath.Join(f.ws, ".github", "workflows")); err == nil {
		t.Error(".github/workflows, made by the run, survived the run")
	}
	if _, err := os.Lstat(filepath.Join(f.ws, ".github", "CODEOWNERS")); err != nil {
		t.Errorf(".github/CODEOWNERS, no protected path, was taken away with the workflows: %v", err)
	}
	if out, code := f.run(t, WorkspaceWrite, "echo ok > notes.md && mkdir -p src/mise && echo ok > src/mise/x.go"); code != 0 {
		t.Fatalf("an ordinary write failed: %s", out)
	}
}
