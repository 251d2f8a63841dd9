package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/config"
)

func TestServerBaseEnv(t *testing.T) {
	got := serverBaseEnv(mapEnv{
		"PATH": "/usr/bin", "HOME": "/home/me", "LANG": "C.UTF-8", "LC_TIME": "en_GB.UTF-8", "TERM": "",
		"SLACK_BOT_TOKEN": "xoxb-secret", "TOOLGATE_AUTH_TOKEN": "bearer", "AWS_SECRET_ACCESS_KEY": "aws", "LC_EVIL": "x",
	})
	want := append([]string{"PATH=/usr/bin", "HOME=/home/me", "LANG=C.UTF-8", "LC_TIME=en_GB.UTF-8"}, gitEnv...)
	if !slices.Equal(got, want) {
		t.Errorf("serverBaseEnv = %q, want %q", got, want)
	}
}

// TestSandboxEnvWithoutGitConfig: sandboxed commands get the base
// allowlist but not the git config stdio servers get (gitEnv), which would
// hide a submodule's changes from git commit inside the sandbox.
func TestSandboxEnvWithoutGitConfig(t *testing.T) {
	env := mapEnv{"PATH": "/usr/bin", "LANG": "C.UTF-8"}
	got := sandboxEnv(t.Context(), config.Sandbox{}, env, "/home/sb", "/cache", &expander{env: env})
	if !slices.Contains(got, "LANG=C.UTF-8") || !slices.Contains(got, "HOME=/home/sb") {
		t.Fatalf("sandboxEnv = %q, want the allowlist and the sandbox's home", got)
	}
	for _, kv := range got {
		if strings.HasPrefix(kv, "GIT_CONFIG_") {
			t.Errorf("sandboxEnv has %s", kv)
		}
	}
}
