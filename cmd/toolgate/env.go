package main

// upstreamBaseEnv is the part of toolgate's environment a stdio upstream
// and a sandboxed command get: what programs need to find their tools,
// their home and the user's locale and terminal. Nothing else passes:
// toolgate's environment holds its own secrets (the bearer token, Slack
// tokens) and whatever the agent's launcher put there, and an upstream may
// hand its environment to the agent.
func upstreamBaseEnv(env environ) []string {
	var out []string
	for _, k := range []string{
		"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "TMPDIR", "LANG",
		// The locale categories (POSIX, then glibc's own).
		"LC_ALL", "LC_COLLATE", "LC_CTYPE", "LC_MESSAGES", "LC_MONETARY", "LC_NUMERIC", "LC_TIME",
		"LC_ADDRESS", "LC_IDENTIFICATION", "LC_MEASUREMENT", "LC_NAME", "LC_PAPER", "LC_TELEPHONE",
	} {
		if v := env.Getenv(k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// serverBaseEnv is what a stdio upstream gets before its config's env:
// upstreamBaseEnv, and gitEnv. Sandboxed commands do not get gitEnv:
// there a planted repository's config runs confined, and
// diff.ignoreSubmodules would hide a submodule's changes from git commit.
func serverBaseEnv(env environ) []string {
	return append(upstreamBaseEnv(env), gitEnv...)
}

// gitEnv is git config, given as the command line's, which a repository's
// cannot undo (a server's env can: GIT_CONFIG_COUNT=0). An agent can make
// a repository in the workspace (git init --bare sub; git init
// --separate-git-dir=gd sub, then git add sub) and write its config as an
// ordinary file; git run at the root must not run that config's code:
//   - safe.bareRepository=explicit: git uses a bare repository only when
//     told to (--git-dir, GIT_DIR), never one it finds where it runs;
//   - diff.ignoreSubmodules=all: status and diff do not run git inside
//     the submodules the index names (the rules review the options that
//     still do: --ignore-submodules=none, describe --dirty);
//   - core.fsmonitor=false: no fsmonitor hook runs, in any repository.
var gitEnv = []string{"GIT_CONFIG_COUNT=3",
	"GIT_CONFIG_KEY_0=safe.bareRepository", "GIT_CONFIG_VALUE_0=explicit",
	"GIT_CONFIG_KEY_1=diff.ignoreSubmodules", "GIT_CONFIG_VALUE_1=all",
	"GIT_CONFIG_KEY_2=core.fsmonitor", "GIT_CONFIG_VALUE_2=false"}
