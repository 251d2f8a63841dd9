package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/toolgate/toolgate"
)

// Error is one problem in a config file, at a position. [Parse] returns all
// of a file's problems joined with errors.Join; use errors.As to get one.
type Error struct {
	Pos Pos
	Msg string
}

// Error formats e as "FILE:LINE:COL: message".
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

var (
	serverNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	separatorRE  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// yamlParserProblems are the yaml v3 parser messages whose line it reports
// 0-based (scanner messages come 1-based). A 0 line is left out of the
// message, which the default line 1 then gets right.
var yamlParserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
	"found undefined tag handle",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
}

// maxAliasDepth bounds alias chains, so a hostile file cannot loop the decoder.
const maxAliasDepth = 16

// Parse parses a config file's contents. name is used in error positions.
// It returns every problem found, each an [*Error], joined with errors.Join.
func Parse(name string, data []byte) (*Config, error) {
	d := &decoder{file: name}
	cfg := &Config{File: name, Sandbox: Sandbox{GitIdentity: true}}
	var workspaceEnabled, namingPrefix *bool
	// retentionKey is audit.retention's key, where a missing
	// audit.archive_dir (which may come after it) is reported.
	var retentionKey *yaml.Node

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, d.syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errAt(&extra, "only one YAML document is allowed")
	} else if !errors.Is(err, io.EOF) {
		d.errs = append(d.errs, d.syntaxError(err))
	}

	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != 0 && root.Kind != yaml.DocumentNode && !isNull(root) {
		var serversNode *yaml.Node
		d.fields(root, "the config", map[string]func(k, v *yaml.Node){
			"servers":    func(k, v *yaml.Node) { d.servers(cfg, &serversNode, k, v) },
			"mcpServers": func(k, v *yaml.Node) { d.servers(cfg, &serversNode, k, v) },
			"start_wait": func(_, v *yaml.Node) { cfg.StartWait = d.duration(v) },
			"naming": func(_, v *yaml.Node) {
				d.fields(v, "naming", map[string]func(k, v *yaml.Node){
					"separator": func(_, v *yaml.Node) {
						cfg.Naming.Separator = d.str(v)
						if !separatorRE.MatchString(cfg.Naming.Separator) {
							d.errAt(v, "naming.separator must be one or more of A-Z a-z 0-9 _ - (the only characters Claude accepts in a tool name), got %q", cfg.Naming.Separator)
						}
					},
					"prefix": func(_, v *yaml.Node) {
						if b, ok := d.boolean(v); ok {
							namingPrefix = &b
						}
					},
				})
			},
			"workspace": func(_, v *yaml.Node) {
				d.fields(v, "workspace", map[string]func(k, v *yaml.Node){
					"enabled": func(_, v *yaml.Node) {
						if b, ok := d.boolean(v); ok {
							workspaceEnabled = &b
						}
					},
					"root":            func(_, v *yaml.Node) { cfg.Workspace.Root = d.str(v) },
					"command_timeout": func(_, v *yaml.Node) { cfg.Workspace.CommandTimeout = d.duration(v) },
				})
			},
			"model": func(_, v *yaml.Node) {
				d.fields(v, "model", map[string]func(k, v *yaml.Node){
					"name":    func(_, v *yaml.Node) { cfg.Model.Name = d.str(v) },
					"version": func(_, v *yaml.Node) { cfg.Model.Version = d.str(v) },
				})
			},
			"http": func(_, v *yaml.Node) { d.http(&cfg.HTTP, v) },
			"rules": func(_, v *yaml.Node) {
				d.fields(v, "rules", map[string]func(k, v *yaml.Node){
					"file": func(_, v *yaml.Node) { cfg.Rules.File = d.str(v) },
				})
			},
			"audit": func(_, v *yaml.Node) {
				d.fields(v, "audit", map[string]func(k, v *yaml.Node){
					"path":        func(_, v *yaml.Node) { cfg.Audit.Path = d.str(v) },
					"redact_keys": func(_, v *yaml.Node) { cfg.Audit.RedactKeys = d.strList(v, "audit.redact_keys", false) },
					"checkpoint": func(_, v *yaml.Node) {
						c := &cfg.Audit.Checkpoint
						d.fields(v, "audit.checkpoint", map[string]func(k, v *yaml.Node){
							"key_file": func(_, v *yaml.Node) { c.KeyFile = d.str(v) },
							"interval": func(_, v *yaml.Node) { c.Interval = d.duration(v) },
							"publish":  func(_, v *yaml.Node) { c.Publish = d.strList(v, "audit.checkpoint.publish", false) },
						})
					},
					"archive_dir": func(_, v *yaml.Node) { cfg.Audit.ArchiveDir = d.str(v) },
					"retention": func(k, v *yaml.Node) {
						r := &cfg.Audit.Retention
						d.fields(v, "audit.retention", map[string]func(k, v *yaml.Node){
							"max_age":  func(_, v *yaml.Node) { r.MaxAge = d.duration(v) },
							"max_size": func(_, v *yaml.Node) { r.MaxSize = d.size(v) },
							"min_age":  func(_, v *yaml.Node) { r.MinAge = d.duration(v) },
							"interval": func(_, v *yaml.Node) { r.Interval = d.duration(v) },
						})
						retentionKey = k
					},
					"driver":       func(_, v *yaml.Node) { cfg.Audit.Driver = d.str(v) },
					"dsn":          func(_, v *yaml.Node) { cfg.Audit.DSN = d.str(v) },
					"password_env": func(_, v *yaml.Node) { cfg.Audit.PasswordEnv = d.envName(v, "audit.password_env") },
					"lease_ttl":    func(_, v *yaml.Node) { cfg.Audit.LeaseTTL = d.duration(v) },
					"store_args": func(_, v *yaml.Node) {
						if cfg.Audit.StoreArgs = d.str(v); cfg.Audit.StoreArgs != StoreArgsFull && cfg.Audit.StoreArgs != StoreArgsHash {
							d.errAt(v, "audit.store_args must be %s or %s, got %q", StoreArgsFull, StoreArgsHash, cfg.Audit.StoreArgs)
						}
					},
				})
				if cfg.Audit.Retention.Enabled() && cfg.Audit.ArchiveDir == "" {
					d.errAt(retentionKey, "audit.retention needs audit.archive_dir: the directory its archives go to")
				}
				switch a := cfg.Audit; {
				case a.Driver != "" && a.Driver != DriverSQLite && a.Driver != DriverPostgres:
					d.errAt(v, "audit.driver must be %s or %s, got %q", DriverSQLite, DriverPostgres, a.Driver)
				case a.Driver == DriverPostgres && !strings.HasPrefix(a.DSN, "postgres://") && !strings.HasPrefix(a.DSN, "postgresql://"):
					d.errAt(v, "audit.dsn must be a postgres:// URL with audit.driver postgres")
				case a.Driver == DriverPostgres && a.Path != "":
					d.errAt(v, "audit.path is the SQLite file; with audit.driver postgres the log is at audit.dsn")
				case a.Driver != DriverPostgres && (a.DSN != "" || a.PasswordEnv != ""):
					d.errAt(v, "audit.dsn and audit.password_env need audit.driver postgres")
				}
			},
			"review":  func(_, v *yaml.Node) { d.review(&cfg.Review, v) },
			"metrics": func(_, v *yaml.Node) { d.metrics(&cfg.Metrics, v) },
			"sandbox": func(_, v *yaml.Node) { d.sandbox(&cfg.Sandbox, v) },
			"pinning": func(_, v *yaml.Node) {
				d.fields(v, "pinning", map[string]func(k, v *yaml.Node){
					"mode": func(_, v *yaml.Node) {
						cfg.Pinning.Mode = d.str(v)
						if cfg.Pinning.Mode != PinningTOFU && cfg.Pinning.Mode != PinningStrict {
							d.errAt(v, "pinning.mode must be %s or %s, got %q", PinningTOFU, PinningStrict, cfg.Pinning.Mode)
						}
					},
				})
			},
		})
	}
	for _, s := range cfg.Servers {
		if s.Sandbox != "" && !cfg.Sandbox.NamesProfile(s.Sandbox) {
			d.errs = append(d.errs, &Error{Pos: s.Pos, Msg: fmt.Sprintf("server %q: sandbox profile %q is not defined (define it under sandbox.profiles, or use read-only or workspace-write)", s.Name, s.Sandbox)})
		}
	}
	if err := errors.Join(d.errs...); err != nil {
		return nil, err
	}
	cfg.Naming.Prefix = namingPrefix == nil || *namingPrefix
	cfg.applyDefaults(workspaceEnabled)
	return cfg, nil
}

