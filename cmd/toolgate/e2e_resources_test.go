package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// readResource reads uri through c: the contents' text, or the error.
func readResource(t *testing.T, c *client.Client, uri string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: uri}})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, rc := range res.Contents {
		if tc, ok := rc.(mcp.TextResourceContents); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), nil
}

// TestServeDefaultPackGuardsFileResources attacks, as an agent, an
// upstream that serves any file as a resource (testdata/upstream --files,
// which parses the URI with net/url, as most readers do), under the
// embedded default rules, with a home full of secrets and the audit log
// at a path no pattern names. A secret behind a query or fragment, secret
// stores the resource rule once did not list, toolgate's own audit log, a
// file outside the workspace and a URI naming another host are refused,
// and none of their contents reaches the agent; a file in the workspace
// is served. (Before the pack decided file: resources by their decoded
// path, the query, the fragment, the kubeconfig, the gh token, the audit
// log and the file outside the workspace were all served.)
func TestServeDefaultPackGuardsFileResources(t *testing.T) {
	f := sbSetup(t, "version: 1\nrules: []\n") // the rules file is not used: the pack is the embedded one
	db := filepath.Join(f.dir, "var", "audit.db")
	cfg := writeFile(t, filepath.Dir(f.rules), "toolgate.yaml", fmt.Sprintf("servers:\n  files:\n    command: %q\n    args: [--files]\n"+
		"workspace: {enabled: false, root: %q}\naudit: {path: %q}\nreview: {timeout: 1s, channels: [cli]}\n", upstreamBin, f.ws, db))
	c, _, _ := startStdio(t, cfg, f.env()...)

	inside := "file://" + f.ws + "/main.txt"
	if text, err := readResource(t, c, inside); err != nil || text != "hello from the workspace" {
		t.Fatalf("read %s: %q, %v; want the file", inside, text, err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("no audit log after a read: %v", err)
	}
	// The refusal names the rule: denied at once, or reviewed and unanswered.
	secret, outside, unchecked := "deny-secret-resources", "review-file-resources-outside-workspace", "review-unchecked-file-resources"
	for _, tc := range []struct{ uri, refusal string }{
		{"file://" + f.home + "/.netrc?x", secret},
		{"file://" + f.home + "/.netrc#", secret},
		{"file://" + f.home + "/.kube/config", secret},
		{"file://" + f.home + "/.config/gh/hosts.yml", secret},
		{"file://" + db, secret},
		{"file://" + f.home + "/other-project/.env?", secret},
		{"file://" + f.home + "/.gitconfig", outside},
		{"file://otherhost" + f.ws + "/main.txt", unchecked},
	} {
		text, err := readResource(t, c, tc.uri)
		if err == nil {
			t.Errorf("read %s: served %.80q, want a refusal", tc.uri, text)
			continue
		}
		if !strings.Contains(err.Error(), tc.refusal) {
			t.Errorf("read %s: %v, want a refusal saying %q", tc.uri, err, tc.refusal)
		}
		for _, s := range append(mustNotSee, "Dev Eloper", "hello from the workspace") {
			if strings.Contains(text+err.Error(), s) {
				t.Errorf("read %s: %q reached the agent: %.80q %v", tc.uri, s, text, err)
			}
		}
	}
}
