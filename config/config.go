package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Transport is how toolgate talks to an upstream server.
type Transport string

// The upstream transports. A server's "type" may also be spelled
// "streamable-http" or "streamableHttp" (meaning TransportHTTP).
const (
	TransportStdio Transport = "stdio" // a subprocess speaking JSON-RPC on stdin/stdout
	TransportHTTP  Transport = "http"  // MCP streamable HTTP
	TransportSSE   Transport = "sse"   // legacy HTTP+SSE
)

// Slack connection modes.
const (
	SlackModeSocket = "socket"
	SlackModeHTTP   = "http"
)

// Defaults applied by [Parse] and [Default] to settings the file leaves out.
const (
	DefaultSeparator       = "__"
	DefaultServerTimeout   = 120 * time.Second
	DefaultCommandTimeout  = 30 * time.Second
	DefaultAuthTokenEnv    = "TOOLGATE_AUTH_TOKEN"
	DefaultMaxRequestBytes = 4 << 20
	DefaultSessionIdle     = 30 * time.Minute
	// DefaultMaxSessions and DefaultMaxSessionsPerPrincipal cap the live
	// HTTP sessions, of everyone and of one principal.
	DefaultMaxSessions             = 4096
	DefaultMaxSessionsPerPrincipal = 64
	// DefaultMaxRequestsPerPrincipal caps one principal's HTTP requests in
	// flight, DefaultMaxRequestValues the values in one request.
	DefaultMaxRequestsPerPrincipal = 32
	DefaultMaxRequestValues        = 20000
	// DefaultConnIdle closes an HTTP keep-alive connection with no request
	// for this long.
	DefaultConnIdle = 2 * time.Minute
	// DefaultBodyTimeout bounds the reading of an HTTP request's body.
	DefaultBodyTimeout     = time.Minute
	DefaultReviewTimeout   = 5 * time.Minute
	DefaultReviewHold      = 45 * time.Second
	DefaultSlackBotEnv     = "SLACK_BOT_TOKEN"
	DefaultSlackAppEnv     = "SLACK_APP_TOKEN"
	DefaultSlackSigningEnv = "SLACK_SIGNING_SECRET"
	DefaultSlackHTTPPath   = "/slack/interactions"
)

// DefaultAllowedOrigins are the browser origins the HTTP transport accepts
// when the file names none: local pages only (any port).
var DefaultAllowedOrigins = []string{
	"http://localhost", "https://localhost",
	"http://127.0.0.1", "https://127.0.0.1",
	"http://[::1]", "https://[::1]",
}

// Config is a loaded, validated configuration with defaults applied.
type Config struct {
	// File is the path the configuration came from; "" for [Default].
	File string
	// Servers are the upstream MCP servers, in file order (disabled ones included).
	Servers []Server
	// StartWait bounds how long serve waits for the upstreams before it
	// answers agents (default 15s); an upstream up later adds its tools
	// with tools/list_changed. Servers started by `npx -y` may need longer
	// on a first run.
	StartWait time.Duration
	// Naming controls the names tools are exposed under.
	Naming Naming
	// Workspace configures the built-in workspace tools.
	Workspace Workspace
	// Model is the model metadata used when the agent sends none.
	Model Model
	// HTTP configures the streamable HTTP transport.
	HTTP HTTP
	// Rules selects the rule pack.
	Rules Rules
	// Audit configures the audit log.
	Audit Audit
	// Review configures human review.
	Review Review
	// Sandbox configures the OS sandbox of the built-in tools and of the
	// stdio servers that name a profile.
	Sandbox Sandbox
	// Metrics configures where /metrics is served and what it asks for.
	Metrics Metrics
	// Pinning configures tool pinning: how a tool seen for the first time
	// is treated (a changed definition is always quarantined).
	Pinning Pinning
}

