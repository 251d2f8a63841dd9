package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/auth/oidctest"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// uiSignIn signs in to base's web UI with cred, as a reviewer's browser
// would (or an agent with curl), and returns the signed-in client and the
// CSRF token of the reviews page; ok is false when the UI refused cred.
func uiSignIn(t *testing.T, base, cred string) (c *http.Client, csrf string, ok bool) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c = &http.Client{Jar: jar}
	page := func(path string) string {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := csrfField.FindStringSubmatch(page("/ui/signin"))
	if m == nil {
		t.Fatal("no CSRF token on the sign-in page")
	}
	resp, err := c.PostForm(base+"/ui/signin", url.Values{"csrf": {m[1]}, "token": {cred}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/ui/reviews" {
		return c, "", false
	}
	m = csrfField.FindStringSubmatch(page("/ui/reviews"))
	if m == nil {
		t.Fatal("no CSRF token on the reviews page")
	}
	return c, m[1], true
}

// TestUIRefusesAgentCredentials attacks the web UI as an agent would: with
// the credential it holds for /mcp (the shared token, even when
// http.reviewers lists its user; its per-user token; its OIDC token), it
// cannot sign in to the UI and approve its own review, while the
// reviewers' own credentials (the reviewers' shared token, a review token,
// an OIDC token for the review audience) sign in and answer, and open
// nothing at /mcp; an OIDC token for both audiences opens neither. A reviewer token equal to the agents' token is refused
// at start.
func TestUIRefusesAgentCredentials(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	rulesFile := filepath.Join(dir, "rules.yaml")
	agentFile, reviewerFile := filepath.Join(dir, "agent.token"), filepath.Join(dir, "reviewer.token")
	const agentToken, reviewerToken = "ag3nt-shared-t0ken", "r3viewer-only-t0ken"
	for f, body := range map[string]string{rulesFile: uiRules, agentFile: agentToken, reviewerFile: reviewerToken} {
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	agentAlice := strings.TrimSpace(rvCLI(t, nil, "tokens", "create", "--db", db, "--user", "alice"))
	reviewRita := strings.TrimSpace(rvCLI(t, nil, "tokens", "create", "--db", db, "--user", "rita", "--review"))
	iss := oidctest.New(t)
	cfg := writeConfig(t, fmt.Sprintf(`servers:
  up: {command: %q}
workspace: {enabled: false}
rules: {file: %q}
audit: {path: %q}
http:
  auth_token_file: %q
  reviewer_token_file: %q
  tokens: true
  oidc: {issuer: %q, audience: toolgate, review_audience: toolgate-review}
  reviewers: [shared, alice, dave, reviewer, rita]
review: {channels: [web], timeout: 60s}
`, upstreamBin, rulesFile, db, agentFile, reviewerFile, iss.URL))
	base := startHTTP(t, cfg)

	// Agents' credentials: each is accepted at /mcp, none signs in.
	agentOIDC := iss.Sign(t, oidctest.Claims(iss.URL, "toolgate", "dave", time.Hour))
	for name, cred := range map[string]string{"shared token": agentToken, "agent token": agentAlice, "oidc token for /mcp": agentOIDC} {
		if code := mcpInitStatus(t, base, cred); code != http.StatusOK {
			t.Fatalf("%s at /mcp: %d, want 200", name, code)
		}
		done := make(chan bool, 1)
		c := idClient(t, base, cred)
		go func() { _, isErr := idCall(t, c, "up__stats"); done <- isErr }()
		id := rvWaitPending(t, db, 1)[0]
		if _, _, ok := uiSignIn(t, base, cred); ok {
			t.Errorf("the agents' %s signed in to the web UI", name)
		}
		rvCLI(t, nil, "review", "deny", id, "--db", db, "--reason", "test")
		if isErr := <-done; !isErr {
			t.Fatalf("%s: the denied call ran", name)
		}
	}

	// Reviewers' credentials: each signs in and answers, none opens /mcp.
	reviewOIDC := iss.Sign(t, oidctest.Claims(iss.URL, "toolgate-review", "dave", time.Hour))
	// (A shared reviewers' token answers only calls made with the shared
	// token: it names nobody, so the store cannot rule out self-approval
	// of a personal call.)
	for name, c := range map[string]struct{ cred, who, caller string }{
		"reviewers' shared token": {reviewerToken, "web:reviewer", agentToken},
		"review token":            {reviewRita, "web:rita", agentAlice},
		"oidc token for review":   {reviewOIDC, "web:dave", agentAlice},
	} {
		if code := mcpInitStatus(t, base, c.cred); code != http.StatusUnauthorized {
			t.Errorf("%s at /mcp: %d, want 401", name, code)
		}
		ui, csrf, ok := uiSignIn(t, base, c.cred)
		if !ok {
			t.Fatalf("the %s did not sign in", name)
		}
		done := make(chan bool, 1)
		agent := idClient(t, base, c.caller)
		go func() { _, isErr := idCall(t, agent, "up__stats"); done <- isErr }()
		id := rvWaitPending(t, db, 1)[0]
		resp, err := ui.PostForm(base+"/ui/reviews/"+id, url.Values{"csrf": {csrf}, "action": {"approve"}})
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(page), "Approved "+id) {
			rvCLI(t, nil, "review", "deny", id, "--db", db, "--reason", "test")
			<-done
			t.Fatalf("%s: the approval was not taken: %d\n%s", name, resp.StatusCode, page)
		}
		if isErr := <-done; isErr {
			t.Fatalf("%s: the approved call failed", name)
		}
		for _, r := range idAuditList(t, db, "--tool", "stats") {
			if r.ID == id && (r.Review == nil || r.Review.Reviewer != c.who || !r.Review.Approved) {
				t.Errorf("%s: recorded review %+v, want an approval by %s", name, r.Review, c.who)
			}
		}

	}

	// An identity provider may list every client a user holds roles in: a
	// token for both audiences opens neither side.
	claims := oidctest.Claims(iss.URL, "toolgate", "dave", time.Hour)
	claims["aud"] = []string{"toolgate", "toolgate-review"}
	both := iss.Sign(t, claims)
	if code := mcpInitStatus(t, base, both); code != http.StatusUnauthorized {
		t.Errorf("an oidc token for both audiences at /mcp: %d, want 401", code)
	}
	if _, _, ok := uiSignIn(t, base, both); ok {
		t.Error("an oidc token for both audiences signed in to the web UI")
	}

	t.Run("the reviewer token must not be the agents'", func(t *testing.T) {
		same := filepath.Join(dir, "same.token")
		if err := os.WriteFile(same, []byte(agentToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := writeConfig(t, fmt.Sprintf("servers:\n  up: {command: %q}\nworkspace: {enabled: false}\naudit: {path: %q}\nhttp: {auth_token_file: %q, reviewer_token_file: %q}\n",
			upstreamBin, filepath.Join(dir, "other.db"), agentFile, same))
		out, err := exec.Command(toolgateBin, "serve", "--config", cfg, "--http", "127.0.0.1:0").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "the reviewer token is the agents' token") {
			t.Fatalf("serve with the agents' token as the reviewers': %v\n%s", err, out)
		}
	})
}

// mcpInitStatus is the HTTP status /mcp answers an initialize presenting
// bearer with.
func mcpInitStatus(t *testing.T, base, bearer string) int {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}`
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
