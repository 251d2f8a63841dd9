package main

import (
	"testing"

	"github.com/toolgate/toolgate/config"
)

// TestWorkspaceSecretVisible: sandbox.workspace_secrets_visible takes the
// paths it matches out of the secret class, a directory by its name or by
// "dir/**", and nothing else; visible turns the class off.
func TestWorkspaceSecretVisible(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte("sandbox: {workspace_secrets_visible: ['testdata/**/*.key', 'fixtures/.ssh/**', .aws]}"))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := workspaceSecret(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{
		"testdata/server.key": false, "testdata/tls/ca.key": false, "fixtures/.ssh": false, ".aws": false,
		"server.key": true, ".env": true, "testdata/.env": true, "fixtures/.ssh/id_rsa": false, "fixtures/id_rsa": true, "sub/.aws": true,
	} {
		if got := secret(rel); got != want {
			t.Errorf("secret(%q) = %v, want %v", rel, got, want)
		}
	}
	cfg, err = config.Parse("c.yaml", []byte("sandbox: {workspace_secrets: visible, workspace_secrets_visible: [x]}"))
	if err != nil {
		t.Fatal(err)
	}
	if secret, err := workspaceSecret(cfg); secret != nil || err != nil {
		t.Errorf("workspace_secrets: visible still masks (%v)", err)
	}
}
