package rules

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/toolgate/toolgate"
)

// inferKind infers what a tool does from its name, description, input
// schema (property names) and annotations, so a rule can cover every
// server's shell tool without naming it. The strongest capability wins:
// shell > database > vcs > network > file_write > file_read > other, and
// hints can only raise a kind, never lower one: a tool that takes a
// command is a shell tool whatever its readOnlyHint says.
func inferKind(c *toolgate.Call) string {
	return inferKindProps(c, schemaProps(c.InputSchema))
}

// inferKindProps is inferKind given the schema's property names.
func inferKindProps(c *toolgate.Call, props []string) string {
	name := nameTokens(c.Tool)
	if len(props) == 0 {
		for k := range c.Args {
			props = append(props, k)
		}
	}
	prop := map[string]bool{}
	for _, p := range props {
		prop[strings.ToLower(strings.ReplaceAll(p, "-", "_"))] = true
	}
	has := func(toks ...string) bool {
		for _, t := range toks {
			if slices.Contains(name, t) {
				return true
			}
		}
		return false
	}
	hasProp := func(ps ...string) bool {
		for _, p := range ps {
			if prop[p] {
				return true
			}
		}
		return false
	}
	desc := strings.ToLower(c.Description)
	server := strings.ToLower(c.Server)

	sqlish := has("sql", "query", "queries", "database", "db", "table", "tables", "postgres", "postgresql", "mysql",
		"sqlite", "mongo", "mongodb", "redis", "collection", "bigquery", "snowflake", "supabase", "neon", "clickhouse", "migration") ||
		hasProp("sql", "query_sql") || strings.Contains(desc, " sql") || strings.Contains(server, "postgres") ||
		strings.Contains(server, "sqlite") || strings.Contains(server, "mysql") || strings.Contains(server, "mongo") ||
		strings.Contains(server, "redis") || strings.Contains(server, "database") || server == "db"
	shellName := has("shell", "bash", "sh", "zsh", "terminal", "powershell", "pwsh", "exec", "console", "cmd", "repl") ||
		has("command", "commands", "process", "script", "code", "program", "subprocess") &&
			has("run", "execute", "exec", "start", "spawn", "launch", "interact", "eval", "send", "invoke") ||
		has("run", "execute") && len(name) == 1 || c.Tool == "eval"
	shellProp := hasProp("command", "cmd", "script", "command_line", "commandline", "shell_command", "bash_command", "argv")
	for p := range prop {
		if strings.HasSuffix(p, "_command") || strings.HasSuffix(p, "_cmd") {
			shellProp = true
		}
	}
	shellDesc := containsAny(desc, "shell command", "terminal command", "run a command", "execute a command",
		"executes a command", "runs a command", "execute command", "run command", "command line", "bash command",
		"execute shell", "execute arbitrary", "run arbitrary", "start a process", "starts a process", "start a new process",
		"execute code", "run code", "executes code", "runs code", "execute python", "run python")

	switch {
	case shellName || shellProp && !sqlish || shellDesc && !sqlish:
		return KindShell
	case sqlish && (hasProp("sql", "query", "statement", "queries", "table", "collection", "database", "db", "connection_string") ||
		has("sql", "query", "database", "db", "table", "tables", "collection", "migration") || strings.Contains(desc, "sql")):
		return KindDatabase
	}

	vcs := has("git", "commit", "commits", "push", "pull", "branch", "branches", "merge", "rebase", "checkout",
		"tag", "stash", "pr", "prs", "repo", "repository", "repositories", "issue", "issues", "fork", "release", "diff", "blame") &&
		!has("file", "files", "directory") ||
		strings.Contains(server, "git") || has("pull_request", "pullrequest") ||
		(has("pull") && has("request", "requests"))
	if vcs && (strings.Contains(server, "git") || has("git", "commit", "branch", "merge", "rebase", "pr", "pull", "push", "repo", "repository") || hasProp("repo", "repo_path", "owner", "branch", "pull_number")) {
		return KindVCS
	}

	network := has("fetch", "http", "https", "url", "web", "browse", "browser", "navigate", "request", "curl", "download",
		"scrape", "crawl", "webhook", "api", "send", "post", "email", "mail", "slack", "message", "upload", "search_web",
		"screenshot", "click", "playwright", "puppeteer") ||
		hasProp("url", "uri", "urls", "href", "endpoint", "webhook_url") && !hasProp("path", "file_path") ||
		containsAny(desc, "fetch a url", "fetches a url", "http request", "web page", "webpage", "fetches content from", "internet") ||
		strings.Contains(server, "fetch") || strings.Contains(server, "browser") || strings.Contains(server, "playwright") ||
		strings.Contains(server, "puppeteer") || strings.Contains(server, "slack")
	if network && !has("file", "files", "directory") {
		return KindNetwork
	}

	// Cluster and cloud tools act on remote systems whatever their verbs.
	if has("kubectl", "k8s", "kubernetes", "helm", "terraform", "pulumi", "aws", "gcloud", "gcp", "azure", "cloud",
		"cluster", "pod", "pods", "deployment", "ec2", "s3", "lambda", "ecs", "eks", "gke", "aks") ||
		containsAny(server, "k8s", "kube", "aws", "gcp", "azure", "cloud", "terraform") {
		if network || c.Annotations.OpenWorld != nil && *c.Annotations.OpenWorld {
			return KindNetwork
		}
		return KindOther
	}

	fileish := hasProp("path", "paths", "file", "file_path", "filepath", "filename", "source", "destination", "directory", "dir") ||
		has("file", "files", "directory", "directories", "dir", "folder", "path", "fs", "notebook")
	writeName := has("write", "edit", "create", "move", "rename", "delete", "remove", "rm", "mkdir", "patch", "append",
		"save", "copy", "cp", "mv", "replace", "update", "insert", "set", "put", "modify", "chmod", "truncate", "apply", "str_replace", "multiedit")
	writeProp := hasProp("content", "contents", "new_string", "old_string", "edits", "text", "data", "destination", "patch", "diff", "new_source")
	readName := has("read", "list", "get", "stat", "info", "search", "find", "glob", "grep", "tree", "view", "cat", "ls",
		"open", "show", "head", "tail", "describe", "lookup", "allowed")
	switch {
	case fileish && (writeName || writeProp && !readName):
		return KindFileWrite
	case writeName && (c.Annotations.Destructive != nil && *c.Annotations.Destructive):
		return KindFileWrite
	case fileish || readName && hasProp("pattern", "query", "glob"):
		return KindFileRead
	case network:
		return KindNetwork
	}
	if c.Annotations.OpenWorld != nil && *c.Annotations.OpenWorld && !(c.Annotations.ReadOnly != nil && *c.Annotations.ReadOnly) {
		return KindNetwork
	}
	return KindOther
}