// Pinning modes.
const (
	// PinningTOFU pins a tool's definition when it is first seen (trust on
	// first use).
	PinningTOFU = "tofu"
	// PinningStrict quarantines a new tool until an admin approves it.
	PinningStrict = "strict"
)

// Pinning configures tool pinning.
type Pinning struct {
	// Mode is PinningTOFU (the default) or PinningStrict.
	Mode string
}

// Metrics configures the Prometheus endpoint. Agents' credentials never
// open it: it takes its own token, or its own listener.
type Metrics struct {
	// Listen, when set, serves /metrics on this address alone, and not on
	// the MCP listener.
	Listen string
	// AuthTokenEnv and AuthTokenFile name the bearer token /metrics
	// requires (as http's auth_token_env/_file do); neither set: /metrics
	// asks for none.
	AuthTokenEnv  string
	AuthTokenFile string
}

// OIDC configures OIDC access tokens as agent credentials.
type OIDC struct {
	// Issuer is the issuer URL (its discovery document names its keys).
	Issuer string
	// Audience must be among each token's "aud".
	Audience string
	// UserClaim is the claim naming the principal's user (default "sub";
	// "email" is common).
	UserClaim string
	// GroupsClaim is the claim listing the principal's groups (default "groups").
	GroupsClaim string
	// ReviewAudience, when set, signs reviewers in to the web UI with
	// access tokens minted for it. Tokens for Audience never sign in there:
	// an agent holds one.
	ReviewAudience string
}

// Pos is a position in a config file. Line and Col are 1-based; 0 means unknown.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats p as FILE:LINE:COL, leaving out unknown parts.
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// Server is one upstream MCP server. Exactly one of Command (stdio) and URL
// (http, sse) is set.
type Server struct {
	// Name is the server's key in the file: [a-zA-Z0-9_-]+.
	Name string
	// Type is the transport, inferred from Command/URL when the file omits it.
	Type Transport
	// Command, Args, Env and Cwd start a stdio server. Env adds to a small
	// allowlist of toolgate's environment (PATH, HOME, LANG...), never the
	// rest of it. Values may hold ${VAR} references, unexpanded. Without
	// Cwd the server starts in the home directory, never in the workspace.
	Command string
	Args    []string
	Env     map[string]string
	Cwd     string
	// URL and Headers reach an HTTP or SSE server.
	URL     string
	Headers map[string]string
	// Disabled servers are parsed and validated but not started.
	Disabled bool
	// Timeout bounds each tools/call to this server (default 120s).
	Timeout time.Duration
	// MaxMessageBytes bounds each message the server sends (0: the
	// default, 8 MiB); a larger answer fails its call.
	MaxMessageBytes int64
	// MaxRequests is how many of the agents' requests the server is sent
	// at once (0: no limit); MaxRequestsPerPrincipal how many of those one
	// principal's may be (0: all). The others wait their turn.
	MaxRequests, MaxRequestsPerPrincipal int
	// Sandbox is the profile a stdio server's process runs in; "" runs it
	// unsandboxed (with a clean environment all the same).
	Sandbox string
	// Prefix is the file's per-server prefix setting; nil follows
	// naming.prefix. See [Config.Prefixed].
	Prefix *bool
	// Pos is where the server's name appears in the file.
	Pos Pos
}

// Naming controls exposed tool names: <server><Separator><tool>, or the
// upstream's name alone for a server that is not prefixed. Either way the
// name is made valid for Claude and Cursor (tools.ExposedName).
type Naming struct {
	// Separator joins server and tool names (default "__"); only
	// A-Z a-z 0-9 _ -.
	Separator string
	// Prefix is whether servers' tools are prefixed with the server's name
	// (default true); a server's own prefix setting overrides it.
	Prefix bool
}

// Prefixed reports whether s's tools are exposed as <server><sep><tool>:
// its own prefix setting, else naming.prefix.
func (c *Config) Prefixed(s Server) bool {
	if s.Prefix != nil {
		return *s.Prefix
	}
	return c.Naming.Prefix
}

