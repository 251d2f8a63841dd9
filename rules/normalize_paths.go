package rules

import (
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/toolgate/toolgate/tools/sandbox"
)

// The path classes of the normalized call. Patterns use glob's syntax and
// match the path lower-cased and made relative: to the workspace root
// ("src/main.go"), to the home ("~/.ssh/id_rsa"), else absolute.

// secretPatterns are secret stores: keys, credentials, tokens, the
// environments of processes. A call that names one is reading or moving a
// secret, whatever the program.
var secretPatterns = []string{
	"**/.ssh", "**/.ssh/**",
	"**/id_{rsa,dsa,ecdsa,ed25519,xmss}*", "**/*.{pem,key,p12,pfx,jks,keystore,kdbx,ppk}",
	"**/.aws", "**/.aws/**", "**/.azure/**", "**/.config/gcloud", "**/.config/gcloud/**",
	"**/.kube", "**/.kube/**", "**/kubeconfig", "**/.docker/config.json",
	"**/{.,_}netrc", "**/.git-credentials", "**/.pgpass", "**/.my.cnf",
	"**/.config/gh", "**/.config/gh/**", "**/.config/hub",
	"**/.npmrc", "**/.pypirc", "**/.yarnrc.yml", "~/.gem/credentials", "~/.cargo/credentials*", "~/.terraform.d/**",
	"~/.m2/settings.xml", "~/.m2/settings-security.xml", "~/.gradle/gradle.properties",
	"~/.composer/auth.json", "~/.config/composer/auth.json", "~/.s3cfg", "~/.boto", "~/.config/rclone/**",
	"~/.vault-token", "**/.gnupg", "**/.gnupg/**", "~/.password-store/**", "~/.local/share/keyrings/**",
	"~/library/keychains/**", "~/.config/op/**", "~/.config/{google-chrome,chromium,bravesoftware}/**",
	"~/.mozilla/**", "~/library/application support/google/chrome/**", "~/library/cookies/**",
	"**/.{bash,zsh,sh,python,psql,mysql,node_repl}_history", "**/.histfile",
	"**/.env", "**/.env.*", "**/.envrc", "**/credentials.json", "**/service-account*.json",
	"**/*.tfstate", "**/*.tfstate.*", "**/.htpasswd", "**/master.key",
	"/proc/*/{,task/*/}{environ,mem,fd/**,map_files/**}",
	"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/ssl/private/**",
	"/root", "/root/**", "/{var/,}run/secrets/**", "/var/run/secrets",
	"~/.config/toolgate/**", "~/.local/state/toolgate/**",
	"**/.dev.vars", "**/.dev.vars.*", "**/serviceaccountkey*.json", "**/*-firebase-adminsdk-*.json", "**/authkey_*.p8",
	"~/.terraformrc", "~/terraform.rc",
	"**/*.env", "**/.env-*", "**/.env_*", "**/terraform.tfvars", "**/terraform.tfvars.json", "**/*.auto.tfvars",
	"**/*.auto.tfvars.json", "**/kubeconfig.{yaml,yml,json}", "**/*.kubeconfig", "**/.streamlit/secrets.toml",
}

// secretFiles are the secret stores that are single files with a name of
// their own, wherever they are: an editor's or a tool's copy of one
// (secretCopies) holds the same secret.
var secretFiles = []string{
	".env", ".envrc", ".dev.vars", ".npmrc", ".pypirc", ".yarnrc.yml", ".netrc", "_netrc", ".git-credentials", ".pgpass",
	".my.cnf", ".htpasswd", ".vault-token", "master.key", "credentials.json", "service-account*.json",
	"serviceaccountkey*.json", "*.tfstate", "id_{rsa,dsa,ecdsa,ed25519,xmss}", "*.{pem,key,p12,pfx,jks,keystore,kdbx,ppk}",
	"*.env", ".env-*", ".env_*", "terraform.tfvars", "*.auto.tfvars", "kubeconfig", "*.kubeconfig",
}

