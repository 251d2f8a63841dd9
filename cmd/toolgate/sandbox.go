package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/tools/sandbox"
	"github.com/toolgate/toolgate/tools/workspace"
)

// homeSecrets are the usual secret stores under a home directory: hidden
// from every sandbox, even one whose workspace or profile paths include them.
func homeSecrets() []string {
	return []string{".ssh", ".aws", ".azure", ".config/gcloud", ".config/gh", ".config/hub", ".kube", ".netrc",
		".docker", ".gnupg", ".local/share/keyrings", ".password-store", ".git-credentials", ".npmrc", ".pypirc",
		".cargo/credentials", ".cargo/credentials.toml", ".config/toolgate", ".local/state/toolgate", ".terraform.d",
		".vault-token", ".bash_history", ".zsh_history", ".yarnrc.yml", ".m2/settings.xml", ".m2/settings-security.xml",
		".gradle/gradle.properties", ".composer/auth.json", ".config/composer/auth.json", ".s3cfg", ".boto", ".config/rclone"}
}

// toolchainPaths are home paths every profile may read when they exist:
// toolchains and module caches, so builds find what is installed.
func toolchainPaths() []string {
	return []string{"go/pkg/mod", "go/bin", ".local/bin", ".cargo/bin", ".rustup", ".nvm"}
}

// ownFile is one of toolgate's own files: the sandbox must neither show it
// nor let a profile write where it lies.
type ownFile struct {
	what, path string
}