// Workspace configures the built-in workspace tools (read_file, write_file,
// list_dir, run_command).
type Workspace struct {
	// Enabled defaults to true exactly when no server is enabled.
	Enabled bool
	// Root confines the tools; default "." (toolgate's working directory).
	Root string
	// CommandTimeout bounds run_command (default 30s).
	CommandTimeout time.Duration
}

// Model is model metadata: name and version.
type Model struct {
	Name    string
	Version string
}

// HTTP configures the agent-facing streamable HTTP transport.
type HTTP struct {
	// AuthTokenEnv names the environment variable holding the bearer token.
	// It is not read when AuthTokenFile is set.
	AuthTokenEnv string
	// AuthTokenFile, if set, is the file holding the bearer token instead
	// (its content trimmed of surrounding white space). [Load] resolves a
	// relative path against the config file's directory.
	AuthTokenFile string
	// AllowedOrigins are the browser origins accepted (scheme://host[:port]);
	// an entry without a port matches any port. Requests without Origin are allowed.
	AllowedOrigins []string
	// MaxRequestBytes limits a request body over HTTP, and a message (a
	// line) over stdio.
	MaxRequestBytes int64
	// Tokens accepts per-user bearer tokens (`toolgate tokens create`).
	Tokens bool
	// OIDC, when set, accepts OIDC access tokens from its issuer.
	OIDC *OIDC
	// SharedUser is the principal's user of calls made with the shared
	// token; "" means "shared".
	SharedUser string
	// SessionIdle ends a session that has had no request for this long
	// (default 30m); its client must initialize a new one.
	SessionIdle time.Duration
	// MaxSessions caps the live MCP sessions of all principals together
	// (default 4096; an initialize beyond it gets 503), and
	// MaxSessionsPerPrincipal those of one principal (default 64; 429).
	// A session ends with DELETE or SessionIdle.
	MaxSessions, MaxSessionsPerPrincipal int
	// MaxRequestsPerPrincipal caps the requests one principal has in
	// flight over HTTP (default 32; 429 beyond), and MaxRequestValues the
	// object members and array elements of one request (default 20000;
	// 413 beyond).
	MaxRequestsPerPrincipal, MaxRequestValues int
	// ConnIdle closes a keep-alive connection that has had no request for
	// this long (default 2m).
	ConnIdle time.Duration
	// BodyTimeout bounds the reading of a request's body, from the end of
	// its headers (default 1m); a slower body gets 408.
	BodyTimeout time.Duration
	// MaxConnections caps the open HTTP connections (/metrics' own
	// listener included); 0 means 3/4 of the process's open file limit, at
	// most 8192. At the cap, the connection idle the longest is closed to
	// make room, or the new one waits.
	MaxConnections int
	// ReviewerTokenEnv and ReviewerTokenFile give the reviewers' shared
	// token: it signs in to the web UI (as ReviewerUser) and nowhere else.
	// No credential /mcp accepts signs in to the UI, since agents hold
	// those: reviewers use this token, per-user review tokens (`toolgate
	// tokens create --review`) or OIDC tokens for OIDC.ReviewAudience.
	ReviewerTokenEnv, ReviewerTokenFile string
	// ReviewerUser is the user the reviewers' shared token signs in as;
	// "" means "reviewer".
	ReviewerUser string
	// Reviewers may answer reviews in the web UI: user names (the
	// reviewers' shared token's is ReviewerUser), or "group:NAME" for a
	// group's members. Empty means nobody.
	Reviewers []string
}

// PerUser reports whether agents authenticate as themselves (per-user
// tokens or OIDC), as a team deployment has them do.
func (h HTTP) PerUser() bool { return h.Tokens || h.OIDC != nil }

// Rules selects the rule pack. An empty File means the embedded default.
// The rule set's label lives in the rules file itself, so it is versioned
// with the rules it names.
type Rules struct {
	File string
}

