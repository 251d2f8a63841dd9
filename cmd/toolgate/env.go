package main

// upstreamBaseEnv is the part of toolgate's environment a stdio upstream
// gets, before its config's env: what programs need to find their tools,
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
