package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeDefaultPackPersistenceNames: with the embedded default rules,
// the attack round's runs, allowed without a human because they name no
// file the rules know (python3 -c with a computed name), create or rewrite
// files that run code outside the sandbox later (pre-commit's config,
// husky's hooks before core.hooksPath is set, a dev container's
// initializeCommand) or that every later agent session reads as
// instructions (CLAUDE.md, AGENTS.md). None of it stays; the same writes
// through write_file are denied, or held for review.
func TestServeDefaultPackPersistenceNames(t *testing.T) {
	f := sbSetup(t, "")
	existing := map[string]string{"CLAUDE.md": "# notes\n", ".pre-commit-config.yaml": "repos: []\n"}
	for rel, content := range existing {
		if err := os.WriteFile(filepath.Join(f.ws, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)
	created := []string{".husky/pre-commit", ".devcontainer/devcontainer.json", "AGENTS.md", "lefthook.yml", ".nvim.lua", ".github/copilot-instructions.md",
		"opencode.json", ".kiro/settings/mcp.json", "AGENT.md", ".goosehints", ".github/agents/x.agent.md", ".forgejo/workflows/ci.yml",
		".gitpod.yml", ".vimrc", ".dir-locals.el"}
	for _, rel := range append([]string{"CLAUDE.md", ".pre-commit-config.yaml"}, created...) {
		// The name is split in its first component, so no rule sees it.
		half := 2
		cmd := `python3 -c "import os; n='` + rel[:half] + `'+'` + rel[half:] + `'; os.makedirs(os.path.dirname(n) or '.', exist_ok=True); ` +
			`open(n,'w').write('PWNED')"`
		out, _ := f.run(t, cmd)
		if !strings.Contains(out, "sandbox: ") {
			t.Errorf("%s did not run (the rules no longer allow it, so this test shows nothing):\n%s", cmd, out)
		}
	}
	for rel, content := range existing {
		if b, err := os.ReadFile(filepath.Join(f.ws, rel)); err != nil || string(b) != content {
			t.Errorf("%s = %q, %v after the runs; want %q", rel, b, err, content)
		}
	}
	for _, rel := range created {
		if _, err := os.Lstat(filepath.Join(f.ws, rel)); err == nil {
			t.Errorf("%s, created by a run, survived it", rel)
		}
	}
	for _, tc := range []struct{ path, want string }{
		{".devcontainer/devcontainer.json", "where code runs later"},
		{".pre-commit-config.yaml", "where code runs later"},
		{"AGENTS.md", "standing instructions"},
	} {
		res, err := callTool(t.Context(), f.c, "workspace__write_file",
			map[string]any{"path": tc.path, "content": `{"initializeCommand":"touch /tmp/PWNED"}`, "create_dirs": true}, "")
		if err != nil {
			t.Fatal(err)
		}
		if !res.IsError || !strings.Contains(resultText(res), tc.want) {
			t.Errorf("write_file %s: %v %s; want it refused saying %q", tc.path, res.IsError, resultText(res), tc.want)
		}
		if b, _ := os.ReadFile(filepath.Join(f.ws, tc.path)); strings.Contains(string(b), "initializeCommand") {
			t.Errorf("write_file wrote %s", tc.path)
		}
	}
}

// TestServeDefaultPackSecretCopies: with the embedded default rules, a run
// that reads an editor's copy of a secret file, or a secret file of a
// kind the rules learnt late (.dev.vars, serviceAccountKey.json), by a
// computed name finds it empty; read_file by name is refused.
func TestServeDefaultPackSecretCopies(t *testing.T) {
	f := sbSetup(t, "")
	secrets := []string{".env~", "#.env#", "deploy/server.pem~", "deploy/.server.pem.swp", "prod.pem.orig", ".npmrc.bak",
		".dev.vars", "serviceAccountKey.json", "ios/AuthKey_ABC123DEF4.p8",
		"deploy/.server.pem.un~", ".netrc.un~", ".server.pem.kate-swp", ".env.tmp", ".env (copy)", "env.bak",
		"prod.env", ".env-local", ".env_prod", "infra/terraform.tfvars", "infra/prod.auto.tfvars", "kubeconfig.yaml",
		"clusters/prod.kubeconfig", ".streamlit/secrets.toml"}
	for _, rel := range secrets {
		p := filepath.Join(f.ws, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("COPY-SECRET "+rel), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range []string{"README.md~", "app.example.env"} {
		if err := os.WriteFile(filepath.Join(f.ws, rel), []byte("AN ORDINARY BACKUP"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)
	var names []string
	for _, rel := range append(secrets, "README.md~", "app.example.env") {
		// In hex, so the rules see no name of the run's.
		names = append(names, hexName(rel))
	}
	cmd := `python3 -c "
for n in [` + strings.Join(names, ", ") + `]:
    try: print(n, open(n).read())
    except OSError as e: print(n, e)"`
	out, _ := f.run(t, cmd)
	if !strings.Contains(out, "sandbox: ") {
		t.Fatalf("the run did not happen (the rules no longer allow it, so this test shows nothing):\n%s", out)
	}
	if strings.Contains(out, "COPY-SECRET") {
		t.Errorf("a run read a copy of a secret:\n%s", out)
	}
	if strings.Count(out, "AN ORDINARY BACKUP") != 2 {
		t.Errorf("an ordinary backup or example was masked too:\n%s", out)
	}
	for _, rel := range secrets {
		res, err := callTool(t.Context(), f.c, "workspace__read_file", map[string]any{"path": rel}, "")
		if err != nil {
			t.Fatal(err)
		}
		if !res.IsError || strings.Contains(resultText(res), "COPY-SECRET") {
			t.Errorf("read_file %s was not refused: %s", rel, resultText(res))
		}
	}
}