type decoder struct {
	file string
	errs []error
}

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

func (d *decoder) errAt(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.pos(n), Msg: fmt.Sprintf(format, args...)})
}

// syntaxError turns a YAML parser error into an *Error with the line it names.
func (d *decoder) syntaxError(err error) error {
	msg := err.Error()
	p := Pos{File: d.file, Line: 1}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		msg = m[2]
		if line, aerr := strconv.Atoi(m[1]); aerr == nil && line > 0 {
			p.Line = line
			// yaml v3 reports parser (not scanner) errors with a 0-based line.
			if slices.Contains(yamlParserProblems, msg) {
				p.Line++
			}
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &Error{Pos: p, Msg: "invalid YAML: " + msg}
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < maxAliasDepth; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an unresolvable alias"
	default:
		return "nothing"
	}
}

// fields walks mapping n, calling handlers[key] for each key in file order,
// and reports unknown keys (with a suggestion) and duplicates. A null n is an
// empty mapping.
func (d *decoder) fields(n *yaml.Node, what string, handlers map[string]func(k, v *yaml.Node)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errAt(n, "%s must be a mapping, got %s", what, kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.errAt(k, "%s: keys must be strings, got %s", what, kindName(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.errAt(k, "%s: duplicate key %q (first at line %d)", what, k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		h, ok := handlers[k.Value]
		if !ok {
			d.errAt(k, "unknown key %q in %s%s", k.Value, what, suggest(k.Value, handlers))
			continue
		}
		h(k, v)
	}
}

// suggest returns ` (did you mean "x"?)` for the closest known key, or the
// list of known keys when none is close.
func suggest(key string, handlers map[string]func(k, v *yaml.Node)) string {
	known := make([]string, 0, len(handlers))
	for k := range handlers {
		known = append(known, k)
	}
	slices.Sort(known)
	best, bestDist := "", math.MaxInt
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), strings.ToLower(k)); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" && bestDist <= max(2, len(key)/3) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (known keys: " + strings.Join(known, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// str decodes a scalar as a string; numbers and booleans are taken as
// written. Null is "".
func (d *decoder) str(n *yaml.Node) string {
	n = deref(n)
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		d.errAt(n, "expected a string, got %s", kindName(n))
		return ""
	}
	return n.Value
}

func (d *decoder) boolean(n *yaml.Node) (bool, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.errAt(n, "expected true or false, got %s", kindName(n))
		return false, false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		d.errAt(n, "expected true or false, got %s", kindName(n))
		return false, false
	}
	return b, true
}

func (d *decoder) positiveInt(n *yaml.Node) int64 {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.errAt(n, "expected a whole number, got %s", kindName(n))
		return 0
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil || i <= 0 {
		d.errAt(n, "expected a positive whole number, got %s", kindName(n))
		return 0
	}
	return i
}

// size decodes a positive byte count: a whole number, or one with a unit
// (KB, MB, GB, TB: powers of 1000; KiB, MiB, GiB, TiB: of 1024).
func (d *decoder) size(n *yaml.Node) int64 {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		return d.positiveInt(n)
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}}
	if n.Kind == yaml.ScalarNode {
		for _, u := range units {
			if num, ok := strings.CutSuffix(strings.TrimSpace(n.Value), u.suffix); ok {
				v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
				if err == nil && v > 0 && v*float64(u.mult) < 1<<62 {
					return int64(v * float64(u.mult))
				}
			}
		}
	}
	d.errAt(n, "expected a size like 500MB or 10GiB (or a number of bytes), got %s", kindName(n))
	return 0
}

