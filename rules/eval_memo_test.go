package rules_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/rules/corpus"
)

// packCall is a call of the default pack's cases or of a corpus, with
// where it comes from and the workspace it is decided in.
type packCall struct {
	where string
	call  toolgate.Call
	ws    rules.Workspace
}

// packCalls returns the calls of the default pack's cases and of both
// corpora: what the differential tests of evaluation shortcuts decide
// both ways.
func packCalls(t testing.TB) []packCall {
	t.Helper()
	files, err := filepath.Glob("testdata/*cases*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases files: %v", err)
	}
	var out []packCall
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases, err := rules.ParseCases(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			out = append(out, packCall{f + ": " + c.Name, c.Call, c.Workspace})
		}
	}
	cc, err := corpus.Load("../testdata/corpus", "corpus/testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cc {
		out = append(out, packCall{c.Where, c.Call, corpus.Workspace()})
	}
	return out
}

// TestMemoKeepsDecisions decides every case and corpus call, each twice
// and with variations the key must tell apart (confidence, principal,
// annotations), through one Memo per workspace, and requires the
// decisions the set makes without it.
func TestMemoKeepsDecisions(t *testing.T) {
	ctx := context.Background()
	memos := map[string]*rules.Memo{}
	n := 0
	for _, pc := range packCalls(t) {
		c := pc.call
		set := rules.Default().WithWorkspace(pc.ws)
		m := memos[pc.ws.Root+"\x00"+pc.ws.Home]
		if m == nil {
			m = set.Memo(1 << 20)
			memos[pc.ws.Root+"\x00"+pc.ws.Home] = m
		}
		low, high, yes := 0.1, 0.99, true
		for _, v := range []toolgate.Call{c, c, withConf(c, &low), withConf(c, &high),
			func() toolgate.Call { c.Principal = toolgate.Principal{User: "eve", Groups: []string{"ops"}}; return c }(),
			func() toolgate.Call { c.Annotations.ReadOnly = &yes; return c }(),
		} {
			want := set.Evaluate(ctx, v)
			if got := m.Evaluate(ctx, v); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: memo %+v, set %+v", pc.where, got, want)
			}
			n++
		}
	}
	if n < 600 {
		t.Fatalf("only %d calls compared", n)
	}
}

func withConf(c toolgate.Call, p *float64) toolgate.Call { c.Confidence = p; return c }