// secretCopies returns patterns for the copies editors and tools leave of
// each of names: emacs's backup (x~) and auto-save (#x#) files, vim's swap
// files (.x.swp; x.swp for a dot file) and undo files (.x.un~; x.un~ with
// another undodir naming), kate's swap files (.x.kate-swp), the .bak,
// .orig, .old, .save, .backup, .rej and .tmp copies of patch tools, scripts
// and hand edits, a file manager's "x (copy)" and "x copy", and, for a
// dot file, the same copies without the dot (env.bak of .env).
func secretCopies(names []string) []string {
	const suffixes = "{bak,orig,old,save,backup,rej,tmp}"
	var out []string
	for _, n := range names {
		out = append(out, "**/"+n+"~", "**/#"+n+"#", "**/"+n+"."+suffixes, "**/"+n+".{swp,swo,swx,un~}",
			"**/."+n+".{un~,kate-swp}", "**/"+n+" (*copy)", "**/"+n+" (*copy) *", "**/"+n+" copy", "**/"+n+" copy *")
		if bare, ok := strings.CutPrefix(n, "."); ok {
			out = append(out, "**/"+bare+"."+suffixes)
		} else {
			out = append(out, "**/."+n+".sw?")
		}
	}
	return out
}

// harmlessSecretPatterns are look-alikes that hold no secret.
var harmlessSecretPatterns = []string{
	"**/.env.{example,sample,template,dist,defaults,schema,local.example}", "**/*.{example,sample,template,dist}.env",
	"**/.env{-,_}{example,sample,template,dist,defaults}", "**/{example,sample,template}.env",
}

// persistencePatterns are where a write makes code run later, outside
// this call: shell start-up files, git hooks and config, cron and service
// units, PATH directories, editor tasks, and the workspace's own (CI
// pipelines, .envrc, pre-commit's config...), which are sandbox.Persistence,
// the list the sandbox holds read-only, matched anywhere in a path (see
// settingPatterns); these are the rest.
var persistencePatterns = []string{
	"**/.{bashrc,bash_profile,bash_login,bash_logout,profile,zshrc,zprofile,zshenv,zlogin,zlogout,cshrc,tcshrc,kshrc,mkshrc}",
	"**/.config/fish/**", "/etc/profile", "/etc/profile.d/**", "/etc/bash.bashrc", "/etc/zsh/**", "/etc/environment",
	"**/.git", "**/.git/info/**", "**/.gitconfig", "~/.config/git/**",
	// An index names the submodules git at the root enters (gitlinks, a
	// .gitmodules in it): git writes it, a write by its path is a plant.
	"**/.git/index",
	"/etc/cron*", "/etc/cron*/**", "/var/spool/cron/**", "/etc/anacrontab",
	"~/.config/systemd/**", "/etc/systemd/**", "/lib/systemd/**", "/usr/lib/systemd/**",
	"~/library/launchagents/**", "/library/launch{agents,daemons}/**", "/etc/init.d/**", "/etc/rc.local",
	"~/.config/autostart/**", "/etc/xdg/autostart/**",
	"/etc/sudoers", "/etc/sudoers.d/**", "/etc/ld.so.preload", "/etc/passwd", "/etc/group", "/etc/hosts",
	"**/.ssh/**",
	"~/.local/bin/**", "~/bin/**", "/usr/local/bin/**", "/usr/bin/**", "/bin/**", "/usr/local/sbin/**",
	"~/.local/lib/python*/site-packages/**",
	"**/.vscode/tasks.json", "**/.vscode/launch.json",
	"**/mise/config.toml", "**/{.,}mise.*.toml", "**/.config/mise.toml", "**/.config/mise/**",
	"**/.config/lefthook.{yml,yaml,json,jsonc,toml}", "~/.config/nvim/**", "~/.config/helix/**",
	"~/.npmrc", "~/.pypirc", "~/.config/pip/**", "~/.pip/**", "~/.cargo/config*", "~/.gradle/init.d/**",
	"~/.m2/settings.xml", "~/.docker/config.json",
}

