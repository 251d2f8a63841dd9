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
	f, db, c := startFilesUpstream(t)

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

// startFilesUpstream starts the built binary under the embedded default
// rules, with a home full of secrets (sbSetup), the audit log at db, a
// path no pattern names, and one upstream, files, that serves any file as
// a resource (testdata/upstream --files) and reads any path with its read
// tool; reviews go unanswered and are refused after a second.
func startFilesUpstream(t *testing.T) (f *sbFixture, db string, c *client.Client) {
	t.Helper()
	f = sbSetup(t, "version: 1\nrules: []\n") // the rules file is not used: the pack is the embedded one
	db = filepath.Join(f.dir, "var", "audit.db")
	cfg := writeFile(t, filepath.Dir(f.rules), "toolgate.yaml", fmt.Sprintf("servers:\n  files:\n    command: %q\n    args: [--files]\n"+
		"workspace: {enabled: false, root: %q}\naudit: {path: %q}\nreview: {timeout: 1s, channels: [cli]}\n", upstreamBin, f.ws, db))
	c, _, _ = startStdio(t, cfg, f.env()...)
	return f, db, c
}

// TestServeDefaultPackReadsProcPaths attacks, as an agent, the files
// upstream with paths through /proc links, under the embedded default
// rules. A path through the upstream's root (/proc/self/root) is judged
// as the path it names: toolgate's own files and /etc/shadow are denied
// as they are named directly, and a workspace file is served, which shows
// the upstream reads such paths. A path through its working directory is
// denied, and the refusal shows it as written. (Before, each denied path
// here was only reviewed, and the one through the working directory was
// shown cleaned to a harmless /proc/self/... path.)
func TestServeDefaultPackReadsProcPaths(t *testing.T) {
	f, db, c := startFilesUpstream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	read := func(p string) (string, bool) {
		res, err := callTool(ctx, c, "files__read", map[string]any{"path": p}, "")
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		return resultText(res), res.IsError
	}
	if text, refused := read("/proc/self/root" + f.ws + "/main.txt"); refused || text != "hello from the workspace" {
		t.Errorf("read of a workspace file through /proc/self/root: %.80q (refused %v); want the file", text, refused)
	}
	// shows is the path the refusal names: the path through the root as
	// what it names, the one through the working directory as written.
	for _, tc := range []struct{ path, shows string }{
		{"/proc/self/root" + f.home + "/.config/toolgate/x.txt", "(" + f.home + "/.config/toolgate/x.txt)"},
		{"/proc/self/root" + db, "(" + db + ")"},
		{"/proc/thread-self/root/etc/shadow", "(/etc/shadow)"},
		{"/proc/self/cwd/../../.." + f.home + "/.config/toolgate/x.txt", "(/proc/self/cwd/../../.." + f.home + "/.config/toolgate/x.txt)"},
	} {
		text, refused := read(tc.path)
		if !refused || !strings.Contains(text, "deny-secret-paths") || !strings.Contains(text, tc.shows) {
			t.Errorf("read %s: %.300q (refused %v), want a refusal by deny-secret-paths naming %s", tc.path, text, refused, tc.shows)
		}
		for _, s := range append(mustNotSee, "toolgate dir") {
			if strings.Contains(text, s) {
				t.Errorf("read %s: %q reached the agent", tc.path, s)
			}
		}
	}
	for _, uri := range []string{"file:///proc/self/root" + f.home + "/.config/toolgate/x.txt", "file:///proc/1/root" + db} {
		if text, err := readResource(t, c, uri); err == nil || !strings.Contains(err.Error(), "deny-secret-resources") {
			t.Errorf("read %s: %.80q, %v; want a refusal by deny-secret-resources", uri, text, err)
		}
	}
}