// duration decodes a positive Go duration string ("30s", "5m", "1h30m").
func (d *decoder) duration(n *yaml.Node) time.Duration {
	n = deref(n)
	if isNull(n) {
		return 0
	}
	if n.Kind != yaml.ScalarNode {
		d.errAt(n, "expected a duration like 30s or 5m, got %s", kindName(n))
		return 0
	}
	if n.ShortTag() == "!!int" || n.ShortTag() == "!!float" {
		d.errAt(n, "duration %s has no unit: write it like %ss or %sm", n.Value, n.Value, n.Value)
		return 0
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errAt(n, "invalid duration %q: write it like 30s, 5m or 1h30m", n.Value)
		return 0
	}
	if v <= 0 {
		d.errAt(n, "duration %q must be positive", n.Value)
		return 0
	}
	return v
}

// strList decodes a list of scalars. A single scalar is not a list.
func (d *decoder) strList(n *yaml.Node, what string, allowEmptyItems bool) []string {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errAt(n, "%s must be a list, got %s", what, kindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		item = deref(item)
		if item.Kind != yaml.ScalarNode || isNull(item) {
			d.errAt(item, "%s: items must be strings, got %s", what, kindName(item))
			continue
		}
		if item.Value == "" && !allowEmptyItems {
			d.errAt(item, "%s: empty item", what)
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

// strMap decodes a mapping of scalars to scalars.
func (d *decoder) strMap(n *yaml.Node, what string, keyRE *regexp.Regexp) map[string]string {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errAt(n, "%s must be a mapping, got %s", what, kindName(n))
		return nil
	}
	out := make(map[string]string, len(n.Content)/2)
	lines := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			d.errAt(k, "%s: keys must be non-empty strings, got %s", what, kindName(k))
			continue
		}
		if keyRE != nil && !keyRE.MatchString(k.Value) {
			d.errAt(k, "%s: invalid name %q", what, k.Value)
			continue
		}
		if line, dup := lines[k.Value]; dup {
			d.errAt(k, "%s: duplicate key %q (first at line %d)", what, k.Value, line)
			continue
		}
		lines[k.Value] = k.Line
		if v.Kind != yaml.ScalarNode {
			d.errAt(v, "%s.%s must be a string, got %s", what, k.Value, kindName(v))
			continue
		}
		if isNull(v) {
			out[k.Value] = ""
			continue
		}
		out[k.Value] = v.Value
	}
	return out
}

