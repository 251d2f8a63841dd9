package main

// upstreamBaseEnv is the part of toolgate's environment a stdio upstream
// gets, before its config's env: what programs need to find their tools,
// their home and the user's locale and terminal, and git's
// safe.bareRepository. Nothing else passes:
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
	// git uses a bare repository only when told to (--git-dir, GIT_DIR),
	// never one it finds where it runs: a directory holding HEAD, objects/
	// and refs/ that an agent made in the workspace (git init --bare sub,
	// cp -r .git sub) would otherwise be the repository of a git run there,
	// and its config (core.fsmonitor) code that runs. Config given this
	// way is the command line's, which a repository's cannot undo; a
	// server's env can (GIT_CONFIG_COUNT=0).
	return append(out, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.bareRepository", "GIT_CONFIG_VALUE_0=explicit")
}
