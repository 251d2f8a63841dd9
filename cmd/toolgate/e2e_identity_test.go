package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/auth/oidctest"
)

// identityRules allow echo to the oncall group only and send stats to a
// human; everything else is denied.
const identityRules = `version: 1
label: identity
default: deny
rules:
  - name: oncall-echo
    match: 'tool.name == "echo" && "oncall" in principal.groups'
    action: allow
  - name: stats-reviewed
    match: 'tool.name == "stats"'
    action: review
`

// idClient connects to /mcp presenting bearer.
func idClient(t *testing.T, base, bearer string) *client.Client {
	t.Helper()
	c, _ := bearerClient(t, base, bearer, false)
	return c
}

// bearerClient connects to the HTTP toolgate at base with the bearer
// credential; listen keeps a stream open for what the server sends
// unasked (notifications, an upstream's questions).
func bearerClient(t *testing.T, base, bearer string, listen bool, opts ...client.ClientOption) (*client.Client, *notes) {
	t.Helper()
	topts := []transport.StreamableHTTPCOption{transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + bearer}),
		transport.WithHTTPLogger(slog.New(slog.DiscardHandler))}
	if listen {
		topts = append(topts, transport.WithContinuousListening())
	}
	tr, err := transport.NewStreamableHTTP(base+"/mcp", topts...)
	if err != nil {
		t.Fatal(err)
	}
	return connect(t, tr, opts...)
}

// createToken makes an agent token for user in the audit log db (flags:
// more of tokens create's, such as --group G or --review).
func createToken(t *testing.T, db, user string, flags ...string) string {
	t.Helper()
	tok := strings.TrimSpace(rvCLI(t, nil, append([]string{"tokens", "create", "--db", db, "--user", user}, flags...)...))
	if !strings.HasPrefix(tok, audit.TokenPrefix) {
		t.Fatalf("tokens create printed %q", tok)
	}
	return tok
}

func idCall(t *testing.T, c *client.Client, name string) (text string, isError bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := callTool(ctx, c, name, map[string]any{"text": "hi"}, "")
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return resultText(res), res.IsError
}

func idAuditList(t *testing.T, db string, args ...string) []audit.Record {
	t.Helper()
	var recs []audit.Record
	out := rvCLI(t, nil, append([]string{"audit", "list", "--db", db, "--output", "json", "--limit", "0"}, args...)...)
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("audit list: %v\n%s", err, out)
	}
	return recs
}

