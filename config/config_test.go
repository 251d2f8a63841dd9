package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFull(t *testing.T) {
	src := `
servers:
  fs:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-filesystem", "/tmp", 8080]
    env: {FOO: bar, EMPTY: }
    cwd: /srv
  remote:
    url: https://example.com/mcp
    headers: {Authorization: "Bearer ${TOKEN}"}
    timeout: 60s
    max_message_bytes: 2MiB
    max_requests: 6
    max_requests_per_principal: 2
  legacy:
    type: sse
    url: http://localhost:9000/sse
    disabled: true
naming: {separator: "-"}
workspace: {root: /work, command_timeout: 10s}
model: {name: claude, version: "4"}
http: {auth_token_env: MY_TOKEN, allowed_origins: ["http://localhost:3000"], max_request_bytes: 1024, session_idle: 10m,
  max_sessions: 100, max_sessions_per_principal: 8, max_requests_per_principal: 9, max_request_values: 99,
  conn_idle: 30s, body_timeout: 5s, max_connections: 500}
rules: {file: rules.yaml}
audit: {path: /var/audit.db, redact_keys: [password]}
review:
  timeout: 2m
  max_pending: 3
  channels: [slack, cli]
  slack: {channel: "#approvals", mode: http, approvers: [U1], approver_groups: [S1], api_url: "http://127.0.0.1:9/api/"}
`
	cfg, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Server{
		{Name: "fs", Type: TransportStdio, Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-filesystem", "/tmp", "8080"},
			Env: map[string]string{"FOO": "bar", "EMPTY": ""}, Cwd: "/srv", Timeout: DefaultServerTimeout, Pos: Pos{"t.yaml", 3, 3}},
		{Name: "remote", Type: TransportHTTP, URL: "https://example.com/mcp", Headers: map[string]string{"Authorization": "Bearer ${TOKEN}"},
			Timeout: 60 * time.Second, MaxMessageBytes: 2 << 20, MaxRequests: 6, MaxRequestsPerPrincipal: 2, Pos: Pos{"t.yaml", 8, 3}},
		{Name: "legacy", Type: TransportSSE, URL: "http://localhost:9000/sse", Disabled: true, Timeout: DefaultServerTimeout, Pos: Pos{"t.yaml", 15, 3}},
	}
	if !reflect.DeepEqual(cfg.Servers, want) {
		t.Errorf("servers:\n got %+v\nwant %+v", cfg.Servers, want)
	}
	if got := len(cfg.EnabledServers()); got != 2 {
		t.Errorf("enabled servers = %d, want 2", got)
	}
	if cfg.Workspace.Enabled {
		t.Error("workspace enabled by default although servers are configured")
	}
	checks := map[string][2]any{
		"separator":   {cfg.Naming.Separator, "-"},
		"root":        {cfg.Workspace.Root, "/work"},
		"cmd timeout": {cfg.Workspace.CommandTimeout, 10 * time.Second},
		"model":       {cfg.Model, Model{"claude", "4"}},
		"auth env":    {cfg.HTTP.AuthTokenEnv, "MY_TOKEN"},
		"max bytes":   {cfg.HTTP.MaxRequestBytes, int64(1024)},
		"idle":        {cfg.HTTP.SessionIdle, 10 * time.Minute},
		"sessions":    {cfg.HTTP.MaxSessions, 100},
		"per user":    {cfg.HTTP.MaxSessionsPerPrincipal, 8},
		"in flight":   {cfg.HTTP.MaxRequestsPerPrincipal, 9},
		"values":      {cfg.HTTP.MaxRequestValues, 99},
		"conn idle":   {cfg.HTTP.ConnIdle, 30 * time.Second},
		"body":        {cfg.HTTP.BodyTimeout, 5 * time.Second},
		"conns":       {cfg.HTTP.MaxConnections, 500},
		"rules":       {cfg.Rules, Rules{"rules.yaml"}},
		"review t":    {cfg.Review.Timeout, 2 * time.Minute},
		"max pending": {cfg.Review.MaxPending, 3},
		"slack mode":  {cfg.Review.Slack.Mode, "http"},
		"slack bot":   {cfg.Review.Slack.BotTokenEnv, DefaultSlackBotEnv},
		"slack path":  {cfg.Review.Slack.HTTPPath, DefaultSlackHTTPPath},
		"slack api":   {cfg.Review.Slack.APIURL, "http://127.0.0.1:9/api/"},
	}
	for name, c := range checks {
		if !reflect.DeepEqual(c[0], c[1]) {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	if !reflect.DeepEqual(cfg.HTTP.AllowedOrigins, []string{"http://localhost:3000"}) {
		t.Errorf("origins = %v", cfg.HTTP.AllowedOrigins)
	}
}

// A Cursor .cursor/mcp.json pasted as is.
func TestParseCursorJSON(t *testing.T) {
	src := `{
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
      "env": {"DEBUG": "1"}
    },
    "everything": {"type": "streamable-http", "url": "http://127.0.0.1:3001/mcp", "headers": {"X-Key": "${KEY}"}}
  }
}`
	cfg, err := Parse("mcp.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Servers) != 2 || cfg.Servers[0].Name != "filesystem" || cfg.Servers[1].Type != TransportHTTP {
		t.Fatalf("servers = %+v", cfg.Servers)
	}
}

func TestDefaults(t *testing.T) {
	for name, src := range map[string]string{"empty": "", "comment": "# nothing\n", "null": "~\n", "empty servers": "servers: {}\n"} {
		cfg, err := Parse("d.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		def := Default()
		def.File = "d.yaml"
		if !reflect.DeepEqual(cfg, def) {
			t.Errorf("%s: got %+v, want Default() %+v", name, cfg, def)
		}
		if !cfg.Workspace.Enabled || cfg.Naming.Separator != "__" || cfg.HTTP.MaxRequestBytes != 4<<20 || cfg.HTTP.SessionIdle != 30*time.Minute ||
			cfg.HTTP.MaxSessions != 4096 || cfg.HTTP.MaxSessionsPerPrincipal != 64 || cfg.HTTP.ConnIdle != 2*time.Minute ||
			cfg.HTTP.BodyTimeout != time.Minute || cfg.HTTP.MaxConnections != 0 ||
			cfg.HTTP.MaxRequestsPerPrincipal != 32 || cfg.HTTP.MaxRequestValues != 20000 {
			t.Errorf("%s: defaults not applied: %+v", name, cfg)
		}
	}
	// Explicitly disabled workspace with no servers stays disabled.
	cfg, err := Parse("d.yaml", []byte("workspace: {enabled: false}"))
	if err != nil || cfg.Workspace.Enabled {
		t.Fatalf("workspace.enabled false: %v %+v", err, cfg)
	}
	// Only disabled servers: the workspace is on by default.
	cfg, err = Parse("d.yaml", []byte("servers: {a: {command: x, disabled: true}}"))
	if err != nil || !cfg.Workspace.Enabled {
		t.Fatalf("only disabled servers: %v %+v", err, cfg)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string // each must appear, in order, one per error
	}{
		{"unknown key with suggestion", "servers:\n  fs:\n    comand: npx\n",
			[]string{`c.yaml:3:5: unknown key "comand" in server "fs" (did you mean "command"?)`}},
		{"unknown top-level key", "sevrers: {}\n", []string{`c.yaml:1:1: unknown key "sevrers" in the config (did you mean "servers"?)`}},
		{"far unknown key lists known", "http: {zzzzzzzzzz: 1}\n", []string{`c.yaml:1:8: unknown key "zzzzzzzzzz" in http (known keys: allowed_origins, auth_token_env, auth_token_file, body_timeout, conn_idle, max_connections, max_request_bytes, max_request_values, max_requests_per_principal, max_sessions, max_sessions_per_principal, oidc, reviewer_token_env, reviewer_token_file, reviewer_user, reviewers, session_idle, shared_user, tokens)`}},
		{"bad duration", "servers:\n  a: {command: x, timeout: 5 minutes}\n", []string{`c.yaml:2:28: invalid duration "5 minutes"`}},
		{"per-principal share without a limit", "servers:\n  a: {command: x, max_requests_per_principal: 2}\n", []string{`c.yaml:2:47: server "a": max_requests_per_principal needs max_requests, and at least as many`}},
		{"per-principal share over the limit", "servers:\n  a: {command: x, max_requests: 2, max_requests_per_principal: 3}\n", []string{`c.yaml:2:64: server "a": max_requests_per_principal needs max_requests, and at least as many`}},
		{"no places", "servers:\n  a: {command: x, max_requests: 0}\n", []string{`c.yaml:2:33: expected a positive whole number, got "0"`}},
		{"huge message limit", "servers:\n  a: {command: x, max_message_bytes: 2GiB}\n", []string{`c.yaml:2:38: server "a": max_message_bytes is at most 1GiB`}},
		{"unitless duration", "review: {timeout: 30}\n", []string{`c.yaml:1:19: duration 30 has no unit`}},
		{"negative duration", "workspace: {command_timeout: -1s}\n", []string{`c.yaml:1:30: duration "-1s" must be positive`}},
		{"bool", "workspace: {enabled: yes please}\n", []string{`c.yaml:1:22: expected true or false, got "yes please"`}},
		{"no command or url", "servers:\n  a: {env: {A: b}}\n", []string{`c.yaml:2:3: server "a" needs "command"`}},
		{"both command and url", "servers:\n  a: {command: x, url: http://h/mcp}\n", []string{`c.yaml:2:24: server "a" has both "command" and "url"`}},
		{"bad name", "servers:\n  'a b': {command: x}\n", []string{`c.yaml:2:3: invalid server name "a b"`}},
		{"bad type", "servers:\n  a: {type: websocket, url: http://h}\n", []string{`c.yaml:2:13: server "a": unknown type "websocket"`}},
		{"stdio with url", "servers:\n  a: {type: stdio, url: http://h}\n", []string{`c.yaml:2:13: server "a": type stdio needs "command"`}},
		{"relative url", "servers:\n  a: {url: /mcp}\n", []string{`c.yaml:2:12: server "a": url "/mcp" must be an absolute`}},
		{"args not a list", "servers:\n  a: {command: x, args: -y}\n", []string{`c.yaml:2:25: server "a" args must be a list, got "-y"`}},
		{"env not a map", "servers:\n  a: {command: x, env: [A]}\n", []string{`c.yaml:2:24: server "a" env must be a mapping, got a list`}},
		{"servers and mcpServers", "servers: {}\nmcpServers: {}\n", []string{`c.yaml:2:1: "mcpServers" given but servers were already defined at line 1`}},
		{"duplicate server", "servers:\n  a: {command: x}\n  a: {command: y}\n", []string{`c.yaml:3:3: duplicate server "a" (first at line 2)`}},
		{"duplicate key", "naming: {separator: _, separator: -}\n", []string{`c.yaml:1:24: naming: duplicate key "separator" (first at line 1)`}},
		{"bad separator", "naming: {separator: ' '}\n", []string{`c.yaml:1:21: naming.separator must be`}},
		{"separator Claude refuses", "naming: {separator: .}\n", []string{`c.yaml:1:21: naming.separator must be one or more of A-Z a-z 0-9 _ -`}},
		{"prefix not a boolean", "naming: {prefix: no-thanks}\nservers: {a: {command: x, prefix: 3}}\n", []string{`c.yaml:1:18:`, `c.yaml:2:35:`}},
		{"bad origin", "http: {allowed_origins: [\"http://x/path\", localhost]}\n",
			[]string{`c.yaml:1:26: http.allowed_origins: "http://x/path" is not an origin`, `c.yaml:1:43: http.allowed_origins: "localhost" is not an origin`}},
		{"bad max bytes", "http: {max_request_bytes: -5}\n", []string{`c.yaml:1:27: expected a positive whole number`}},
		{"bad max pending", "review: {max_pending: 0}\n", []string{`c.yaml:1:23: expected a positive whole number`}},
		{"bad env name", "http: {auth_token_env: 'MY-TOKEN'}\n", []string{`c.yaml:1:24: http.auth_token_env must be an environment variable name`}},
		{"token env and file", "http: {auth_token_env: TOK, auth_token_file: tok}\n", []string{`c.yaml:1:46: http: give auth_token_env or auth_token_file, not both`}},
		{"empty token file", "http: {auth_token_file: ''}\n", []string{`c.yaml:1:25: http.auth_token_file must be a path, got ""`}},
		{"slack secrets env and file", "review: {slack: {bot_token_file: b, bot_token_env: B, signing_secret_env: S, signing_secret_file: s, app_token_file: [a]}}\n", []string{
			`c.yaml:1:118: expected a string, got a list`,
			`c.yaml:1:34: review.slack: give bot_token_env or bot_token_file, not both`,
			`c.yaml:1:99: review.slack: give signing_secret_env or signing_secret_file, not both`,
		}},
		{"bad channel", "review: {channels: [slack, email, cli, cli], slack: {channel: '#a'}}\n",
			[]string{`c.yaml:1:28: review.channels: unknown channel "email"`, `c.yaml:1:40: review.channels: "cli" listed twice`}},
		{"slack without channel", "review: {channels: [slack]}\n", []string{`c.yaml:1:20: review.channels includes slack but review.slack.channel is not set`}},
		{"slack mode", "review: {slack: {mode: rtm, http_path: interactions}}\n",
			[]string{`c.yaml:1:24: review.slack.mode must be socket or http`, `c.yaml:1:40: review.slack.http_path must start with /`}},
		{"slack api url no slash", "review: {slack: {api_url: 'http://h/api'}}\n", []string{`c.yaml:1:27: review.slack.api_url: "http://h/api" must end with "/"`}},
		{"pinning mode", "pinning: {mode: trust}\n", []string{`c.yaml:1:17: pinning.mode must be tofu or strict, got "trust"`}},
		{"workspace secrets", "sandbox: {workspace_secrets: shown}\n", []string{`c.yaml:1:30: sandbox.workspace_secrets must be hidden or visible, got "shown"`}},
		{"workspace secrets visible", "sandbox: {workspace_secrets_visible: testdata/*.key}\n",
			[]string{`c.yaml:1:38: sandbox.workspace_secrets_visible must be a list, got "testdata/*.key"`}},
		{"slack api url relative", "review: {slack: {api_url: /api/}}\n", []string{`c.yaml:1:27: review.slack.api_url: "/api/" is not an absolute http(s) URL`}},
		{"slack api url scheme", "review: {slack: {api_url: 'ftp://h/api/'}}\n", []string{`c.yaml:1:27: review.slack.api_url: "ftp://h/api/" is not an absolute http(s) URL`}},
		{"top level list", "- a\n- b\n", []string{`c.yaml:1:1: the config must be a mapping, got a list`}},
		{"syntax error", "servers:\n  a: {command: x\n", []string{`c.yaml:2: invalid YAML: did not find expected ',' or '}'`}},
		{"scanner error", "a: b\n\tc: d\n", []string{`c.yaml:2: invalid YAML: found a tab character`}},
		{"flow sequence", "servers:\n  a:\n    args: [1, 2\n\n", []string{`c.yaml:3: invalid YAML: did not find expected ',' or ']'`}},
		{"two documents", "servers: {}\n---\nnaming: {}\n", []string{`c.yaml:2:1: only one YAML document is allowed`}},
		{"all problems at once", "servers:\n  a: {comand: x}\n  b: {command: y, timeout: soon}\nnaming: {sep: x}\n", []string{
			`c.yaml:2:7: unknown key "comand" in server "a"`,
			`c.yaml:3:28: invalid duration "soon"`,
			`c.yaml:4:10: unknown key "sep" in naming`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if cfg != nil {
				t.Error("config returned along with an error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d:\n got %s\nwant prefix %s", i, lines[i], w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Pos.File != "c.yaml" || ce.Pos.Line == 0 {
				t.Errorf("error is not a positioned *Error: %#v", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "toolgate.yaml")
	if err := os.WriteFile(path, []byte("servers:\n  a: {command: x, bogus: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":2:19: unknown key \"bogus\"") {
		t.Fatalf("Load error = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestAliasesResolve(t *testing.T) {
	src := "x: &args [-y, pkg]\n"
	if _, err := Parse("a.yaml", []byte(src)); err == nil {
		t.Fatal("unknown top-level key x accepted")
	}
	src = "servers:\n  a: &s {command: x, args: [1]}\n  b: *s\n"
	cfg, err := Parse("a.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Servers) != 2 || cfg.Servers[1].Command != "x" || cfg.Servers[1].Args[0] != "1" {
		t.Fatalf("servers = %+v", cfg.Servers)
	}
}

func TestLoadResolvesOwnFilesAgainstTheConfigDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "toolgate.yaml")
	body := "rules: {file: policy/rules.yaml}\naudit: {path: audit.db}\nworkspace: {root: src}\n" +
		"http: {auth_token_file: secrets/token}\n" +
		"review: {slack: {bot_token_file: secrets/bot, app_token_file: /etc/tg/app, signing_secret_file: signing}}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "policy", "rules.yaml"); c.Rules.File != want {
		t.Errorf("rules.file = %q, want %q", c.Rules.File, want)
	}
	if want := filepath.Join(dir, "audit.db"); c.Audit.Path != want {
		t.Errorf("audit.path = %q, want %q", c.Audit.Path, want)
	}
	if c.Workspace.Root != "src" {
		t.Errorf("workspace.root = %q, want it relative to the working directory", c.Workspace.Root)
	}
	sl := c.Review.Slack
	for name, got := range map[string][2]string{
		"http.auth_token_file":             {c.HTTP.AuthTokenFile, filepath.Join(dir, "secrets", "token")},
		"review.slack.bot_token_file":      {sl.BotTokenFile, filepath.Join(dir, "secrets", "bot")},
		"review.slack.app_token_file":      {sl.AppTokenFile, "/etc/tg/app"},
		"review.slack.signing_secret_file": {sl.SigningSecretFile, filepath.Join(dir, "signing")},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %q, want %q", name, got[0], got[1])
		}
	}

	if err := os.WriteFile(path, []byte("rules: {file: '@default'}\naudit: {path: /var/lib/tg/audit.db}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(path); err != nil {
		t.Fatal(err)
	}
	if c.Rules.File != "@default" || c.Audit.Path != "/var/lib/tg/audit.db" {
		t.Errorf("@default and absolute paths changed: %q, %q", c.Rules.File, c.Audit.Path)
	}
	// Any other name starting with @ is a file of toolgate's, in the
	// config's directory: read from the working directory (the workspace)
	// it would be the agent's to write, and unprotected.
	if err := os.WriteFile(path, []byte("rules: {file: '@rules.yaml'}\nhttp: {auth_token_file: '@token'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(path); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "@rules.yaml"); c.Rules.File != want || c.HTTP.AuthTokenFile != filepath.Join(dir, "@token") {
		t.Errorf("@-named files: %q, %q; want them in %s", c.Rules.File, c.HTTP.AuthTokenFile, dir)
	}
	if files := c.Files(); len(files) != 2 {
		t.Errorf("own files %v; want the rules file and the token file", files)
	}
}

// naming.prefix sets every server's default; a server's prefix overrides it.
func TestNamingPrefix(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want map[string]bool // server -> Prefixed
	}{
		{"servers: {a: {command: x}, b: {command: y, prefix: false}}\n", map[string]bool{"a": true, "b": false}},
		{"naming: {prefix: false}\nservers: {a: {command: x}, b: {command: y, prefix: true}}\n", map[string]bool{"a": false, "b": true}},
		{"naming: {prefix: true}\nservers: {a: {command: x, prefix: false}}\n", map[string]bool{"a": false}},
	} {
		cfg, err := Parse("n.yaml", []byte(tc.src))
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		got := map[string]bool{}
		for _, s := range cfg.Servers {
			got[s.Name] = cfg.Prefixed(s)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: prefixed = %v, want %v", tc.src, got, tc.want)
		}
	}
	if !Default().Naming.Prefix {
		t.Error("Default() does not prefix")
	}
}

func TestPinningMode(t *testing.T) {
	for src, want := range map[string]string{"": PinningTOFU, "pinning: {mode: strict}": PinningStrict, "pinning: {mode: tofu}": PinningTOFU} {
		cfg, err := Parse("c.yaml", []byte(src))
		if err != nil || cfg.Pinning.Mode != want {
			t.Errorf("%q: mode %q, %v; want %q", src, cfg.Pinning.Mode, err, want)
		}
	}
}

func TestWorkspaceSecrets(t *testing.T) {
	for src, want := range map[string]string{"": SecretsHidden, "sandbox: {workspace_secrets: visible}": SecretsVisible,
		"sandbox: {workspace_secrets: hidden}": SecretsHidden} {
		cfg, err := Parse("c.yaml", []byte(src))
		if err != nil || cfg.Sandbox.WorkspaceSecrets != want {
			t.Errorf("%q: workspace_secrets %q, %v; want %q", src, cfg.Sandbox.WorkspaceSecrets, err, want)
		}
	}
	cfg, err := Parse("c.yaml", []byte("sandbox: {workspace_secrets_visible: ['testdata/**/*.key', config/dev.pem]}"))
	if want := []string{"testdata/**/*.key", "config/dev.pem"}; err != nil || !slices.Equal(cfg.Sandbox.WorkspaceSecretsVisible, want) {
		t.Errorf("workspace_secrets_visible %q, %v; want %q", cfg.Sandbox.WorkspaceSecretsVisible, err, want)
	}
}

func TestStartWait(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("start_wait: 90s\n"))
	if err != nil || cfg.StartWait != 90*time.Second {
		t.Fatalf("start_wait 90s: %v, %v", cfg.StartWait, err)
	}
	if _, err := Parse("c.yaml", []byte("start_wait: soon\n")); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("start_wait soon: %v", err)
	}
}

func TestAuditRetention(t *testing.T) {
	c, err := Parse("t.yaml", []byte("audit:\n  retention:\n    max_age: 720h\n    max_size: 10GiB\n    min_age: 72h\n  archive_dir: arch\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Audit.Retention
	if r.MaxAge != 720*time.Hour || r.MaxSize != 10<<30 || r.MinAge != 72*time.Hour || r.Interval != DefaultRetentionInterval || c.Audit.ArchiveDir != "arch" {
		t.Errorf("retention = %+v, dir %q", r, c.Audit.ArchiveDir)
	}
	pg := "audit:\n  driver: postgres\n  dsn: postgres://tg@db/tg\n  retention:\n    max_age: 720h\n  archive_dir: arch\n"
	if c, err := Parse("t.yaml", []byte(pg)); err != nil || c.Audit.Retention.MaxAge != 720*time.Hour {
		t.Errorf("retention with driver postgres: %v", err)
	}
	for _, bad := range []string{
		"audit:\n  retention:\n    max_age: 720h\n",  // no archive_dir
		"audit:\n  retention:\n    max_size: lots\n", // not a size
		"audit:\n  retention:\n    max_age: 30\n",    // no unit
	} {
		if _, err := Parse("t.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "t.yaml:") {
			t.Errorf("Parse(%q) = %v, want an error with its position", bad, err)
		}
	}
}
