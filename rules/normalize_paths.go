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
	"~/.npmrc", "~/.pypirc", "~/.gem/credentials", "~/.cargo/credentials*", "~/.terraform.d/**",
	"~/.vault-token", "**/.gnupg", "**/.gnupg/**", "~/.password-store/**", "~/.local/share/keyrings/**",
	"~/library/keychains/**", "~/.config/op/**", "~/.config/{google-chrome,chromium,bravesoftware}/**",
	"~/.mozilla/**", "~/library/application support/google/chrome/**", "~/library/cookies/**",
	"**/.{bash,zsh,sh,python,psql,mysql,node_repl}_history", "**/.histfile",
	"**/.env", "**/.env.*", "**/.envrc", "**/credentials.json", "**/service-account*.json",
	"**/*.tfstate", "**/*.tfstate.*", "**/.htpasswd", "**/master.key",
	"/proc/*/environ", "/proc/*/task/*/environ", "/proc/*/mem", "/proc/*/fd/**",
	"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/ssl/private/**",
	"/root", "/root/**", "/{var/,}run/secrets/**", "/var/run/secrets",
	"~/.config/toolgate/**", "~/.local/state/toolgate/**",
}

// harmlessSecretPatterns are look-alikes that hold no secret.
var harmlessSecretPatterns = []string{
	"**/.env.{example,sample,template,dist,defaults,schema,local.example}", "**/*.example.env",
}

// persistencePatterns are where a write makes code run later, outside
// this call: shell start-up files, git hooks and config, CI pipelines,
// cron and service units, PATH directories, editor tasks.
var persistencePatterns = []string{
	"**/.{bashrc,bash_profile,bash_login,bash_logout,profile,zshrc,zprofile,zshenv,zlogin,zlogout,cshrc,tcshrc,kshrc,mkshrc}",
	"**/.config/fish/**", "/etc/profile", "/etc/profile.d/**", "/etc/bash.bashrc", "/etc/zsh/**", "/etc/environment",
	"**/.git", "**/.git/info/**", "**/.gitconfig", "~/.config/git/**",
	"**/.husky/**", "**/.pre-commit-config.yaml", "**/.gitmodules",
	"**/.github/workflows", "**/.github/workflows/**", "**/.github/actions/**", "**/.gitlab-ci.yml", "**/.gitlab-ci/**",
	"**/.circleci/**", "**/jenkinsfile", "**/.travis.yml", "**/azure-pipelines.yml", "**/.buildkite/**",
	"**/bitbucket-pipelines.yml", "**/.drone.yml", "**/.woodpecker.yml", "**/.woodpecker/**",
	"/etc/cron*", "/etc/cron*/**", "/var/spool/cron/**", "/etc/anacrontab",
	"~/.config/systemd/**", "/etc/systemd/**", "/lib/systemd/**", "/usr/lib/systemd/**",
	"~/library/launchagents/**", "/library/launch{agents,daemons}/**", "/etc/init.d/**", "/etc/rc.local",
	"~/.config/autostart/**", "/etc/xdg/autostart/**",
	"/etc/sudoers", "/etc/sudoers.d/**", "/etc/ld.so.preload", "/etc/passwd", "/etc/group", "/etc/hosts",
	"**/.ssh/**", "**/.envrc",
	"~/.local/bin/**", "~/bin/**", "/usr/local/bin/**", "/usr/bin/**", "/bin/**", "/usr/local/sbin/**",
	"~/.local/lib/python*/site-packages/**", "**/sitecustomize.py", "**/usercustomize.py",
	"**/.vscode/tasks.json", "**/.vscode/launch.json",
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

// pathClasses holds the compiled class patterns.
type pathClasses struct {
	secret, harmless, persistence, policy globPattern
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
	return &pathClasses{
		secret:      compile(secretPatterns),
		harmless:    compile(harmlessSecretPatterns),
		persistence: compile(slices.Concat(persistencePatterns, gitControlPatterns())),
		policy:      compile(slices.Concat(agentPolicyPatterns, settingPatterns("**/", sandbox.AgentSettings))),
	}
})

// secretNames and secretDirs stand for the secret stores when a path
// holds shell pattern characters: the shell expands it, so it counts as
// secret if its last component could name one of secretNames, or another
// component one of secretDirs. A component of wildcards alone ("*") is
// not enough: it would make every `ls src/*` secret.
var (
	secretNames = []string{".env", ".env.local", ".env.production", "id_rsa", "id_ed25519", "id_ecdsa", "id_dsa",
		".netrc", ".git-credentials", ".pgpass", ".npmrc", ".pypirc", ".vault-token", "environ", "shadow", "server.key",
		"private.key", "key.pem", "cert.pem", ".bash_history", ".zsh_history", "credentials", "hosts.yml"}
	secretDirs = []string{".ssh", ".aws", ".gnupg", ".kube", ".docker", ".azure", "gcloud", ".password-store", "gh"}
)

// isSecretPath reports whether the path names a secret store; rel is
// the path as relTo makes it.
func isSecretPath(p, rel string) bool {
	cl := compiledClasses()
	if cl.secret.match(rel) && !cl.harmless.match(rel) {
		return true
	}
	if !strings.ContainsAny(rel, "*?[") {
		return false
	}
	parts := strings.Split(rel, "/")
	for i, part := range parts {
		if !strings.ContainsFunc(part, func(r rune) bool { return r != '*' && r != '?' && r != '.' }) {
			continue
		}
		names := secretDirs
		if i == len(parts)-1 {
			names = append(slices.Clip(secretDirs), secretNames...)
		}
		for _, name := range names {
			if shellMatch(part, name) && (i == len(parts)-1 || part != "gh") {
				return true
			}
		}
	}
	return false
}

// shellMatch is path.Match as the shell expands a pattern: a leading dot
// must be matched by a dot.
func shellMatch(pattern, name string) bool {
	if strings.HasPrefix(name, ".") && !strings.HasPrefix(pattern, ".") {
		return false
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

func isPersistencePath(p, rel string) bool {
	return compiledClasses().persistence.match(rel)
}

func isPolicyPath(p, rel string, ws Workspace) bool {
	return isOwnPath(p, ws) || compiledClasses().policy.match(rel)
}

// isOwnPath reports whether p is one of toolgate's own files (or under one).
func isOwnPath(p string, ws Workspace) bool {
	for _, o := range ws.Own {
		if o != "" && inside(p, path.Clean(o)) {
			return true
		}
	}
	return false
}
