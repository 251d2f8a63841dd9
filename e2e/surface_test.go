package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// denyBlobs allows everything but reading server-everything's blob resources.
const denyBlobs = `version: 1
default: allow
rules:
  - name: no-blob-resources
    match: 'call.kind == "resource" && resource.uri.startsWith("demo://resource/dynamic/blob/")'
    action: deny
    reason: "no blobs"
  - name: ask-for-features
    match: 'call.kind == "resource" && resource.uri.endsWith("/features.md")'
    action: review
    reason: "features are secret"
`

const (
	uriDoc      = "demo://resource/static/document/architecture.md"
	uriFeatures = "demo://resource/static/document/features.md"
	uriText1    = "demo://resource/dynamic/text/1"
	uriText3    = "demo://resource/dynamic/text/3"
	uriBlob     = "demo://resource/dynamic/blob/1"
	tplText     = "demo://resource/dynamic/text/{resourceId}"
	promptArgs  = "everything__args-prompt"
	promptCompl = "everything__completable-prompt"
)

// surfaceAnswer is the part of client.mjs's answers the surface steps add.
type surfaceAnswer struct {
	Capabilities map[string]any   `json:"capabilities"`
	Instructions string           `json:"instructions"`
	Resources    []map[string]any `json:"resources"`
	Templates    []map[string]any `json:"resourceTemplates"`
	Prompts      []map[string]any `json:"prompts"`
	Result       struct {
		Contents []struct {
			URI  string `json:"uri"`
			Text string `json:"text"`
		} `json:"contents"`
		Messages []struct {
			Content struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"messages"`
		Completion struct {
			Values []string `json:"values"`
		} `json:"completion"`
	} `json:"result"`
}

func (c *tsClient) surface(step map[string]any) (tsAnswer, surfaceAnswer) {
	c.t.Helper()
	a := c.must(step)
	var s surfaceAnswer
	if err := json.Unmarshal(a.Raw, &s); err != nil {
		c.t.Fatalf("%v: %v", step, err)
	}
	return a, s
}

func field(items []map[string]any, key string) []string {
	var out []string
	for _, it := range items {
		if s, ok := it[key].(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// surfaceFixture is newFixture with denyBlobs and a review hold of 1s.
func surfaceFixture(t *testing.T) *fixture {
	t.Helper()
	fx := newFixture(t, denyBlobs)
	f, err := os.OpenFile(fx.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("review:\n  hold: 1s\n"); err != nil {
		t.Fatal(err)
	}
	return fx
}

// exerciseSurface runs everything but tools through toolgate with one
// client: lists, reads (one denied by rule), prompts, completion.
func exerciseSurface(t *testing.T, c *tsClient, transport map[string]any) {
	t.Helper()
	_, conn := c.surface(map[string]any{"op": "connect", "transport": transport})
	for _, cap := range []string{"resources", "prompts", "logging", "completions"} {
		if conn.Capabilities[cap] == nil {
			t.Errorf("capability %s not advertised: %v", cap, conn.Capabilities)
		}
	}
	if res, _ := conn.Capabilities["resources"].(map[string]any); res["subscribe"] != true {
		t.Errorf("resources.subscribe not advertised: %v", conn.Capabilities)
	}
	if !strings.Contains(conn.Instructions, `"everything"`) || !strings.Contains(conn.Instructions, "Everything Server") {
		t.Errorf("initialize instructions lack server-everything's, under its name: %q", conn.Instructions)
	}

	_, ls := c.surface(map[string]any{"op": "listResources"})
	i := slices.Index(field(ls.Resources, "uri"), uriDoc)
	if i < 0 {
		t.Fatalf("resources/list lacks %s: %v", uriDoc, field(ls.Resources, "uri"))
	}
	if name, _ := ls.Resources[i]["name"].(string); !strings.HasPrefix(name, "everything__") {
		t.Errorf("resource %s is named %q, want the everything__ prefix", uriDoc, name)
	}
	_, lt := c.surface(map[string]any{"op": "listResourceTemplates"})
	if tpls := field(lt.Templates, "uriTemplate"); !slices.Contains(tpls, tplText) || slices.Contains(tpls, "{+uri}") {
		t.Errorf("resources/templates/list = %v, want %s (and no toolgate-internal template)", tpls, tplText)
	}

	if _, r := c.surface(map[string]any{"op": "readResource", "uri": uriDoc}); len(r.Result.Contents) != 1 || r.Result.Contents[0].URI != uriDoc ||
		!strings.Contains(r.Result.Contents[0].Text, "Architecture") {
		t.Errorf("read %s: %+v", uriDoc, r.Result.Contents)
	}
	if _, r := c.surface(map[string]any{"op": "readResource", "uri": uriText3}); len(r.Result.Contents) != 1 ||
		!strings.Contains(r.Result.Contents[0].Text, "Resource 3") {
		t.Errorf("read %s (through a template): %+v", uriText3, r.Result.Contents)
	}
	if a := c.do(map[string]any{"op": "readResource", "uri": uriBlob}); a.OK || !strings.Contains(a.Error, "no-blob-resources") {
		t.Errorf("read %s = %+v, want a refusal naming rule no-blob-resources", uriBlob, a)
	}
	// A read decided review waits for a reviewer; nobody answers within
	// the hold, so it returns pending without having run.
	if a := c.do(map[string]any{"op": "readResource", "uri": uriFeatures}); a.OK || !strings.Contains(a.Error, "human review") ||
		strings.Contains(a.Error, "Server Features") {
		t.Errorf("read %s = %+v, want it held for review, unread", uriFeatures, a)
	}

	_, lp := c.surface(map[string]any{"op": "listPrompts"})
	if names := field(lp.Prompts, "name"); !slices.Contains(names, promptArgs) || !slices.Contains(names, promptCompl) {
		t.Errorf("prompts/list = %v, want %s and %s", names, promptArgs, promptCompl)
	}
	if _, p := c.surface(map[string]any{"op": "getPrompt", "name": promptArgs, "arguments": map[string]any{"city": "Paris"}}); len(p.Result.Messages) == 0 ||
		!strings.Contains(p.Result.Messages[0].Content.Text, "Paris") {
		t.Errorf("prompts/get %s: %+v", promptArgs, p.Result.Messages)
	}
	_, cm := c.surface(map[string]any{"op": "complete", "ref": map[string]any{"type": "ref/prompt", "name": promptCompl},
		"argument": map[string]any{"name": "department", "value": "Eng"}})
	if !slices.Contains(cm.Result.Completion.Values, "Engineering") {
		t.Errorf("completion/complete = %v, want Engineering", cm.Result.Completion.Values)
	}
}

// awaitNotifications polls c until it has received a notifications/message
// from server-everything and a notifications/resources/updated for uri, and
// returns them all.
func awaitNotifications(t *testing.T, c *tsClient, uri string) []map[string]any {
	t.Helper()
	var all []map[string]any
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		all = append(all, c.must(map[string]any{"op": "notifications"}).Notifications...)
		var logged, updated bool
		for _, n := range all {
			p, _ := n["params"].(map[string]any)
			switch n["method"] {
			case "notifications/message":
				logged = logged || p["logger"] == "everything"
			case "notifications/resources/updated":
				updated = updated || p["uri"] == uri
			}
		}
		if logged && updated {
			return all
		}
		c.must(map[string]any{"op": "sleep", "ms": 500})
	}
	t.Fatalf("within 45s the client did not get both a log message from everything and an update of %s: %v", uri, all)
	return nil
}

// auditKinds checks that the audit log holds the surface's gated calls with
// their kinds, and that its chain verifies.
func auditKinds(t *testing.T, db string) {
	t.Helper()
	out, err := exec.Command(harness.bin, "audit", "export", "--db", db, "--format", "jsonl").Output()
	if err != nil {
		t.Fatalf("toolgate audit export: %v", err)
	}
	type record struct {
		Kind   string         `json:"kind"`
		Server string         `json:"server"`
		Args   map[string]any `json:"args"`
		Rule   string         `json:"rule"`
		Action string         `json:"action"`
		Status string         `json:"status"`
	}
	got := map[string]record{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit export line %q: %v", line, err)
		}
		key := r.Kind
		if uri, _ := r.Args["uri"].(string); r.Kind == "resource" {
			key += " " + uri
		}
		got[key] = r
	}
	for key, want := range map[string]record{
		"resource " + uriDoc:      {Kind: "resource", Server: "everything", Action: "allow", Status: "ok"},
		"resource " + uriBlob:     {Kind: "resource", Server: "everything", Action: "deny", Rule: "no-blob-resources", Status: "refused"},
		"resource " + uriFeatures: {Kind: "resource", Server: "everything", Action: "review", Rule: "ask-for-features", Status: "pending"},
		"prompt":                  {Kind: "prompt", Server: "everything", Action: "allow", Status: "ok"},
		"completion":              {Kind: "completion", Server: "everything", Action: "allow", Status: "ok"},
	} {
		r, ok := got[key]
		if !ok || r.Kind != want.Kind || r.Server != want.Server || r.Action != want.Action || r.Rule != want.Rule || r.Status != want.Status {
			t.Errorf("audit record %q = %+v (present %v), want %+v\n%s", key, r, ok, want, out)
		}
	}
	if out, err := exec.Command(harness.bin, "audit", "verify", "--db", db).CombinedOutput(); err != nil {
		t.Errorf("toolgate audit verify: %v\n%s", err, out)
	}
}

// TestSurfaceStdio: resources, templates, prompts, completions, logging and
// subscriptions through toolgate on stdio, gated and audited.
func TestSurfaceStdio(t *testing.T) {
	t.Parallel()
	fx := surfaceFixture(t)
	c := newTSClient(t)
	exerciseSurface(t, c, stdioTransport(fx))

	c.must(map[string]any{"op": "setLevel", "level": "debug"})
	c.must(map[string]any{"op": "readResource", "uri": uriText1}) // a session subscribes to what it has read
	c.must(map[string]any{"op": "subscribe", "uri": uriText1})
	c.must(call("everything__toggle-simulated-logging", nil))
	c.must(call("everything__toggle-subscriber-updates", nil))
	awaitNotifications(t, c, uriText1)
	c.must(map[string]any{"op": "close"}) // toolgate exits; its audit log is complete
	auditKinds(t, filepath.Join(fx.dir, "audit.db"))
}

// TestSurfaceHTTP: the same over streamable HTTP, where sessions share one
// upstream connection: subscriptions and log messages reach only the
// sessions that asked for them.
func TestSurfaceHTTP(t *testing.T) {
	t.Parallel()
	fx := surfaceFixture(t)
	g := startHTTP(t, fx, "")
	a := newTSClient(t)
	exerciseSurface(t, a, httpTransport(g, ""))

	// b is connected all along, but neither subscribes nor sets a level.
	b := newTSClient(t)
	b.must(map[string]any{"op": "connect", "transport": httpTransport(g, "")})

	a.must(map[string]any{"op": "setLevel", "level": "debug"})
	a.must(map[string]any{"op": "readResource", "uri": uriText1}) // a session subscribes to what it has read
	a.must(map[string]any{"op": "subscribe", "uri": uriText1})
	a.must(call("everything__toggle-simulated-logging", nil))
	a.must(call("everything__toggle-subscriber-updates", nil))
	awaitNotifications(t, a, uriText1)
	// a has its updates and logs, which the upstream sent to toolgate's one
	// connection: b, on the same toolgate, must have none of them.
	for _, n := range b.must(map[string]any{"op": "notifications"}).Notifications {
		if n["method"] == "notifications/message" || n["method"] == "notifications/resources/updated" {
			t.Errorf("a session that neither subscribed nor set a log level got %v", n)
		}
	}
	a.must(map[string]any{"op": "unsubscribe", "uri": uriText1})
	a.must(map[string]any{"op": "close"})
	b.must(map[string]any{"op": "close"})
	g.stop(t)
	auditKinds(t, filepath.Join(fx.dir, "audit.db"))
}