func (d *decoder) envName(n *yaml.Node, what string) string {
	s := d.str(n)
	if s != "" && !envNameRE.MatchString(s) {
		d.errAt(n, "%s must be an environment variable name, got %q", what, s)
	}
	return s
}

func (d *decoder) servers(cfg *Config, first **yaml.Node, k, v *yaml.Node) {
	if *first != nil {
		d.errAt(k, "%q given but servers were already defined at line %d: use either servers or mcpServers", k.Value, (*first).Line)
		return
	}
	*first = k
	v = deref(v)
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		d.errAt(v, "%s must be a mapping of server name to settings, got %s", k.Value, kindName(v))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		nk, nv := deref(v.Content[i]), deref(v.Content[i+1])
		if nk.Kind != yaml.ScalarNode {
			d.errAt(nk, "server names must be strings, got %s", kindName(nk))
			continue
		}
		name := nk.Value
		if line, dup := seen[name]; dup {
			d.errAt(nk, "duplicate server %q (first at line %d)", name, line)
			continue
		}
		seen[name] = nk.Line
		if !serverNameRE.MatchString(name) {
			d.errAt(nk, "invalid server name %q: use letters, digits, _ and -", name)
		}
		if s, ok := d.server(name, nk, nv); ok {
			cfg.Servers = append(cfg.Servers, s)
		}
	}
}