// TestMemoTimeAndSession checks that the call's time and session are
// part of the key exactly when a rule reads now or session.id.
func TestMemoTimeAndSession(t *testing.T) {
	ctx := context.Background()
	day := func(d int) time.Time { return time.Date(2026, 3, d, 12, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		match string
		a, b  toolgate.Call
	}{
		{`now > timestamp("2026-03-02T00:00:00Z")`, toolgate.Call{Tool: "t", Time: day(1)}, toolgate.Call{Tool: "t", Time: day(3)}},
		{`[1].exists(x, cel.bind(t, now, t.getDayOfMonth() > 1))`, toolgate.Call{Tool: "t", Time: day(1)}, toolgate.Call{Tool: "t", Time: day(3)}},
		{`session.id == "s1"`, toolgate.Call{Tool: "t", SessionID: "s2"}, toolgate.Call{Tool: "t", SessionID: "s1"}},
	} {
		set, err := rules.Parse("t.yaml", []byte("version: 1\ndefault: allow\nrules:\n  - {name: r, match: '"+tc.match+"', action: deny}\n"))
		if err != nil {
			t.Fatal(err)
		}
		m := set.Memo(10)
		if a, b := m.Evaluate(ctx, tc.a), m.Evaluate(ctx, tc.b); a.Action != toolgate.Allow || b.Action != toolgate.Deny {
			t.Errorf("%s: memo decides %s then %s, want allow then deny", tc.match, a.Action, b.Action)
		}
	}
}

// TestMemoKeyCoversCall changes each field of a call in turn: the memo
// must tell the changed call apart (its decision is the set's), except for
// the fields no rule can read. A field added to tools.Call fails here
// until the key (eval_memo.go) and this list say what it is.
func TestMemoKeyCoversCall(t *testing.T) {
	yes, conf := true, 0.5
	base := toolgate.Call{ID: "1", Server: "s", Tool: "t", Name: "s__t", Args: map[string]any{"a": "b"}, Time: time.Unix(1, 0)}
	// Each change must turn the decision of a rule that looks at the field
	// from allow to deny.
	changes := map[string]struct {
		match  string
		change func(*toolgate.Call)
	}{
		"Server":        {`tool.server == "s2"`, func(c *toolgate.Call) { c.Server = "s2" }},
		"Tool":          {`tool.name == "t2"`, func(c *toolgate.Call) { c.Tool = "t2" }},
		"Name":          {`tool.exposed == "x"`, func(c *toolgate.Call) { c.Name = "x" }},
		"Kind":          {`call.kind == "prompt"`, func(c *toolgate.Call) { c.Kind = toolgate.KindPrompt }},
		"Args":          {`args.a == "c"`, func(c *toolgate.Call) { c.Args = map[string]any{"a": "c"} }},
		"Annotations":   {`tool.annotations.?readOnlyHint.orValue(false)`, func(c *toolgate.Call) { c.Annotations.ReadOnly = &yes; c.Pin.State = toolgate.PinBuiltin }},
		"SchemaHash":    {`tool.kind == "other"`, nil},
		"ServerVersion": {`tool.kind == "other"`, nil},
		"Description": {`tool.kind == "shell"`, func(c *toolgate.Call) {
			c.Description = "Run a shell command"
			c.Args = map[string]any{"command": "ls"}
		}},
		"InputSchema": {`tool.kind == "shell"`, func(c *toolgate.Call) {
			c.InputSchema = json.RawMessage(`{"type":"object","properties":{"command":{"type":"string"}}}`)
			c.Args = map[string]any{"command": "ls"}
		}},
		"Pin":        {`tool.pinned`, func(c *toolgate.Call) { c.Pin.State = toolgate.PinBuiltin }},
		"Client":     {`client.name == "x"`, func(c *toolgate.Call) { c.Client.Name = "x" }},
		"Model":      {`model.version == "x"`, func(c *toolgate.Call) { c.Model.Version = "x" }},
		"Confidence": {`confidence.hasValue()`, func(c *toolgate.Call) { c.Confidence = &conf }},
		"Sandbox":    {`tool.sandbox == "x"`, func(c *toolgate.Call) { c.Sandbox = "x" }},
		"SessionID":  {`session.id == "x"`, func(c *toolgate.Call) { c.SessionID = "x" }},
		"Principal":  {`"g" in principal.groups`, func(c *toolgate.Call) { c.Principal.Groups = []string{"g"} }},
		"Time":       {`now > timestamp(5)`, func(c *toolgate.Call) { c.Time = time.Unix(10, 0) }},
		"Meta":       {`meta.?dry_run.orValue(true) == false`, func(c *toolgate.Call) { c.Meta = map[string]any{"dry_run": false} }},
		// Not readable by any rule (Settle is the gate's, set after the
		// decision).
		"ID": {}, "Settle": {},
	}
	// The key spells out the fields of these too.
	for typ, n := range map[reflect.Type]int{reflect.TypeFor[toolgate.Annotations](): 5, reflect.TypeFor[toolgate.Pin](): 3,
		reflect.TypeFor[toolgate.Peer](): 2, reflect.TypeFor[toolgate.Principal](): 3} {
		if typ.NumField() != n {
			t.Errorf("%s has %d fields, the memo key knows %d", typ, typ.NumField(), n)
		}
	}
	ct := reflect.TypeFor[toolgate.Call]()
	for i := range ct.NumField() {
		name := ct.Field(i).Name
		tc, ok := changes[name]
		if !ok {
			t.Errorf("tools.Call.%s: not covered by the memo key (and this test)", name)
			continue
		}
		if tc.change == nil {
			continue // stable per tool: keyed, but no rule reads it directly
		}
		set, err := rules.Parse("t.yaml", []byte("version: 1\ndefault: allow\nrules:\n  - {name: r, match: '"+tc.match+"', action: deny}\n"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := set.Memo(10)
		changed := base
		changed.Args = map[string]any{"a": "b"}
		tc.change(&changed)
		ctx := context.Background()
		if d := m.Evaluate(ctx, base); d.Action != toolgate.Allow {
			t.Errorf("%s: base call decided %s", name, d.Action)
		}
		if d := m.Evaluate(ctx, changed); d.Action != toolgate.Deny {
			t.Errorf("%s: the memo does not tell the changed call apart: %+v", name, d)
		}
	}
}

// FuzzMemo decides fuzzed calls through one memo and without it.
func FuzzMemo(f *testing.F) {
	f.Add("run_command", "workspace", "", `{"command":"go test ./... && git status"}`, 0.5, "alice")
	f.Add("read_file", "workspace", "", `{"path":"../x"}`, -1.0, "")
	f.Add("write_file", "workspace", "", `{"path":"/etc/passwd","content":"x"}`, 0.99, "bob")
	f.Add("query", "db", "", `{"sql":"drop table x"}`, 0.2, "")
	f.Add("shadow", "fs", "resource", `{"uri":"file:///etc/shadow"}`, 0.0, "")
	set := rules.Default().WithWorkspace(corpus.Workspace())
	m := set.Memo(1 << 16)
	f.Fuzz(func(t *testing.T, tool, server, kind, args string, conf float64, user string) {
		var a map[string]any
		if json.Unmarshal([]byte(args), &a) != nil {
			return
		}
		c := toolgate.Call{Tool: tool, Server: server, Name: server + "__" + tool, Kind: kind, Args: a, Principal: toolgate.Principal{User: user}}
		if conf >= 0 {
			c.Confidence = &conf
		}
		want := set.Evaluate(context.Background(), c)
		for range 2 {
			if got := m.Evaluate(context.Background(), c); !reflect.DeepEqual(got, want) {
				t.Fatalf("memo %+v, set %+v", got, want)
			}
		}
	})
}
