package review

// sandboxText says where an approved call runs, for reviewers: the sandbox
// profile its decision chose, or that toolgate does not confine it.
func sandboxText(profile string) string {
	switch profile {
	case "":
		return "no toolgate sandbox (the tool runs on its own server)"
	case "none":
		return "no sandbox (profile none: toolgate's own rights)"
	}
	return "sandbox profile " + profile
}