// gitControlPatterns are the git control files the sandbox holds read-only
// (sandbox.GitControl, sandbox.WorktreeControl), as patterns: in any .git,
// in its submodules' git directories (.git/modules/NAME, nested too) and
// in its linked worktrees' (.git/worktrees/NAME). A write there is
// persistence: commondir, for one, moves git's config and hooks into a
// directory the agent wrote. Derived from the sandbox's lists, so the rules
// and the sandbox name the same files.
func gitControlPatterns() []string {
	var out []string
	for _, dir := range []string{"**/.git/", "**/.git/modules/**/"} {
		out = append(out, settingPatterns(dir, sandbox.GitControl)...)
	}
	return append(out, settingPatterns("**/.git/worktrees/*/", sandbox.WorktreeControl)...)
}

// settingPatterns returns patterns matching each of names (a trailing "/"
// marks a directory) under prefix, and everything inside it: a name may be
// a file or a directory of files (.clinerules is either).
func settingPatterns(prefix string, names []string) []string {
	var out []string
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "/"))
		out = append(out, prefix+n, prefix+n+"/**")
	}
	return out
}

// agentPolicyPatterns are the files that set what coding agents may do
// unasked: an agent that edits them grants itself permissions. The
// workspace's agent and editor settings are sandbox.AgentSettings, the
// list the sandbox holds read-only, matched anywhere in a path (see
// settingPatterns); these are the rest: settings in the home directory,
// and toolgate's own.
var agentPolicyPatterns = []string{
	"~/.claude.json", "**/claude_desktop_config.json",
	"**/toolgate.{yaml,yml}", "~/.config/toolgate/**",
	"~/.local/state/toolgate/**", "~/.local/share/toolgate/**",
}

// pathClasses holds the compiled class patterns. persistenceDirs,
// policyDirs and instructionDirs match the directories that could hold a
// path of the class (see classDirs); names are the names class patterns
// spell out (see classNames).
type pathClasses struct {
	secret, harmless, persistence, policy, instructions globPattern
	persistenceDirs, policyDirs, instructionDirs        globPattern
	secretParents                                       globPattern
	names                                               []string
}

var compiledClasses = sync.OnceValue(func() *pathClasses {
	compile := func(pats []string) globPattern {
		var out globPattern
		for _, p := range pats {
			g, err := compilePattern(p)
			if err != nil {
				panic("rules: bad class pattern " + p + ": " + err.Error())
			}
			out = append(out, g...)
		}
		return out
	}
	persistence := slices.Concat(persistencePatterns, gitControlPatterns(), settingPatterns("**/", sandbox.Persistence))
	policy := slices.Concat(agentPolicyPatterns, settingPatterns("**/", sandbox.AgentSettings))
	instructions := settingPatterns("**/", sandbox.AgentInstructions)
	return &pathClasses{
		secret:          compile(slices.Concat(secretPatterns, secretCopies(secretFiles))),
		harmless:        compile(harmlessSecretPatterns),
		persistence:     compile(persistence),
		policy:          compile(policy),
		instructions:    compile(instructions),
		persistenceDirs: compile(classDirs(persistence)),
		policyDirs:      compile(classDirs(policy)),
		instructionDirs: compile(classDirs(instructions)),
		secretParents:   compile(classDirs(secretPatterns)),
		names:           classNames(slices.Concat(secretPatterns, persistence, policy, instructions)),
	}
})

// classDirs returns patterns for the directories above the paths pats
// match: each proper prefix of a pattern that names something ("**/.github"
// of "**/.github/workflows", "~/.config" of "~/.config/systemd/**"), not
// one of "**" alone, "/" or "~", which are above every path, nor a
// top-level directory (/usr: deny-broad-delete says more). Writing such
// a directory whole (mv ci .circleci, cp -r gh/. .github) writes what the
// class names.
func classDirs(pats []string) []string {
	var out []string
	for _, p := range pats {
		alts, err := expandBraces(p)
		if err != nil {
			panic("rules: bad class pattern " + p + ": " + err.Error())
		}
		for _, a := range alts {
			comps := strings.Split(a, "/")
			for k := 1; k < len(comps); k++ {
				named := false
				for _, c := range comps[:k] {
					named = named || c != "" && c != "**" && c != "~"
				}
				if d := strings.Join(comps[:k], "/"); named && !(k == 2 && comps[0] == "") && !slices.Contains(out, d) {
					out = append(out, d)
				}
			}
		}
	}
	return out
}