// Audit configures the audit log. An empty Path means the per-user state dir.
type Audit struct {
	Path       string
	RedactKeys []string
	// Checkpoint configures signed checkpoints of the chain head; off
	// when its KeyFile is empty.
	Checkpoint Checkpoint
	// Retention archives old records out of the log while serve runs;
	// off when neither MaxAge nor MaxSize is set. It needs ArchiveDir.
	Retention Retention
	// ArchiveDir is where retention writes its archives (created 0700).
	ArchiveDir string

	// Driver is DriverSQLite (the default: the file at Path) or
	// DriverPostgres (the database at DSN, shared by replicas).
	Driver string
	// DSN is the PostgreSQL URL (postgres://user@host:5432/db?sslmode=...).
	// Keep the password out of it: PasswordEnv names the environment
	// variable holding it (read by the command, never by this package;
	// without it pgx also reads $PGPASSWORD and ~/.pgpass).
	DSN         string
	PasswordEnv string
	// StoreArgs is StoreArgsFull (the default when "") or StoreArgsHash:
	// each call's arguments are not stored, only their sha256.
	StoreArgs string
	// LeaseTTL is how long a serve process that stops renewing its lease
	// (it died) keeps its pending reviews before another process expires
	// them (SQLite) or takes them over (PostgreSQL); zero means the audit
	// package's default (30s).
	LeaseTTL time.Duration
}

// Audit argument storage (Audit.StoreArgs).
const (
	StoreArgsFull = "full"
	StoreArgsHash = "hash"
)

// Audit drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// DefaultRetentionInterval is how often serve applies the retention.
const DefaultRetentionInterval = time.Hour

// Retention says how long records stay in the live audit log.
type Retention struct {
	// MaxAge archives the calls decided longer ago than this.
	MaxAge time.Duration
	// MaxSize archives the oldest calls while the log's records take more
	// bytes than this (down to nine tenths of it), but never the calls
	// received less than MinAge ago.
	MaxSize int64
	// MinAge bounds MaxSize: the calls younger than this stay in the log
	// whatever its size (zero means the audit package's default, a week),
	// so an agent cannot push its recent calls out of the live log by
	// filling it.
	MinAge time.Duration
	// Interval is how often serve applies it (default 1h), and once at
	// start.
	Interval time.Duration
}

// Enabled reports whether r asks for anything.
func (r Retention) Enabled() bool { return r.MaxAge > 0 || r.MaxSize > 0 }

// DefaultCheckpointInterval is how often serve signs a checkpoint.
const DefaultCheckpointInterval = 10 * time.Minute

// Checkpoint configures the audit log's signed checkpoints.
type Checkpoint struct {
	// KeyFile is the Ed25519 private key (toolgate audit keygen); it must
	// lie outside every sandbox-writable path.
	KeyFile string
	// Interval is how often serve writes one (default 10m); serve also
	// writes one when it stops.
	Interval time.Duration
	// Publish lists where each checkpoint goes besides the log: a file
	// path (a JSON line is appended), an http(s) webhook URL (POSTed), or
	// "slack" (not supported yet). Empty means the file checkpoints.jsonl
	// beside the key file.
	Publish []string
}

// Review configures human review of calls whose decision is "review".
type Review struct {
	// Timeout is how long to wait for an answer (default 5m); no answer denies.
	Timeout time.Duration
	// Hold is how long a call waits for its review before it returns
	// "pending" (default 45s, under MCP clients' one-minute call limit);
	// an approval after that becomes a grant the retry uses.
	Hold time.Duration
	// GrantTTL is how long such a grant stays usable (default 15m).
	GrantTTL time.Duration
	// MaxPending is how many reviews one requester (a per-user
	// credential's person, else everyone on the shared token or none) may
	// have waiting, held ones included (default 5); past it a call that
	// needs review is refused without asking anyone.
	MaxPending int
	// Channels are tried in order: slack, cli, elicitation, web. Empty means the
	// review package's default.
	Channels []string
	Slack    Slack
}