func (d *decoder) server(name string, k, v *yaml.Node) (Server, bool) {
	s := Server{Name: name, Pos: d.pos(k)}
	what := fmt.Sprintf("server %q", name)
	nerr := len(d.errs)
	var typeNode, urlNode, cmdNode, sandboxNode, perNode *yaml.Node
	d.fields(v, what, map[string]func(k, v *yaml.Node){
		"type": func(_, v *yaml.Node) {
			typeNode = v
			switch t := d.str(v); t {
			case "stdio":
				s.Type = TransportStdio
			case "http", "streamable-http", "streamableHttp", "streamable_http":
				s.Type = TransportHTTP
			case "sse":
				s.Type = TransportSSE
			default:
				d.errAt(v, "%s: unknown type %q (want stdio, http or sse)", what, t)
			}
		},
		"command": func(_, v *yaml.Node) { cmdNode = v; s.Command = d.str(v) },
		"args":    func(_, v *yaml.Node) { s.Args = d.strList(v, what+" args", true) },
		"env":     func(_, v *yaml.Node) { s.Env = d.strMap(v, what+" env", envNameRE) },
		"cwd":     func(_, v *yaml.Node) { s.Cwd = d.str(v) },
		"url":     func(_, v *yaml.Node) { urlNode = v; s.URL = d.str(v) },
		"headers": func(_, v *yaml.Node) { s.Headers = d.strMap(v, what+" headers", nil) },
		"disabled": func(_, v *yaml.Node) {
			if b, ok := d.boolean(v); ok {
				s.Disabled = b
			}
		},
		"timeout": func(_, v *yaml.Node) { s.Timeout = d.duration(v) },
		"max_message_bytes": func(_, v *yaml.Node) {
			if s.MaxMessageBytes = d.size(v); s.MaxMessageBytes > 1<<30 {
				d.errAt(v, "%s: max_message_bytes is at most 1GiB", what)
			}
		},
		"max_requests": func(_, v *yaml.Node) { s.MaxRequests = int(d.positiveInt(v)) },
		"max_requests_per_principal": func(_, v *yaml.Node) {
			perNode = v
			s.MaxRequestsPerPrincipal = int(d.positiveInt(v))
		},
		"sandbox": func(_, v *yaml.Node) { sandboxNode = v; s.Sandbox = d.str(v) },
		"prefix": func(_, v *yaml.Node) {
			if b, ok := d.boolean(v); ok {
				s.Prefix = &b
			}
		},
	})
	if len(d.errs) > nerr {
		return s, false
	}
	switch {
	case s.Command == "" && s.URL == "":
		d.errAt(k, "%s needs \"command\" (a stdio server) or \"url\" (an HTTP or SSE server)", what)
	case s.Command != "" && s.URL != "":
		d.errAt(urlNode, "%s has both \"command\" and \"url\": give one", what)
	case s.Command != "":
		if s.Type != "" && s.Type != TransportStdio {
			d.errAt(typeNode, "%s: type %q needs \"url\", not \"command\"", what, s.Type)
		}
		s.Type = TransportStdio
	default:
		if s.Type == TransportStdio {
			d.errAt(typeNode, "%s: type stdio needs \"command\", not \"url\"", what)
		}
		if s.Type == "" {
			s.Type = TransportHTTP
		}
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			if !strings.Contains(s.URL, "${") {
				d.errAt(urlNode, "%s: url %q must be an absolute http:// or https:// URL", what, s.URL)
			}
		}
		if len(s.Args) > 0 || len(s.Env) > 0 || s.Cwd != "" {
			d.errAt(urlNode, "%s: args, env and cwd only apply to stdio servers (with \"command\")", what)
		}
	}
	if s.Command != "" && len(s.Headers) > 0 {
		d.errAt(cmdNode, "%s: headers only apply to HTTP and SSE servers (with \"url\")", what)
	}
	if s.MaxRequestsPerPrincipal > 0 && (s.MaxRequests == 0 || s.MaxRequestsPerPrincipal > s.MaxRequests) {
		d.errAt(perNode, "%s: max_requests_per_principal needs max_requests, and at least as many", what)
	}
	if s.Sandbox != "" && s.Command == "" {
		d.errAt(sandboxNode, "%s: sandbox only applies to stdio servers (with \"command\"); a remote server runs elsewhere", what)
	}
	return s, len(d.errs) == nerr
}