// classNames returns the names (path components) pats spell out, lower
// case, a wildcard in one replaced by "x" (cron* is cronx): what a shell
// pattern in a path is tried against (see patternReadings).
func classNames(pats []string) []string {
	var out []string
	for _, p := range pats {
		alts, _ := expandBraces(p)
		for _, a := range alts {
			for _, c := range strings.Split(a, "/") {
				c = strings.NewReplacer("**", "x", "*", "x", "?", "x").Replace(strings.ToLower(c))
				if c != "" && c != "x" && c != "~" && !slices.Contains(out, c) {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// maxPatternReadings bounds patternReadings' product.
const maxPatternReadings = 256

// patternReadings returns the paths rel (with shell pattern characters)
// may expand to that the classes can tell apart: each component with
// pattern characters replaced by every class name it matches (or kept as
// written when it matches none). Wildcards alone ("*") and an extension
// pattern ("*.yaml") are kept as written: they name no file in
// particular, and would make every `sed -i ... k8s/*.yaml` a class path
// (the directory they expand in still counts: see classMatch). all is set when there are more
// than maxPatternReadings: rel could then be anything.
func patternReadings(rel string, names []string) (out []string, all bool) {
	out = []string{""}
	for i, part := range strings.Split(rel, "/") {
		opts := []string{part}
		ext := strings.HasPrefix(part, "*.") && !hasPattern(part[1:])
		if hasPattern(part) && !ext && strings.ContainsFunc(part, func(r rune) bool { return r != '*' && r != '?' }) {
			for _, n := range names {
				if shellGlob(part, n) {
					opts = append(opts, n)
				}
			}
		}
		if len(out)*len(opts) > maxPatternReadings {
			return nil, true
		}
		next := make([]string, 0, len(out)*len(opts))
		for _, o := range out {
			for _, p := range opts {
				if i > 0 {
					p = o + "/" + p
				}
				next = append(next, p)
			}
		}
		out = next
	}
	return out, false
}

// classMatch reports whether the written path rel is of the class whose
// paths g matches and whose directories dirs matches: rel is one, or a
// directory that could hold one; if rel holds shell pattern characters,
// so is one of the paths it may expand to, or the directory it expands in
// (the components before the first pattern).
func classMatch(g, dirs globPattern, rel string) bool {
	if g.match(rel) || dirs.match(rel) {
		return true
	}
	if !hasPattern(rel) {
		return false
	}
	readings, all := patternReadings(rel, compiledClasses().names)
	if all {
		return true
	}
	for _, r := range readings {
		if g.match(r) || dirs.match(r) {
			return true
		}
	}
	parts := strings.Split(rel, "/")
	for i, part := range parts {
		if hasPattern(part) {
			d := strings.Join(parts[:i], "/")
			return d != "" && d != "~" && (g.match(d) || dirs.match(d))
		}
	}
	return false
}

// secretNames, secretNamesIn and secretDirs stand for the secret stores
// when a path holds shell pattern characters: the shell expands it, so it
// counts as secret if its last component could name one of secretNames,
// or one of secretNamesIn while the component before it could name that
// name's directory, or another component one of secretDirs. A component
// of wildcards alone ("*") is not enough: it would make every `ls src/*`
// secret. secretNamesIn are names secret only in their directory, so that
// `cat *.yml` or `wc -l src/*s` stay ordinary reads.
var (
	secretNames = []string{".env", ".env.local", ".env.production", "id_rsa", "id_ed25519", "id_ecdsa", "id_dsa",
		".netrc", ".git-credentials", ".pgpass", ".npmrc", ".pypirc", ".yarnrc.yml", ".vault-token", ".dev.vars", "environ", "shadow", "server.key",
		"private.key", "key.pem", "cert.pem", ".bash_history", ".zsh_history"}
	secretNamesIn = map[string][]string{"credentials": {".aws", ".gem", ".cargo"}, "hosts.yml": {"gh"}}
	secretDirs    = []string{".ssh", ".aws", ".gnupg", ".kube", ".docker", ".azure", "gcloud", ".password-store", "gh"}
)

// WorkspaceSecret reports whether rel, a workspace-relative slash path
// ("config/.env", ".aws", "deploy/server.key"), names a secret store by
// the secret class the rules use: secretPatterns, less the harmless
// look-alikes (.env.example), matched lower-cased. The sandbox masks the
// paths it reports in every run (sandbox.Options.Secret), so a command
// that reaches one without naming it (a computed word, a script) finds
// what a rule would have denied empty.
func WorkspaceSecret(rel string) bool {
	return secretClass(strings.ToLower(rel))
}

// secretClass reports whether rel, as relTo makes it, is of the secret
// class and not a harmless look-alike.
func secretClass(rel string) bool {
	cl := compiledClasses()
	return cl.secret.match(rel) && !cl.harmless.match(rel)
}

// isSecretPath reports whether the path names a secret store; rel is
// the path as relTo makes it.
func isSecretPath(p, rel string) bool {
	if secretClass(rel) {
		return true
	}
	if !strings.ContainsAny(rel, "*?[") {
		return false
	}
	parts := strings.Split(rel, "/")
	for i, part := range parts {
		if !strings.HasPrefix(part, ".") && !strings.ContainsFunc(part, func(r rune) bool { return r != '*' && r != '?' && r != '.' }) {
			// Wildcards alone (*, *.*) are not tried against the names:
			// they would make most globs secret. One that starts with a
			// dot (.*, .??*) is: it matches .env and the like.
			continue
		}
		names := secretDirs
		if i == len(parts)-1 {
			names = append(slices.Clip(secretDirs), secretNames...)
		}
		for _, name := range names {
			if shellGlob(part, name) && (i == len(parts)-1 || part != "gh") {
				return true
			}
		}
		if i == len(parts)-1 && i > 0 {
			for name, dirs := range secretNamesIn {
				if shellGlob(part, name) && slices.ContainsFunc(dirs, func(d string) bool { return shellGlob(parts[i-1], d) }) {
					return true
				}
			}
		}
	}
	return false
}

// isPersistencePath reports whether the written path rel is where code
// runs later, or a directory that could hold such a path (.github,
// .git/hooks), or a pattern that could expand to one.
func isPersistencePath(p, rel string) bool {
	cl := compiledClasses()
	return classMatch(cl.persistence, cl.persistenceDirs, rel)
}

// isPolicyPath reports whether the written path rel is one of toolgate's
// own files or an agent's permission file, a directory that could hold
// one, or a pattern that could expand to one. An instruction file in an
// agent's settings directory (.cursor/rules/x.mdc) is not, when named
// exactly: isInstructionPath has it.
func isPolicyPath(p, rel string, ws Workspace) bool {
	cl := compiledClasses()
	if underAny(p, ws.Own) {
		return true
	}
	if !hasPattern(rel) && cl.instructions.match(rel) {
		return false
	}
	return classMatch(cl.policy, cl.policyDirs, rel)
}

// isInstructionPath reports whether the written path rel is an agent's
// instruction file (sandbox.AgentInstructions, anywhere in a path), a
// directory that could hold one, or a pattern that could expand to one.
func isInstructionPath(rel string) bool {
	cl := compiledClasses()
	return classMatch(cl.instructions, cl.instructionDirs, rel)
}

// underAny reports whether p is one of paths (absolute), or under one.
func underAny(p string, paths []string) bool {
	for _, o := range paths {
		if o != "" && inside(p, path.Clean(o)) {
			return true
		}
	}
	return false
}