// expandHome is path p of the config with a leading ~ meaning home.
func expandHome(p, home string) string {
	if p == "~" {
		return home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return p
}

// buildSandbox builds the sandbox from cfg. It returns an error only for
// what must stop toolgate from starting (one of its own files where a
// sandbox could write it, a workspace that holds the home directory); a
// sandbox that cannot run here (bubblewrap missing, no namespaces) is
// logged, and every command that needs it fails with that message.
func buildSandbox(ctx context.Context, cfg *config.Config, env environ, own []ownFile, logger *slog.Logger) (*sandbox.Sandbox, error) {
	home := env.Getenv("HOME")
	if home == "" {
		home = "/tmp"
	}
	tilde := func(p string) string { return expandHome(p, home) }
	var ws string
	if cfg.Workspace.Enabled {
		var err error
		if ws, err = realPath(cfg.Workspace.Root); err != nil {
			return nil, fmt.Errorf("workspace: root %q: %w", cfg.Workspace.Root, err)
		}
		if realHome, err := realPath(home); err == nil && sandbox.Within(ws, realHome) {
			return nil, fmt.Errorf("workspace: root %s contains the home directory %s, where secrets, shell startup files and toolgate's own state live: set workspace.root to a project directory", ws, realHome)
		}
	}

	cache := filepath.Join(home, ".cache", "toolgate", "sandbox")
	if x := env.Getenv("XDG_CACHE_HOME"); x != "" {
		cache = filepath.Join(x, "toolgate", "sandbox")
	}
	var read []string
	for _, p := range toolchainPaths() {
		read = append(read, filepath.Join(home, p))
	}
	for _, k := range []string{"GOMODCACHE", "GOROOT"} {
		if v := env.Getenv(k); v != "" && filepath.IsAbs(v) {
			read = append(read, v)
		}
	}

	var hide []string
	for _, p := range homeSecrets() {
		hide = append(hide, filepath.Join(home, p))
	}
	for _, f := range own {
		hide = append(hide, f.path)
	}
	for _, h := range cfg.Sandbox.Hide {
		hide = append(hide, tilde(h))
	}

	protect := append(append([]string(nil), sandbox.DefaultProtect...), cfg.Sandbox.Protect...)
	if exe, err := os.Executable(); err == nil && ws != "" {
		if real, err := realPath(exe); err == nil && sandbox.Within(ws, real) && real != ws {
			rel, _ := filepath.Rel(ws, real)
			protect = append(protect, rel) // the agent must not replace the binary the user runs next
		}
	}

	profiles := map[string]*sandbox.Profile{}
	for _, b := range sandbox.Builtin() {
		profiles[b.Name] = &b
	}
	order := []string{sandbox.ReadOnly, sandbox.WorkspaceWrite}
	for _, cp := range cfg.Sandbox.Profiles {
		p, ok := profiles[cp.Name]
		if !ok {
			p = &sandbox.Profile{Name: cp.Name, Workspace: sandbox.ReadAccess, Unsandboxed: cp.Name == sandbox.None}
			profiles[cp.Name] = p
			order = append(order, cp.Name)
		}
		switch cp.Workspace {
		case "read":
			p.Workspace = sandbox.ReadAccess
		case "write":
			p.Workspace = sandbox.WriteAccess
		case "none":
			p.Workspace = sandbox.NoAccess
		}
		p.Network = p.Network || cp.Network
		for _, r := range cp.Read {
			p.Read = append(p.Read, tilde(r))
		}
		for _, w := range cp.Write {
			p.Write = append(p.Write, tilde(w))
		}
	}
	var list []sandbox.Profile
	for _, n := range order {
		p := profiles[n]
		if !p.Unsandboxed {
			p.Read = append(append([]string(nil), read...), p.Read...)
			if p.Workspace == sandbox.WriteAccess {
				p.Write = append(p.Write, cache)
			}
		}
		list = append(list, *p)
	}
	if profiles[sandbox.None] != nil {
		logger.Warn("sandbox profile none is configured: calls a rule runs in it use toolgate's own rights, unconfined", "config", cfg.File)
	}

	// Before anything is looked up in it.
	if err := hostPATH(env, sandbox.WritableBy(ws, list), logger); err != nil {
		return nil, err
	}
	x := expander{env: env, where: fmt.Sprintf("%s: sandbox.set_env", cfg.File)}
	sbEnv := sandboxEnv(ctx, cfg.Sandbox, env, home, cache, &x)
	if err := errors.Join(x.errs...); err != nil {
		return nil, err
	}
	bwrap := cfg.Sandbox.Bwrap
	var unavailable error
	if bwrap == "" {
		var err error
		if bwrap, err = exec.LookPath("bwrap"); err != nil {
			unavailable = fmt.Errorf("%w: bubblewrap (bwrap) was not found in PATH: install it (Debian, Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) or set sandbox.bwrap", sandbox.ErrUnavailable)
		}
	}
	if unavailable == nil {
		if err := os.MkdirAll(cache, 0o700); err != nil {
			return nil, fmt.Errorf("sandbox: cache directory: %w", err)
		}
		unavailable = sandbox.Probe(ctx, bwrap)
	}
	if unavailable != nil {
		unavailable = fmt.Errorf("%w (to run the built-in tools unconfined instead, define sandbox.profiles.none and name sandbox: none in a rule)", unavailable)
	}
	// The workspace's secret files are what the rules call secret, so
	// the sandbox holds what a rule means even against a command that
	// reaches one without naming it.
	secret, err := workspaceSecret(cfg)
	if err != nil {
		return nil, err
	}
	if secret == nil {
		logger.Warn("sandbox.workspace_secrets is visible: sandboxed runs can read the workspace's secret files (.env, keys)", "config", cfg.File)
	}
	sb, err := sandbox.New(sandbox.Options{Bwrap: bwrap, Workspace: ws, Home: home, Hide: hide, Protect: protect, Env: sbEnv,
		Secret: secret, Profiles: list, Unavailable: unavailable})
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := checkOwnFiles(sb, own); err != nil {
		return nil, err
	}
	if unavailable != nil {
		logger.Error("the sandbox cannot run here, so run_command and sandboxed servers refuse every call (fail closed); "+
			"fix the cause, or, to run them unconfined, define sandbox.profiles.none and name sandbox: none in a rule", "err", unavailable)
		return sb, nil
	}
	logger.Info("sandbox ready", "bwrap", bwrap, "profiles", sb.Names(), "workspace", ws)
	return sb, nil
}

// workspaceSecret says which workspace paths the sandbox masks: the rules'
// secret class, less what sandbox.workspace_secrets_visible lists (a
// directory's pattern may be written "dir" or "dir/**"); nil for none
// (sandbox.workspace_secrets: visible).
func workspaceSecret(cfg *config.Config) (func(rel string) bool, error) {
	if cfg.Sandbox.WorkspaceSecrets == config.SecretsVisible {
		return nil, nil
	}
	if len(cfg.Sandbox.WorkspaceSecretsVisible) == 0 {
		return rules.WorkspaceSecret, nil
	}
	visible, err := rules.Globs(cfg.Sandbox.WorkspaceSecretsVisible)
	if err != nil {
		return nil, fmt.Errorf("%s: sandbox.workspace_secrets_visible: %w", cfg.File, err)
	}
	return func(rel string) bool {
		return rules.WorkspaceSecret(rel) && !visible(rel) && !visible(rel+"/")
	}, nil
}

// sandboxEnv is the whole environment of a sandboxed command: the
// allowlist from toolgate's own (the one stdio servers get), HOME, the private caches, the user's git
// identity and what the config adds. Nothing else of toolgate's
// environment (tokens, secrets) gets in.
func sandboxEnv(ctx context.Context, c config.Sandbox, env environ, home, cache string, x *expander) []string {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	set("PATH", workspace.DefaultPath)
	for _, kv := range upstreamBaseEnv(env) {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	set("HOME", home)
	set("TMPDIR", "/tmp")
	set("XDG_CACHE_HOME", cache)
	set("GOCACHE", filepath.Join(cache, "go-build"))
	set("npm_config_cache", filepath.Join(cache, "npm"))
	for _, k := range c.Env {
		if v := env.Getenv(k); v != "" {
			set(k, v)
		}
	}
	if c.GitIdentity {
		for _, id := range [][3]string{{"user.name", "GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"}, {"user.email", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"}} {
			if v := gitConfig(ctx, env, id[0]); v != "" {
				set(id[1], v)
				set(id[2], v)
			}
		}
	}
	for _, k := range sortedKeys(c.SetEnv) {
		set(k, x.expand(k, c.SetEnv[k]))
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// gitConfig returns the user's global git setting key, or "".
func gitConfig(ctx context.Context, env environ, key string) string {
	git, err := exec.LookPath("git")
	if err != nil {
		return ""
	}
	cmd := exec.CommandContext(ctx, git, "config", "--global", "--get", key)
	cmd.Env = []string{"HOME=" + env.Getenv("HOME"), "PATH=" + workspace.DefaultPath}
	if x := env.Getenv("XDG_CONFIG_HOME"); x != "" {
		cmd.Env = append(cmd.Env, "XDG_CONFIG_HOME="+x)
	}
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// hostPATH takes out of toolgate's PATH every directory at or under a
// path a sandbox profile can write (writable). toolgate looks up bwrap,
// git and its servers' commands in its PATH and hands it to the servers,
// which run unconfined: with a directory of the workspace on it (an
// activated .venv/bin, direnv's PATH_add), an agent's command would put
// its own bwrap or git there for toolgate to run outside any sandbox.
// Sandboxed commands get a PATH of their own (workspace.DefaultPath).
func hostPATH(env environ, writable []string, logger *slog.Logger) error {
	var keep, dropped []string
	for _, d := range filepath.SplitList(env.Getenv("PATH")) {
		if d == "" || !filepath.IsAbs(d) || anyWritableOnTheWay(d, writable) {
			dropped = append(dropped, d)
			continue
		}
		keep = append(keep, d)
	}
	if len(dropped) == 0 {
		return nil
	}
	logger.Warn("PATH directories a sandboxed command can write (or relative ones) are left out of toolgate's PATH: "+
		"toolgate runs what it finds there (bwrap, git, its servers' commands) outside the sandbox", "dropped", dropped)
	if err := os.Setenv("PATH", strings.Join(keep, string(filepath.ListSeparator))); err != nil {
		return fmt.Errorf("sandbox: set PATH: %w", err)
	}
	return nil
}

// checkOwnFiles refuses to start when one of toolgate's own files lies
// where a sandbox profile can write: an agent could then rewrite the rules
// or the config that decide its calls, or the log that records them.
func checkOwnFiles(sb *sandbox.Sandbox, own []ownFile) error {
	var errs []error
	writable := sb.Writable()
	for _, f := range own {
		real, err := realPath(f.path)
		if err != nil {
			continue
		}
		inside := false
		for _, w := range writable {
			if rw, err := realPath(w); err == nil && sandbox.Within(rw, real) {
				inside = true
				errs = append(errs, fmt.Errorf("toolgate will not start: its %s %s lies inside %s, which a sandbox profile can write, so an agent could change it; move it out (or set workspace.root elsewhere)", f.what, f.path, w))
			}
		}
		// Through a link there, the file is elsewhere, but the link is the
		// agent's to point at a file of its own, and the sandbox cannot
		// hold a path through it.
		if !inside && anyWritableOnTheWay(f.path, writable) {
			errs = append(errs, fmt.Errorf("toolgate will not start: its %s %s is named through a link in a path a sandbox profile can write, so an agent could point the name elsewhere; name it by its own path, %s", f.what, f.path, real))
		}
	}
	return errors.Join(errs...)
}

// anyWritableOnTheWay reports whether resolving p (relative ones against
// the working directory) goes through
// a path at or under one of writable, or their real paths: p itself, a
// directory on the way, a link met, or where it points, to any depth. A
// name whose resolution passes there is the agent's to repoint. A part
// that does not exist is taken as named.
func anyWritableOnTheWay(p string, writable []string) bool {
	roots := slices.Clone(writable)
	for _, w := range writable {
		if rw, err := realPath(w); err == nil {
			roots = append(roots, rw)
		}
	}
	in := func(q string) bool {
		return slices.ContainsFunc(roots, func(w string) bool { return sandbox.Within(w, q) })
	}
	if !filepath.IsAbs(p) {
		wd, err := os.Getwd()
		if err != nil {
			return true
		}
		p = wd + string(filepath.Separator) + p
	}
	// Not cleaned as text: the kernel takes a ".." after a link from where
	// the link points (lnk/../rules.yaml is a sibling of lnk's target).
	rest := strings.Split(p, string(filepath.Separator))
	cur, links := string(filepath.Separator), 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		if in(next) {
			return true
		}
		fi, err := os.Lstat(next)
		if err != nil {
			cur = next // not there (yet): the rest as named
			continue
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		target, err := os.Readlink(next)
		if links++; err != nil || links > 255 {
			return true // cannot be followed: not toolgate's to trust
		}
		if filepath.IsAbs(target) {
			cur = string(filepath.Separator)
		}
		rest = append(strings.Split(target, string(filepath.Separator)), rest...)
	}
	return false
}

// realPath is p absolute with its symlinks evaluated; for a path that does
// not exist yet, the longest existing prefix is evaluated.
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for {
		real, err := filepath.EvalSymlinks(abs)
		if err == nil {
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return "", err
		}
		rest = append([]string{filepath.Base(abs)}, rest...)
		abs = parent
	}
}

// sandboxRulesCheck returns the rules check for sb, configured by cfg: a
// rule set naming a profile the sandbox lacks, or auto-approving calls in
// a profile they could leave the sandbox by, is refused at load and on
// reload.
func sandboxRulesCheck(sb *sandbox.Sandbox, cfg config.Sandbox) func(*rules.Set) error {
	return func(set *rules.Set) error {
		var errs []error
		for name, where := range set.Sandboxes() {
			if _, err := sb.Profile(name); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
		}
		for name, where := range set.AutoApproveSandboxes() {
			if why := leavesSandbox(sb, cfg, name); why != "" {
				errs = append(errs, fmt.Errorf("%s: auto_approve_at runs calls with no human on the agent's own confidence, so only in a profile that keeps them in; sandbox profile %s does not: %s", where, name, why))
			}
		}
		return errors.Join(errs...)
	}
}

// leavesSandbox says how a call run in profile name could leave the
// sandbox, "" if it cannot. A call leaves it when it runs unconfined
// (profile none), has the network, or can write outside the workspace
// (the profile's write paths; toolgate's own cache aside). Reading more
// of the host is not leaving: hidden paths stay hidden.
func leavesSandbox(sb *sandbox.Sandbox, cfg config.Sandbox, name string) string {
	p, err := sb.Profile(name)
	if err != nil {
		return "" // refused as an unknown profile
	}
	switch {
	case p.Unsandboxed:
		return "it runs without a sandbox"
	case p.Network:
		return "it has the network"
	}
	for _, cp := range cfg.Profiles {
		if cp.Name == name && len(cp.Write) > 0 {
			return "it can write outside the workspace (" + strings.Join(cp.Write, ", ") + ")"
		}
	}
	return ""
}

// ownFiles lists toolgate's own files for cfg: the config file, the audit
// log and what the config names (config.Files: the rules file, archives,
// keys, the files secrets are read from).
func ownFiles(configPath string, cfg *config.Config, dbPath string) []ownFile {
	var own []ownFile
	add := func(what, p string) {
		if abs, err := filepath.Abs(p); err == nil {
			own = append(own, ownFile{what, abs})
		}
	}
	if configPath != "" {
		add("config file", configPath)
	}
	if !audit.IsPostgres(dbPath) {
		add("audit log", dbPath)
		// SQLite's files beside it hold transactions not yet in it:
		// clobbering the WAL loses them.
		for _, sfx := range []string{"-wal", "-shm", "-journal"} {
			add("audit log's "+sfx[1:]+" file", dbPath+sfx)
		}
		// The calls spooled but not yet in the log; a spool left there is
		// imported as genuine calls.
		add("audit log's spools", dbPath+audit.SpoolSuffix)
	}
	for _, f := range cfg.Files() {
		add(f.What, f.Path)
	}
	if ck := cfg.Audit.Checkpoint; ck.KeyFile != "" {
		for _, t := range checkpointTargets(ck) {
			if !strings.Contains(t, "://") {
				add("checkpoint log", t)
			}
		}
	}
	return own
}