func (d *decoder) http(h *HTTP, v *yaml.Node) {
	handlers := map[string]func(k, v *yaml.Node){
		"allowed_origins": func(_, v *yaml.Node) {
			list := deref(v)
			h.AllowedOrigins = d.strList(v, "http.allowed_origins", false)
			if h.AllowedOrigins == nil {
				h.AllowedOrigins = []string{}
			}
			if list.Kind != yaml.SequenceNode {
				return
			}
			for _, item := range list.Content {
				item = deref(item)
				if item.Kind != yaml.ScalarNode || item.Value == "" {
					continue
				}
				if err := checkOrigin(item.Value); err != nil {
					d.errAt(item, "http.allowed_origins: %v", err)
				}
			}
		},
		"max_request_bytes": func(_, v *yaml.Node) { h.MaxRequestBytes = d.positiveInt(v) },
		"tokens": func(_, v *yaml.Node) {
			if b, ok := d.boolean(v); ok {
				h.Tokens = b
			}
		},
		"shared_user":   func(_, v *yaml.Node) { h.SharedUser = d.str(v) },
		"reviewer_user": func(_, v *yaml.Node) { h.ReviewerUser = d.str(v) },
		"reviewers":     func(_, v *yaml.Node) { h.Reviewers = d.strList(v, "http.reviewers", false) },
		"oidc": func(_, v *yaml.Node) {
			o := &OIDC{}
			d.fields(v, "http.oidc", map[string]func(k, v *yaml.Node){
				"issuer":          func(_, v *yaml.Node) { o.Issuer = d.str(v) },
				"audience":        func(_, v *yaml.Node) { o.Audience = d.str(v) },
				"user_claim":      func(_, v *yaml.Node) { o.UserClaim = d.str(v) },
				"groups_claim":    func(_, v *yaml.Node) { o.GroupsClaim = d.str(v) },
				"review_audience": func(_, v *yaml.Node) { o.ReviewAudience = d.str(v) },
			})
			if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				d.errAt(v, "http.oidc.issuer must be the issuer's URL, got %q", o.Issuer)
			}
			if o.Audience == "" {
				d.errAt(v, "http.oidc.audience must be set (the audience toolgate's tokens are minted for)")
			}
			if o.ReviewAudience != "" && o.ReviewAudience == o.Audience {
				d.errAt(v, "http.oidc.review_audience must differ from audience: agents hold tokens for audience, and must not sign in to the web UI with them")
			}
			h.OIDC = o
		},
		"session_idle": func(_, v *yaml.Node) { h.SessionIdle = d.duration(v) },
		"max_sessions": func(_, v *yaml.Node) { h.MaxSessions = int(d.positiveInt(v)) },
		"max_sessions_per_principal": func(_, v *yaml.Node) {
			h.MaxSessionsPerPrincipal = int(d.positiveInt(v))
		},
		"max_requests_per_principal": func(_, v *yaml.Node) {
			h.MaxRequestsPerPrincipal = int(d.positiveInt(v))
		},
		"max_request_values": func(_, v *yaml.Node) { h.MaxRequestValues = int(d.positiveInt(v)) },
		"conn_idle":          func(_, v *yaml.Node) { h.ConnIdle = d.duration(v) },
		"body_timeout":       func(_, v *yaml.Node) { h.BodyTimeout = d.duration(v) },
		"max_connections":    func(_, v *yaml.Node) { h.MaxConnections = int(d.positiveInt(v)) },
	}
	check := d.secret(handlers, "http", "auth_token", &h.AuthTokenEnv, &h.AuthTokenFile)
	checkReviewer := d.secret(handlers, "http", "reviewer_token", &h.ReviewerTokenEnv, &h.ReviewerTokenFile)
	d.fields(v, "http", handlers)
	check()
	checkReviewer()
}

// secret adds the handlers of a secret's two keys to handlers: NAME_env,
// the environment variable holding it, and NAME_file, a file holding it.
// It returns a check to run once the mapping is decoded: giving both keys
// is an error, since either reading would ignore what the other says.
func (d *decoder) secret(handlers map[string]func(k, v *yaml.Node), what, name string, env, file *string) (check func()) {
	var envNode, fileNode *yaml.Node
	handlers[name+"_env"] = func(_, v *yaml.Node) {
		envNode = v
		*env = d.envName(v, what+"."+name+"_env")
	}
	handlers[name+"_file"] = func(_, v *yaml.Node) {
		fileNode = v
		// str reports a value that is not a string; an empty one is ours.
		if *file = d.str(v); *file == "" && deref(v).Kind == yaml.ScalarNode {
			d.errAt(v, "%s.%s_file must be a path, got %s", what, name, kindName(deref(v)))
		}
	}
	return func() {
		if envNode != nil && fileNode != nil {
			d.errAt(fileNode, "%s: give %s_env or %s_file, not both", what, name, name)
		}
	}
}