// kindCache remembers inferKind's answer per tool definition, so the
// schema is decoded and the name split once per tool, not once per call.
// The answer depends only on the fields kindKey holds and the schema
// itself, except for a tool whose schema names no property: its kind
// comes from each call's argument names, and the cache only remembers
// that. Safe for concurrent use; a nil cache remembers nothing.
type kindCache struct {
	seed maphash.Seed
	mu   sync.RWMutex
	m    map[kindKey]kindEntry
}

// maxKinds bounds a kindCache: tools beyond it are inferred every call.
const maxKinds = 4096

// kindKey is what inferKind reads of a call, the schema by its hash.
type kindKey struct {
	tool, server, desc               string
	schema                           uint64
	readOnly, destructive, openWorld int8
}

type kindEntry struct {
	schema string
	kind   string // "": the kind depends on the call's arguments
}

func newKindCache() *kindCache {
	return &kindCache{seed: maphash.MakeSeed(), m: map[kindKey]kindEntry{}}
}

// kind is inferKind(c), remembered.
func (k *kindCache) kind(c *toolgate.Call) string {
	if k == nil {
		return inferKind(c)
	}
	hint := func(p *bool) int8 {
		switch {
		case p == nil:
			return -1
		case *p:
			return 1
		}
		return 0
	}
	a := &c.Annotations
	key := kindKey{tool: c.Tool, server: c.Server, desc: c.Description, schema: maphash.Bytes(k.seed, c.InputSchema),
		readOnly: hint(a.ReadOnly), destructive: hint(a.Destructive), openWorld: hint(a.OpenWorld)}
	k.mu.RLock()
	e, ok := k.m[key]
	k.mu.RUnlock()
	if ok && e.schema == string(c.InputSchema) {
		if e.kind != "" {
			return e.kind
		}
		return inferKindProps(c, nil)
	}
	props := schemaProps(c.InputSchema)
	kind := inferKindProps(c, props)
	e = kindEntry{schema: string(c.InputSchema), kind: kind}
	if len(props) == 0 {
		e.kind = ""
	}
	k.mu.Lock()
	if _, taken := k.m[key]; !taken && len(k.m) < maxKinds {
		k.m[key] = e
	}
	k.mu.Unlock()
	return kind
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// nameTokens splits a tool name into its words (nameWords), and adds
// each two neighbouring words joined by "_" ("pull_request" stays one).
func nameTokens(s string) []string {
	out := nameWords(s)
	words := len(out)
	for i := 0; i+1 < words; i++ {
		out = append(out, out[i]+"_"+out[i+1])
	}
	return out
}

// nameWords splits a name into lower-case words: "readTextFile",
// "read_text_file", "READ_TEXT_FILE" and "read-text-file" are all read,
// text, file.
func nameWords(s string) []string {
	var (
		out []string
		cur []rune
	)
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
		case unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1])):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
	}
	flush()
	return out
}