// Slack configures the Slack review channel. The *Env fields name environment
// variables, the *File fields files (each takes the place of its *Env field
// when set; [Load] resolves a relative path against the config file's
// directory); secrets are never written in the config file itself.
type Slack struct {
	BotTokenEnv       string
	AppTokenEnv       string
	SigningSecretEnv  string
	BotTokenFile      string
	AppTokenFile      string
	SigningSecretFile string
	Channel           string
	// Mode is "socket" (default) or "http".
	Mode string
	// HTTPPath is the interactions endpoint in http mode.
	HTTPPath       string
	Approvers      []string
	ApproverGroups []string
	// Users maps Slack user IDs to principal users, so that nobody approves
	// a call made with their own credentials. With per-user credentials,
	// a Slack approval by a user not listed here is refused.
	Users map[string]string
	// APIURL overrides Slack's Web API base URL, for tests and
	// Slack-compatible proxies; an absolute http(s) URL ending in "/".
	// Empty means Slack's own (https://slack.com/api/).
	APIURL string
}

// Default returns the configuration used when there is no file: no upstream
// servers, built-in workspace tools enabled, every other setting at its default.
func Default() *Config {
	c := &Config{Sandbox: Sandbox{GitIdentity: true}, Naming: Naming{Prefix: true}}
	c.applyDefaults(nil)
	return c
}

// EmbeddedRules is the rules.file that names the rule pack built into
// toolgate (rules.DefaultName) rather than a file. Any other value is a
// path, "@" or not: a path taken for a name would be read from the working
// directory (the workspace, which the agent writes) and be no file of
// toolgate's, unprotected.
const EmbeddedRules = "@default"

// Load reads and parses the file at path. See [Parse]. Relative paths of
// files toolgate owns (rules.file, audit.path, the *_file secrets) are
// resolved against the config file's directory, so a config works from any
// working directory;
// workspace.root and a server's cwd stay relative to the working directory,
// where the agent starts toolgate.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	for _, f := range c.files() {
		if p := f.path; *p != "" && !filepath.IsAbs(*p) && *p != EmbeddedRules {
			*p = filepath.Join(dir, *p)
		}
	}
	for i, p := range c.Audit.Checkpoint.Publish {
		if !strings.Contains(p, "://") && p != "slack" && !filepath.IsAbs(p) {
			c.Audit.Checkpoint.Publish[i] = filepath.Join(dir, p)
		}
	}
	return c, nil
}

// File is a file or directory a config names: what it holds, and its path.
type File struct {
	What, Path string
}

// fileRef is a path field of a config and what the file holds.
type fileRef struct {
	what string
	path *string
}

// files are the path fields of c: Load resolves them, Files lists them.
func (c *Config) files() []fileRef {
	sl := &c.Review.Slack
	return []fileRef{
		{"rules file", &c.Rules.File},
		{"audit log", &c.Audit.Path},
		{"audit archives", &c.Audit.ArchiveDir},
		{"checkpoint key", &c.Audit.Checkpoint.KeyFile},
		{"secret file", &c.Metrics.AuthTokenFile},
		{"secret file", &c.HTTP.AuthTokenFile},
		{"secret file", &c.HTTP.ReviewerTokenFile},
		{"secret file", &sl.BotTokenFile},
		{"secret file", &sl.AppTokenFile},
		{"secret file", &sl.SigningSecretFile},
	}
}

// Files returns the files and directories c names, but the audit log (whose
// path the environment may override): its rules file, archives, keys and
// the files secrets are read from. Empty paths and EmbeddedRules are left
// out.
func (c *Config) Files() []File {
	var out []File
	for _, f := range c.files() {
		if p := *f.path; p != "" && p != EmbeddedRules && f.path != &c.Audit.Path {
			out = append(out, File{f.what, p})
		}
	}
	return out
}