// checkOrigin accepts scheme://host[:port] with nothing after it.
func checkOrigin(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an origin like http://localhost:3000", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin: give only scheme://host[:port]", s)
	}
	return nil
}

func (d *decoder) metrics(m *Metrics, v *yaml.Node) {
	handlers := map[string]func(k, v *yaml.Node){
		"listen": func(_, v *yaml.Node) { m.Listen = d.str(v) },
	}
	check := d.secret(handlers, "metrics", "auth_token", &m.AuthTokenEnv, &m.AuthTokenFile)
	d.fields(v, "metrics", handlers)
	check()
}

func (d *decoder) review(r *Review, v *yaml.Node) {
	var channelsNode *yaml.Node
	d.fields(v, "review", map[string]func(k, v *yaml.Node){
		"timeout":     func(_, v *yaml.Node) { r.Timeout = d.duration(v) },
		"hold":        func(_, v *yaml.Node) { r.Hold = d.duration(v) },
		"grant_ttl":   func(_, v *yaml.Node) { r.GrantTTL = d.duration(v) },
		"max_pending": func(_, v *yaml.Node) { r.MaxPending = int(d.positiveInt(v)) },
		"channels": func(_, v *yaml.Node) {
			channelsNode = v
			r.Channels = d.strList(v, "review.channels", false)
			list := deref(v)
			if list.Kind != yaml.SequenceNode {
				return
			}
			seen := map[string]bool{}
			for _, item := range list.Content {
				item = deref(item)
				if item.Kind != yaml.ScalarNode {
					continue
				}
				if !toolgate.IsReviewChannel(item.Value) {
					d.errAt(item, "review.channels: unknown channel %q (want %s)", item.Value, toolgate.ReviewChannels)
				}
				if seen[item.Value] {
					d.errAt(item, "review.channels: %q listed twice", item.Value)
				}
				seen[item.Value] = true
			}
		},
		"slack": func(_, v *yaml.Node) { d.slack(&r.Slack, v) },
	})
	if slices.Contains(r.Channels, toolgate.ChannelSlack) && r.Slack.Channel == "" {
		d.errAt(channelsNode, "review.channels includes slack but review.slack.channel is not set")
	}
}

func (d *decoder) slack(s *Slack, v *yaml.Node) {
	handlers := map[string]func(k, v *yaml.Node){
		"channel": func(_, v *yaml.Node) { s.Channel = d.str(v) },
		"mode": func(_, v *yaml.Node) {
			s.Mode = d.str(v)
			if s.Mode != SlackModeSocket && s.Mode != SlackModeHTTP {
				d.errAt(v, "review.slack.mode must be socket or http, got %q", s.Mode)
			}
		},
		"http_path": func(_, v *yaml.Node) {
			s.HTTPPath = d.str(v)
			if !strings.HasPrefix(s.HTTPPath, "/") {
				d.errAt(v, "review.slack.http_path must start with /, got %q", s.HTTPPath)
			}
		},
		"approvers":       func(_, v *yaml.Node) { s.Approvers = d.strList(v, "review.slack.approvers", false) },
		"approver_groups": func(_, v *yaml.Node) { s.ApproverGroups = d.strList(v, "review.slack.approver_groups", false) },
		"users":           func(_, v *yaml.Node) { s.Users = d.strMap(v, "review.slack.users", nil) },
		"api_url": func(_, v *yaml.Node) {
			s.APIURL = d.str(v)
			if err := checkAPIURL(s.APIURL); err != nil {
				d.errAt(v, "review.slack.api_url: %v", err)
			}
		},
	}
	checks := []func(){
		d.secret(handlers, "review.slack", "bot_token", &s.BotTokenEnv, &s.BotTokenFile),
		d.secret(handlers, "review.slack", "app_token", &s.AppTokenEnv, &s.AppTokenFile),
		d.secret(handlers, "review.slack", "signing_secret", &s.SigningSecretEnv, &s.SigningSecretFile),
	}
	d.fields(v, "review.slack", handlers)
	for _, check := range checks {
		check()
	}
}

// checkAPIURL accepts an absolute http(s) base URL ending in "/", which is
// what slack-go appends method names to.
func checkAPIURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	if !strings.HasSuffix(u.Path, "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must end with \"/\" (like https://slack.com/api/)", s)
	}
	return nil
}
