package tools

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/toolgate/toolgate/toolgatetest"
)

// The credentials of the remote upstreams below: in the URL's userinfo
// and query, and in a header.
const (
	urlUser, urlPassword = "USERSECRET", "PWSECRET789"
	queryKey             = "QUERYSECRET123"
	headerKey            = "HEADERSECRET456"
	bareKey              = "BARESECRET000" // a query parameter without a value
)

// noSecret fails t when what holds one of the upstream's credentials.
func noSecret(t *testing.T, where, what string) {
	t.Helper()
	for _, s := range []string{urlUser, urlPassword, queryKey, headerKey, bareKey} {
		if strings.Contains(what, s) {
			t.Errorf("%s shows the credential %s: %s", where, s, what)
		}
	}
}

// TestRemoteURLCredentialsHidden: an unreachable HTTP upstream's error (to
// the agent, in the status) and the catalog's log show its URL with the
// userinfo dropped and the query values masked, and never its header
// values.
func TestRemoteURLCredentialsHidden(t *testing.T) {
	for _, sse := range []bool{false, true} {
		var logs toolgatetest.SyncBuffer
		raw := "http://" + urlUser + ":" + urlPassword + "@" + toolgatetest.FreeAddr(t) + "/mcp?api_key=" + queryKey + "&v=2&" + bareKey
		c := startCatalog(t, Options{
			Upstreams: []Upstream{{Name: "h", URL: raw, SSE: sse, Headers: map[string]string{"X-Api-Key": headerKey}}},
			Logger:    slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		toolgatetest.Eventually(t, "the connection to fail", func() bool { return c.Status()[0].LastError != "" })
		_, err := c.Forward(context.Background(), call(c, "h__echo", map[string]any{"text": "hi"}))
		if err == nil {
			t.Fatal("a call to an unreachable upstream succeeded")
		}
		noSecret(t, "the call's error", err.Error())
		noSecret(t, "the status", c.Status()[0].LastError)
		noSecret(t, "the log", logs.String())
		if !strings.Contains(err.Error(), "/mcp?REDACTED=REDACTED&api_key=REDACTED&v=REDACTED") {
			t.Errorf("the call's error does not name the URL, redacted: %v", err)
		}
	}
}

// TestRemoteURLCredentialsSentHidden: the upstream gets the configured
// URL's query, userinfo (as basic auth) and headers; once it is gone, the
// failed call's error and the log hold none of them.
func TestRemoteURLCredentialsSentHidden(t *testing.T) {
	s, _ := newInProcess(t)
	mcpHandler := server.NewStreamableHTTPServer(s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, _ := r.BasicAuth()
		if r.URL.RawQuery != "api_key="+queryKey+"&"+bareKey || user != urlUser || pw != urlPassword || r.Header.Get("X-Api-Key") != headerKey {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mcpHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	var logs toolgatetest.SyncBuffer
	raw := strings.Replace(srv.URL, "://", "://"+urlUser+":"+urlPassword+"@", 1) + "/mcp?api_key=" + queryKey + "&" + bareKey
	c := startCatalog(t, Options{
		Upstreams:    []Upstream{{Name: "h", URL: raw, Headers: map[string]string{"X-Api-Key": headerKey}}},
		Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		PingInterval: -1,
		MinBackoff:   time.Hour,
	})
	toolgatetest.Eventually(t, "the upstream up", func() bool { return c.Status()[0].Up })
	if res, err := c.Forward(context.Background(), call(c, "h__echo", map[string]any{"text": "hi"})); err != nil || text(res) != "hi" {
		t.Fatalf("call while up: %v, %v", text(res), err)
	}

	srv.Config.Close() // the listener and every connection
	_, err := c.Forward(context.Background(), call(c, "h__echo", map[string]any{"text": "hi"}))
	if err == nil {
		t.Fatal("a call to a closed upstream succeeded")
	}
	noSecret(t, "the call's error", err.Error())
	toolgatetest.Eventually(t, "the upstream down", func() bool { return !c.Status()[0].Up })
	noSecret(t, "the status", c.Status()[0].LastError)
	noSecret(t, "the log", logs.String())
}

// TestRemoteURLScrubsWhereverItAppears: an error that quotes a URL other
// than the configured one (a redirect's, with the query again) or the
// configured one's path (a token in it, as some hosted servers put one)
// shows none of the credentials.
func TestRemoteURLScrubsWhereverItAppears(t *testing.T) {
	const pathToken = "sk-ak-PATHSECRETabcdef0123456789"
	ru, err := newRemoteURL("https://u:"+urlPassword+"@mcp.example/mcp/"+pathToken+"/sse?api_key="+queryKey, map[string]string{"X-Api-Key": headerKey})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := newRemoteURL("http://mcp.example/mcp?code=Abc%2Bdef%2F"+queryKey+"%3D%3D&plus=abc+def"+queryKey+"&"+bareKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		`Post "http://other.example/mcp?code=Abc%2Bdef%2F` + queryKey + `%3D%3D&plus=abc+def` + queryKey + `&` + bareKey + `&again=1": refused`,
		`Post "http://other.example/mcp?key=Abc+def/` + queryKey + `==": refused`,
	} {
		if got := enc.scrub(errorString(text)).Error(); strings.Contains(got, queryKey) || strings.Contains(got, bareKey) {
			t.Errorf("scrub(%q) = %q, holds a credential", text, got)
		}
	}
	for _, text := range []string{
		`Post "https://mcp.example/mcp/?api_key=` + queryKey + `": connection refused`,
		`Post "https://mcp.example/mcp/` + pathToken + `/sse?api_key=REDACTED": dial tcp: connection refused`,
		`server said: bad key ` + headerKey + ` for ` + urlPassword,
	} {
		got := ru.scrub(errorString(text)).Error()
		for _, secret := range []string{queryKey, pathToken, headerKey, urlPassword} {
			if strings.Contains(got, secret) {
				t.Errorf("scrub(%q) = %q, holds %s", text, got, secret)
			}
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestHeaderTokensHidden: an Authorization header's credential is hidden
// when an error quotes it without its scheme word ("the key sk-... has
// expired", as many APIs answer a 403), and a Basic credential decoded,
// its password too.
func TestHeaderTokensHidden(t *testing.T) {
	const token, password = "sk-live-SECRETSECRETSECRETSECRET99", "Hunter2SecretPw"
	basic := base64.StdEncoding.EncodeToString([]byte("deploy:" + password))
	for header, said := range map[string]string{
		"Bearer " + token: "request failed with status 403: invalid credentials: the key " + token + " has expired",
		"Basic " + basic:  "401: bad password " + password + " for deploy",
	} {
		ru, err := newRemoteURL("https://mcp.example/mcp", map[string]string{"Authorization": header})
		if err != nil {
			t.Fatal(err)
		}
		if got := ru.scrub(errorString(said)).Error(); strings.Contains(got, token) || strings.Contains(got, password) {
			t.Errorf("scrub(%q) = %q, holds the credential", said, got)
		}
	}
}