// EnabledServers returns the servers that are not disabled, in file order.
func (c *Config) EnabledServers() []Server {
	var out []Server
	for _, s := range c.Servers {
		if !s.Disabled {
			out = append(out, s)
		}
	}
	return out
}

// applyDefaults fills unset fields. workspaceEnabled is the file's explicit
// workspace.enabled, or nil.
func (c *Config) applyDefaults(workspaceEnabled *bool) {
	if c.Naming.Separator == "" {
		c.Naming.Separator = DefaultSeparator
	}
	for i := range c.Servers {
		if c.Servers[i].Timeout == 0 {
			c.Servers[i].Timeout = DefaultServerTimeout
		}
	}
	if workspaceEnabled != nil {
		c.Workspace.Enabled = *workspaceEnabled
	} else {
		c.Workspace.Enabled = len(c.EnabledServers()) == 0
	}
	if c.Workspace.Root == "" {
		c.Workspace.Root = "."
	}
	if c.Workspace.CommandTimeout == 0 {
		c.Workspace.CommandTimeout = DefaultCommandTimeout
	}
	if c.HTTP.AuthTokenEnv == "" {
		c.HTTP.AuthTokenEnv = DefaultAuthTokenEnv
	}
	if c.HTTP.AllowedOrigins == nil {
		c.HTTP.AllowedOrigins = append([]string(nil), DefaultAllowedOrigins...)
	}
	if c.HTTP.MaxRequestBytes == 0 {
		c.HTTP.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.HTTP.SessionIdle == 0 {
		c.HTTP.SessionIdle = DefaultSessionIdle
	}
	if c.HTTP.MaxSessions == 0 {
		c.HTTP.MaxSessions = DefaultMaxSessions
	}
	if c.HTTP.MaxSessionsPerPrincipal == 0 {
		c.HTTP.MaxSessionsPerPrincipal = DefaultMaxSessionsPerPrincipal
	}
	if c.HTTP.MaxRequestsPerPrincipal == 0 {
		c.HTTP.MaxRequestsPerPrincipal = DefaultMaxRequestsPerPrincipal
	}
	if c.HTTP.MaxRequestValues == 0 {
		c.HTTP.MaxRequestValues = DefaultMaxRequestValues
	}
	if c.HTTP.ConnIdle == 0 {
		c.HTTP.ConnIdle = DefaultConnIdle
	}
	if c.HTTP.BodyTimeout == 0 {
		c.HTTP.BodyTimeout = DefaultBodyTimeout
	}
	if c.Pinning.Mode == "" {
		c.Pinning.Mode = PinningTOFU
	}
	if c.Sandbox.WorkspaceSecrets == "" {
		c.Sandbox.WorkspaceSecrets = SecretsHidden
	}
	if c.Audit.Checkpoint.Interval == 0 {
		c.Audit.Checkpoint.Interval = DefaultCheckpointInterval
	}
	if c.Audit.Retention.Interval == 0 {
		c.Audit.Retention.Interval = DefaultRetentionInterval
	}
	if c.Review.Timeout == 0 {
		c.Review.Timeout = DefaultReviewTimeout
	}
	if c.Review.Hold == 0 {
		c.Review.Hold = DefaultReviewHold
	}
	s := &c.Review.Slack
	if s.BotTokenEnv == "" {
		s.BotTokenEnv = DefaultSlackBotEnv
	}
	if s.AppTokenEnv == "" {
		s.AppTokenEnv = DefaultSlackAppEnv
	}
	if s.SigningSecretEnv == "" {
		s.SigningSecretEnv = DefaultSlackSigningEnv
	}
	if s.Mode == "" {
		s.Mode = SlackModeSocket
	}
	if s.HTTPPath == "" {
		s.HTTPPath = DefaultSlackHTTPPath
	}
}
