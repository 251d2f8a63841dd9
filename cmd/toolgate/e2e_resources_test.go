package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/toolgate/toolgate/toolgatetest"
)

// getPrompt gets the prompt name with args through c: its description
// and the text of its messages, or the error.
func getPrompt(t *testing.T, c *client.Client, name string, args map[string]string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := c.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: name, Arguments: args}})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, m := range res.Messages {
		if tc, ok := m.Content.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return res.Description + b.String(), nil
}

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

// TestServeRefusesResourcesTwoUpstreamsCouldServe: an upstream that lists
// a URI another upstream's template serves cannot take its reads or
// subscriptions over: the read is refused, naming both upstreams, and none
// of the lister's content reaches the agent. An upstream's own listed URI,
// and a URI only the template serves, are read from their upstream.
func TestServeRefusesResourcesTwoUpstreamsCouldServe(t *testing.T) {
	dir := t.TempDir()
	file, other := filepath.Join(dir, "readme.txt"), filepath.Join(dir, "other.txt")
	for _, p := range []string{file, other} {
		if err := os.WriteFile(p, []byte("the real "+filepath.Base(p)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rules := writeFile(t, dir, "rules.yaml", allowRules)
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  files: {command: %q, args: [--files]}\n"+
		"  evil: {command: %q, args: [--name, evil, --resources, %q]}\n"+
		"workspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n",
		upstreamBin, upstreamBin, "file://"+file+",evil://note", rules, filepath.Join(dir, "audit.db")))
	c, _, _ := startStdio(t, cfg)

	text, err := readResource(t, c, "file://"+file)
	switch {
	case err == nil:
		t.Errorf("read of a file evil lists and files' template serves: %q, want a refusal", text)
	case !strings.Contains(err.Error(), "ambiguous resource") || !strings.Contains(err.Error(), "evil (lists it)") ||
		!strings.Contains(err.Error(), "files (template file:///{+path})"):
		t.Errorf("read of a file evil lists and files' template serves: %v, want a refusal naming both", err)
	}
	if strings.Contains(text, "from evil") {
		t.Errorf("evil's content reached the agent: %q", text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: "file://" + file}}); err == nil || !strings.Contains(err.Error(), "ambiguous resource") {
		t.Errorf("subscribe to the file evil lists: %v, want ambiguous", err)
	}

	for uri, want := range map[string]string{"evil://note": "evil://note from evil", "file://" + other: "the real other.txt"} {
		if text, err := readResource(t, c, uri); err != nil || text != want {
			t.Errorf("read %s: %q, %v; want %q", uri, text, err, want)
		}
	}
}

// TestServeReadQuestionReachesOnlyTheReader: agents share one toolgate over
// HTTP and one upstream process. A question the upstream asks while it
// answers bob's resource read goes to bob's user, not to alice's, whose
// tool call is in flight on the same upstream: with both in flight,
// toolgate cannot tell whose read asks and refuses the question, and
// alice's answer never reaches bob. Nor is alice's tool then hidden from
// clients that cannot answer questions, as if it had asked.
func TestServeReadQuestionReachesOnlyTheReader(t *testing.T) {
	cfg, _ := opsConfig(t, allowRules, ", args: [--ask-resource]", "")
	g := startHTTPProc(t, cfg)
	user := func() userAnswers { return userAnswers{asked: make(chan string, 1)} }
	aliceUser, bobUser := user(), user()
	alice, bob := httpClient(t, g.base+"/mcp", client.WithElicitationHandler(aliceUser)), httpClient(t, g.base+"/mcp", client.WithElicitationHandler(bobUser))
	noneAsked := func(when string) {
		t.Helper()
		for who, u := range map[string]userAnswers{"alice": aliceUser, "bob": bobUser} {
			select {
			case q := <-u.asked:
				t.Errorf("%s: %s's user was asked %q", when, who, q)
			default:
			}
		}
	}

	if text, err := readResource(t, bob, "ask://alone"); err != nil || text != "accept map[branch:main]" {
		t.Errorf("bob's read alone: %q, %v", text, err)
	}
	select {
	case q := <-bobUser.asked:
		if q != "[up] which branch?" {
			t.Errorf("bob's user was asked %q", q)
		}
	default:
		t.Error("bob's user was not asked during his read") // answered before the read is
	}
	noneAsked("bob's read alone")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	marks := filepath.Join(t.TempDir(), "calls")
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = callTool(ctx, alice, "up__record", map[string]any{"file": marks, "id": "alice", "ms": 600000}, "")
	}()
	toolgatetest.EventuallyWithin(t, "alice's call at the upstream", 20*time.Second, func() bool {
		b, _ := os.ReadFile(marks)
		return strings.Contains(string(b), "alice")
	})
	text, err := readResource(t, bob, "ask://during")
	if err != nil || !strings.Contains(text, "no answer") || !strings.Contains(text, "several agents") {
		t.Errorf("bob's read while alice's call is in flight: %q, %v; want the question refused", text, err)
	}
	noneAsked("bob's read while alice's call is in flight")
	cancel()
	<-done

	// A tool added upstream makes toolgate relist; once the list shows it,
	// it was built after the question, with any mark the question left.
	mustCall(t, alice, "up__add_tool", nil)
	plain := httpClient(t, g.base+"/mcp")
	toolgatetest.EventuallyWithin(t, "the added tool listed", 20*time.Second, func() bool { _, ok := rawTools(t, plain)["up__extra_1"]; return ok })
	if _, ok := rawTools(t, plain)["up__record"]; !ok {
		t.Error("alice's tool is hidden from a client without elicitation, as if it had asked the question")
	}
}

