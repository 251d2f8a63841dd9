package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
)

// TestServeReviewShowsMeta: a call's _meta goes upstream with its
// arguments, so the reviewer sees it and the audit log keeps it, redacted
// and made visible as the arguments are; what toolgate reads itself or
// does not forward (its own keys, the protocol's, the progress token) is
// neither shown nor recorded as _meta.
func TestServeReviewShowsMeta(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  channels: [cli]\n")
	c, _, _ := startStdio(t, cfg)
	secret := "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345"
	req := mcp.CallToolRequest{}
	req.Params.Name = "up__echo"
	req.Params.Arguments = map[string]any{"text": "ship it"}
	req.Params.Meta = &mcp.Meta{ProgressToken: "p-1", AdditionalFields: map[string]any{
		"dry_run": false, "api_key": secret, "note": "a\u202eb",
		"toolgate/confidence": 0.5, "io.modelcontextprotocol/x": "per hop",
	}}
	done := make(chan struct{})
	var (
		res *mcp.CallToolResult
		err error
	)
	go func() {
		defer close(done)
		res, err = c.CallTool(t.Context(), req)
	}()
	ids := rvWaitPending(t, db, 1)

	// What reviewers and the log see of the key: how long it was.
	const mask = "[REDACTED 40 chars — not shown]"
	const shown = `_meta {"api_key":"` + mask + `","dry_run":false,"note":"a\u202eb"}`
	list := rvCLI(t, nil, "review", "list", "--db", db)
	if !strings.Contains(list, shown) {
		t.Errorf("review list does not show the _meta %s:\n%s", shown, list)
	}
	var ps []toolgate.Pending
	pendingJSON := rvCLI(t, nil, "review", "list", "--db", db, "--output", "json")
	if err := json.Unmarshal([]byte(pendingJSON), &ps); err != nil || len(ps) != 1 {
		t.Fatalf("review list --output json: %v %v", ps, err)
	}
	if m := ps[0].Call.Meta; len(m) != 3 || m["dry_run"] != false || m["api_key"] != mask {
		t.Errorf("review list --output json: _meta %v", m)
	}
	approved := rvCLI(t, nil, "review", "approve", ids[0], "--db", db)
	if !strings.Contains(approved, shown) {
		t.Errorf("review approve does not say which _meta it approved:\n%s", approved)
	}
	<-done
	if err != nil || res.IsError || resultText(res) != "ship it" {
		t.Fatalf("the approved call: %v %v", err, res)
	}

	show := rvCLI(t, nil, "audit", "show", ids[0], "--db", db)
	for _, want := range []string{"_meta:", `"dry_run": false`, `"api_key": "` + mask + `"`, `"note": "a\u202eb"`} {
		if !strings.Contains(show, want) {
			t.Errorf("audit show lacks %q:\n%s", want, show)
		}
	}
	// --output json is indented; its _meta, compacted, is the recorded one.
	compact := func(raw []byte) string {
		var b bytes.Buffer
		_ = json.Compact(&b, raw)
		return b.String()
	}
	r := rvAuditRow(t, db, ids[0])
	// The bidi control is written as its JSON escape: the same value.
	if want := `{"api_key":"` + mask + `","dry_run":false,"note":"a\u202eb"}`; compact(r.Meta) != want {
		t.Errorf("audit show --output json: _meta %s, want %s", r.Meta, want)
	}
	export := rvCLI(t, nil, "audit", "export", "--db", db)
	jsonList := rvCLI(t, nil, "audit", "list", "--db", db, "--output", "json")
	// No output holds the raw bidi control: the text a person reads shows
	// it as \u202e, and JSON writes it as that escape (readers decode it).
	for name, out := range map[string]string{"review list": list, "approve": approved, "audit show": show,
		"audit list --output json": jsonList, "export": export, "review list --output json": pendingJSON} {
		for _, bad := range []string{secret, "toolgate/confidence", "io.modelcontextprotocol", "p-1"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s shows %q:\n%s", name, bad, out)
			}
		}
		if strings.Contains(out, "\u202e") {
			t.Errorf("%s holds a bidi control:\n%s", name, out)
		}
	}
	if !strings.Contains(export, `"meta":{"api_key":"`+mask+`","dry_run":false`) {
		t.Errorf("audit export lacks the _meta:\n%s", export)
	}
	var recs []audit.Record
	if err := json.Unmarshal([]byte(jsonList), &recs); err != nil || len(recs) != 1 || compact(recs[0].Meta) != compact(r.Meta) {
		t.Errorf("audit list --output json: %v %v", recs, err)
	}
	if out := rvCLI(t, nil, "audit", "verify", "--db", db); !strings.Contains(out, "OK") {
		t.Errorf("audit verify:\n%s", out)
	}
}