func get(t *testing.T, url, bearer string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeIdentity runs a team setup through the built binary: per-user
// tokens and OIDC next to the shared token, rules on principal.groups, the
// audit log by user, sessions bound to their principal, revocation taking
// effect in the running server, no self-approval, and /metrics behind its
// own token.
func TestServeIdentity(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	rulesFile := filepath.Join(dir, "rules.yaml")
	metricsFile := filepath.Join(dir, "metrics.token")
	const metricsToken, shared = "m3trics-only", "shared-s3cret"
	for f, body := range map[string]string{rulesFile: identityRules, metricsFile: metricsToken} {
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	iss := oidctest.New(t)
	cfg := writeConfig(t, fmt.Sprintf(`servers:
  up: {command: %q}
workspace: {enabled: false}
rules: {file: %q}
audit: {path: %q}
http:
  tokens: true
  oidc: {issuer: %q, audience: toolgate}
metrics: {auth_token_file: %q}
review: {channels: [cli], timeout: 60s}
`, upstreamBin, rulesFile, db, iss.URL, metricsFile))

	// Tokens are made before the server first opens the DB.
	newToken := func(user string, groups ...string) string {
		var flags []string
		for _, g := range groups {
			flags = append(flags, "--group", g)
		}
		return createToken(t, db, user, flags...)
	}
	alice, bob, carol := newToken("alice", "oncall"), newToken("bob", "dev"), newToken("carol", "oncall")
	me := reviewAccount(os.Getuid()) // the OS account that runs `toolgate review`
	mine := newToken(me, "oncall")

	base := startHTTP(t, cfg, "--auth-token", shared)

	t.Run("rules see the principal, the audit log separates users", func(t *testing.T) {
		if text, isErr := idCall(t, idClient(t, base, alice), "up__echo"); isErr || text != "hi" {
			t.Fatalf("alice (oncall): %q error=%v", text, isErr)
		}
		if text, isErr := idCall(t, idClient(t, base, bob), "up__echo"); !isErr {
			t.Fatalf("bob (dev) was allowed: %q", text)
		}
		dave := iss.Sign(t, oidctest.Claims(iss.URL, "toolgate", "dave@example.com", time.Hour, "oncall"))
		if text, isErr := idCall(t, idClient(t, base, dave), "up__echo"); isErr {
			t.Fatalf("dave (oidc, oncall): %q", text)
		}
		if text, isErr := idCall(t, idClient(t, base, shared), "up__echo"); !isErr {
			t.Fatalf("the shared token (no groups) was allowed: %q", text)
		}
		for user, want := range map[string]struct {
			auth   string
			action string
		}{
			"alice": {toolgate.AuthToken, "allow"}, "bob": {toolgate.AuthToken, "deny"},
			"dave@example.com": {toolgate.AuthOIDC, "allow"}, "shared": {toolgate.AuthShared, "deny"},
		} {
			recs := idAuditList(t, db, "--user", user)
			if len(recs) != 1 || recs[0].Principal.User != user || recs[0].Principal.Auth != want.auth || string(recs[0].Action) != want.action {
				t.Errorf("audit list --user %s: %+v", user, recs)
			}
		}
		out := rvCLI(t, nil, "audit", "show", idAuditList(t, db, "--user", "alice")[0].ID, "--db", db)
		if !strings.Contains(out, "alice (token; groups oncall)") {
			t.Errorf("audit show lacks the principal:\n%s", out)
		}
		if csv := rvCLI(t, nil, "audit", "export", "--db", db, "--format", "csv"); !strings.Contains(csv, `bob,"[""dev""]",token`) {
			t.Errorf("CSV export lacks the principal columns:\n%s", csv)
		}
	})

	t.Run("a session is bound to its principal", func(t *testing.T) {
		resp, _ := post(t, base+"/mcp", initBody, map[string]string{"Authorization": "Bearer " + alice})
		sid := resp.Header.Get("Mcp-Session-Id")
		if resp.StatusCode != 200 || sid == "" {
			t.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
		}
		list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
		for _, tc := range []struct {
			name, bearer, sid string
			want              int
		}{
			{"bob with alice's session", bob, sid, http.StatusForbidden},
			{"the shared token with alice's session", shared, sid, http.StatusForbidden},
			{"a session never handed out", alice, "mcp-session-00000000-0000-0000-0000-000000000000", http.StatusNotFound},
			{"alice with her session", alice, sid, http.StatusOK},
		} {
			resp, body := post(t, base+"/mcp", list, map[string]string{"Authorization": "Bearer " + tc.bearer, "Mcp-Session-Id": tc.sid})
			if resp.StatusCode != tc.want {
				t.Errorf("%s: %d, want %d (%.200s)", tc.name, resp.StatusCode, tc.want, body)
			}
		}
	})

	t.Run("a revoked token is refused by the running server", func(t *testing.T) {
		resp, _ := post(t, base+"/mcp", initBody, map[string]string{"Authorization": "Bearer " + carol})
		sid := resp.Header.Get("Mcp-Session-Id")
		if resp.StatusCode != 200 {
			t.Fatalf("carol's initialize: %d", resp.StatusCode)
		}
		var toks []audit.Token
		if err := json.Unmarshal([]byte(rvCLI(t, nil, "tokens", "list", "--db", db, "--output", "json")), &toks); err != nil {
			t.Fatal(err)
		}
		id := ""
		for _, tk := range toks {
			if tk.User == "carol" {
				id = tk.ID
			}
		}
		listed := rvCLI(t, nil, "tokens", "list", "--db", db)
		for _, secret := range []string{alice, bob, carol, mine} {
			if strings.Contains(listed, secret) || strings.Contains(listed, secret[len(audit.TokenPrefix):len(audit.TokenPrefix)+12]) {
				t.Fatal("tokens list shows a token")
			}
		}
		rvCLI(t, nil, "tokens", "revoke", id, "--db", db)
		resp, _ = post(t, base+"/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
			map[string]string{"Authorization": "Bearer " + carol, "Mcp-Session-Id": sid})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("carol's revoked token: %d, want 401 at once", resp.StatusCode)
		}
		if !strings.Contains(rvCLI(t, nil, "tokens", "list", "--db", db), "revoked") {
			t.Error("tokens list does not show the revocation")
		}
		rvCLI(t, nil, "audit", "verify", "--db", db) // exits 1 on a broken chain
	})

	t.Run("nobody approves their own call", func(t *testing.T) {
		c := idClient(t, base, mine)
		type res struct {
			text  string
			isErr bool
		}
		done := make(chan res, 1)
		go func() { text, isErr := idCall(t, c, "up__stats"); done <- res{text, isErr} }()
		id := rvWaitPending(t, db, 1)[0]
		if list := rvCLI(t, nil, "review", "list", "--db", db); !strings.Contains(list, me) {
			t.Errorf("review list does not say who asks:\n%s", list)
		}
		out := rvCLIFail(t, "review", "approve", id, "--db", db)
		if !strings.Contains(out, "cannot approve it") {
			t.Errorf("self-approval: %s", out)
		}
		if rvClickEvents(t, db, "cli:"+me) != 1 {
			t.Error("the refused self-approval is not chained")
		}
		if len(rvWaitPending(t, db, 1)) != 1 {
			t.Fatal("the review ended on a self-approval")
		}
		rvCLI(t, nil, "review", "deny", id, "--db", db, "--reason", "not now") // denying one's own call is fine
		r := <-done
		if !r.isErr || !strings.Contains(r.text, "not now") {
			t.Fatalf("after the denial: %+v", r)
		}
	})

	t.Run("metrics take their own token", func(t *testing.T) {
		for _, bearer := range []string{"", alice, shared, iss.Sign(t, oidctest.Claims(iss.URL, "toolgate", "dave", time.Hour))} {
			if code := get(t, base+"/metrics", bearer); code != http.StatusUnauthorized {
				t.Errorf("/metrics with %.10q: %d, want 401", bearer, code)
			}
		}
		if code := get(t, base+"/metrics", metricsToken); code != 200 {
			t.Errorf("/metrics with its token: %d", code)
		}
		if code := get(t, base+"/mcp", metricsToken); code != http.StatusUnauthorized {
			t.Errorf("/mcp with the metrics token: %d, want 401", code)
		}
	})

	t.Run("oidc tokens are checked", func(t *testing.T) {
		for name, tok := range map[string]string{
			"wrong audience": iss.Sign(t, oidctest.Claims(iss.URL, "another-service", "dave", time.Hour)),
			"expired":        iss.Sign(t, oidctest.Claims(iss.URL, "toolgate", "dave", -time.Minute)),
			"foreign key":    oidctest.SignWith(t, oidctest.NewKey(t, iss.Key().KeyID), oidctest.Claims(iss.URL, "toolgate", "dave", time.Hour)),
		} {
			if resp, _ := post(t, base+"/mcp", initBody, map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %d, want 401", name, resp.StatusCode)
			}
		}
	})
}

// TestServeResourceRulesSeeThePrincipal: a rule on the principal decides a
// resource read as it does a tool call, and the audit log records who read.
func TestServeResourceRulesSeeThePrincipal(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	rules := writeFile(t, dir, "rules.yaml", "version: 1\ndefault: allow\nrules:\n"+
		"  - {name: no-reads-for-bob, match: 'call.kind == \"resource\" && principal.user == \"bob\"', action: deny, reason: not bob's}\n")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up: {command: %q, args: [--resources, 'doc://plan']}\n"+
		"workspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\nhttp:\n  tokens: true\n", upstreamBin, rules, db))
	alice := strings.TrimSpace(rvCLI(t, nil, "tokens", "create", "--db", db, "--user", "alice"))
	bob := strings.TrimSpace(rvCLI(t, nil, "tokens", "create", "--db", db, "--user", "bob"))
	base := startHTTP(t, cfg)

	if text, err := readResource(t, idClient(t, base, alice), "doc://plan"); err != nil || text != "doc://plan from upstream" {
		t.Fatalf("alice's read: %q, %v", text, err)
	}
	if text, err := readResource(t, idClient(t, base, bob), "doc://plan"); err == nil || !strings.Contains(err.Error(), "no-reads-for-bob") {
		t.Fatalf("bob's read: %q, %v; want a refusal by no-reads-for-bob", text, err)
	}
	users := map[string]string{}
	for _, r := range idAuditList(t, db) {
		if r.Kind == toolgate.KindResource {
			users[r.Principal.User] = r.Status
		}
	}
	if users["alice"] != toolgate.StatusOK || users["bob"] != toolgate.StatusRefused {
		t.Errorf("the audit log's reads by user: %v", users)
	}
}