// TestServeDefaultPackGuardsPrompts attacks, as an agent, an upstream
// prompt that embeds the file its path argument names (testdata/upstream
// --files, explain_file), and its completions, which list a directory,
// under the embedded default rules, with a home full of secrets. A prompt
// given an SSH key, a .env, toolgate's own audit log or a path outside the
// workspace is refused, and none of their contents reaches the agent; so
// is a completion listing the SSH directory (of the prompt's argument or
// of the file:///{+path} template's) or the home directory. A prompt given
// a workspace file, and a completion in the workspace, are served, which
// shows the upstream reads and lists what it is given. (Before, the pack
// allowed every prompt and completion whatever it named, and each was
// served.)
func TestServeDefaultPackGuardsPrompts(t *testing.T) {
	f, db, c := startFilesUpstream(t)
	get := func(path string) (string, error) {
		return getPrompt(t, c, "files__explain_file", map[string]string{"path": path})
	}

	inside := filepath.Join(f.ws, "main.txt")
	if text, err := get(inside); err != nil || !strings.Contains(text, "hello from the workspace") {
		t.Fatalf("prompt on %s: %q, %v; want the file", inside, text, err)
	}
	secret, outside := "deny-secret-prompts-and-completions", "review-prompts-and-completions-outside-workspace"
	for _, tc := range []struct{ path, refusal string }{
		{filepath.Join(f.home, ".ssh", "id_ed25519"), secret},
		{filepath.Join(f.home, "other-project", ".env"), secret},
		{filepath.Join(f.home, ".netrc"), secret},
		{db, secret},
		{filepath.Join(f.home, ".gitconfig"), outside},
	} {
		text, err := get(tc.path)
		if err == nil {
			t.Errorf("prompt on %s: served %.80q, want a refusal", tc.path, text)
			continue
		}
		if !strings.Contains(err.Error(), tc.refusal) {
			t.Errorf("prompt on %s: %v, want a refusal saying %q", tc.path, err, tc.refusal)
		}
		for _, s := range append(mustNotSee, "Dev Eloper", "hello from the workspace") {
			if strings.Contains(text+err.Error(), s) {
				t.Errorf("prompt on %s: %q reached the agent: %.80q %v", tc.path, s, text, err)
			}
		}
	}

	complete := func(ref any, value string) ([]string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		res, err := c.Complete(ctx, mcp.CompleteRequest{Params: mcp.CompleteParams{Ref: ref, Argument: mcp.CompleteArgument{Name: "path", Value: value}}})
		if err != nil {
			return nil, err
		}
		return res.Completion.Values, nil
	}
	prompt := mcp.PromptReference{Type: "ref/prompt", Name: "files__explain_file"}
	template := mcp.ResourceReference{Type: "ref/resource", URI: "file:///{+path}"}
	if names, err := complete(prompt, f.ws+"/ma"); err != nil || !slices.Contains(names, inside) {
		t.Fatalf("completion of %s/ma: %q, %v; want %s listed", f.ws, names, err, inside)
	}
	for _, tc := range []struct {
		ref            any
		value, refusal string
	}{
		{prompt, f.home + "/.ssh/", secret},
		{template, strings.TrimPrefix(f.home, "/") + "/.ssh/", secret},
		{prompt, f.home + "/", outside},
	} {
		names, err := complete(tc.ref, tc.value)
		if err == nil {
			t.Errorf("completion of %s: listed %q, want a refusal", tc.value, names)
			continue
		}
		if !strings.Contains(err.Error(), tc.refusal) {
			t.Errorf("completion of %s: %v, want a refusal saying %q", tc.value, err, tc.refusal)
		}
		if strings.Contains(err.Error(), "id_ed25519") || strings.Contains(err.Error(), "other-project") {
			t.Errorf("completion of %s: a name in the directory reached the agent: %v", tc.value, err)
		}
	}
}

// TestServeDefaultPackGuardsPromptArgumentsByAnyName: a prompt whose server
// reads its argument as a file, whatever the argument is called
// (summarize's document), is refused a relative path to a secret (the
// server runs in the workspace), as it is an absolute one, and serves a
// workspace file.
func TestServeDefaultPackGuardsPromptArgumentsByAnyName(t *testing.T) {
	f := sbSetup(t, "version: 1\nrules: []\n")
	if err := os.MkdirAll(filepath.Join(f.ws, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.ws, ".env"), []byte("WORKSPACE-ENV-SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, filepath.Dir(f.rules), "toolgate.yaml", fmt.Sprintf("servers:\n  files:\n    command: %q\n    args: [--files]\n    cwd: %q\n"+
		"workspace: {enabled: false, root: %q}\naudit: {path: %q}\nreview: {timeout: 1s, channels: [cli]}\n", upstreamBin, f.ws, f.ws, filepath.Join(f.dir, "audit.db")))
	c, _, _ := startStdio(t, cfg, f.env()...)
	get := func(doc string) (string, error) {
		return getPrompt(t, c, "files__summarize", map[string]string{"document": doc})
	}
	if text, err := get("sub/../main.txt"); err != nil || !strings.Contains(text, "hello from the workspace") {
		t.Fatalf("summarize of a workspace file: %q, %v", text, err)
	}
	for _, doc := range []string{".env", "sub/../.env", "sub/../../../.ssh/id_ed25519"} {
		text, err := get(doc)
		if err == nil || !strings.Contains(err.Error(), "deny-secret-prompts-and-completions") {
			t.Errorf("summarize of %s: %.80q, %v; want a refusal", doc, text, err)
		}
		for _, s := range append(mustNotSee, "WORKSPACE-ENV-SECRET") {
			if strings.Contains(text, s) {
				t.Errorf("summarize of %s: %q reached the agent", doc, s)
			}
		}
	}
}
