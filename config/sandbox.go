package config

import (
	"regexp"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Sandbox configures the OS sandbox (bubblewrap) the built-in tools, and the
// stdio servers that name a profile, run in.
type Sandbox struct {
	// Bwrap is the bubblewrap executable; "" means "bwrap" found in PATH.
	Bwrap string
	// Env names variables passed from toolgate's environment into the
	// sandbox, besides the fixed allowlist (PATH, LANG, TERM, TZ, ...).
	Env []string
	// SetEnv sets variables inside the sandbox; values may hold ${VAR}.
	SetEnv map[string]string
	// GitIdentity passes the user's git name and email (from git config)
	// as GIT_AUTHOR_* and GIT_COMMITTER_*; default true.
	GitIdentity bool
	// Hide are more paths no sandboxed process may see (~ is the home).
	Hide []string
	// Protect are more workspace-relative paths kept read-only in a
	// writable workspace; a trailing "/" marks a directory.
	Protect []string
	// WorkspaceSecrets is SecretsHidden (the default) or SecretsVisible.
	WorkspaceSecrets string
	// WorkspaceSecretsVisible are glob patterns (the rules' glob syntax)
	// over workspace-relative paths: the secret files and directories
	// they match are neither masked nor refused to the file tools.
	WorkspaceSecretsVisible []string
	// Profiles are the profiles rules and servers may name, in file order.
	// read-only and workspace-write exist even when not listed (listing
	// one extends it); none (no sandbox) exists only when listed.
	Profiles []Profile
}

// Profile is one sandbox profile as configured.
type Profile struct {
	Name string
	// Workspace is "read", "write" or "none"; "" means the built-in's
	// (read for read-only, write for workspace-write) or "read".
	Workspace string
	Network   bool
	// Read and Write are host paths (~ is the home) mounted read-only and
	// read-write; missing ones are skipped.
	Read  []string
	Write []string
	Pos   Pos
}

// Values of sandbox.workspace_secrets.
const (
	// SecretsHidden masks the workspace's secret files and directories
	// (.env, keys, .aws/, as the rules' secret class names them) in every
	// sandboxed run.
	SecretsHidden = "hidden"
	// SecretsVisible leaves them readable, for a project whose commands
	// need its .env inside the sandbox.
	SecretsVisible = "visible"
)

var profileNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// NamesProfile reports whether the sandbox section defines profile name,
// built-ins included.
func (s *Sandbox) NamesProfile(name string) bool {
	if name == "read-only" || name == "workspace-write" {
		return true
	}
	return slices.ContainsFunc(s.Profiles, func(p Profile) bool { return p.Name == name })
}

func (d *decoder) sandbox(s *Sandbox, v *yaml.Node) {
	d.fields(v, "sandbox", map[string]func(k, v *yaml.Node){
		"bwrap":   func(_, v *yaml.Node) { s.Bwrap = d.str(v) },
		"env":     func(_, v *yaml.Node) { s.Env = d.envNames(v, "sandbox.env") },
		"set_env": func(_, v *yaml.Node) { s.SetEnv = d.strMap(v, "sandbox.set_env", envNameRE) },
		"git_identity": func(_, v *yaml.Node) {
			if b, ok := d.boolean(v); ok {
				s.GitIdentity = b
			}
		},
		"hide":    func(_, v *yaml.Node) { s.Hide = d.strList(v, "sandbox.hide", false) },
		"protect": func(_, v *yaml.Node) { s.Protect = d.strList(v, "sandbox.protect", false) },
		"workspace_secrets": func(_, v *yaml.Node) {
			s.WorkspaceSecrets = d.str(v)
			if s.WorkspaceSecrets != SecretsHidden && s.WorkspaceSecrets != SecretsVisible {
				d.errAt(v, "sandbox.workspace_secrets must be %s or %s, got %q", SecretsHidden, SecretsVisible, s.WorkspaceSecrets)
			}
		},
		"workspace_secrets_visible": func(_, v *yaml.Node) {
			s.WorkspaceSecretsVisible = d.strList(v, "sandbox.workspace_secrets_visible", false)
		},
		"profiles": func(_, v *yaml.Node) {
			v = deref(v)
			if isNull(v) {
				return
			}
			if v.Kind != yaml.MappingNode {
				d.errAt(v, "sandbox.profiles must be a mapping of profile name to settings, got %s", kindName(v))
				return
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				nk, nv := deref(v.Content[i]), deref(v.Content[i+1])
				if !profileNameRE.MatchString(nk.Value) {
					d.errAt(nk, "invalid sandbox profile name %q: use lower-case letters, digits, - and _", nk.Value)
					continue
				}
				if s.namesListed(nk.Value) {
					d.errAt(nk, "duplicate sandbox profile %q", nk.Value)
					continue
				}
				s.Profiles = append(s.Profiles, d.profile(nk, nv))
			}
		},
	})
}

func (s *Sandbox) namesListed(name string) bool {
	return slices.ContainsFunc(s.Profiles, func(p Profile) bool { return p.Name == name })
}

func (d *decoder) profile(k, v *yaml.Node) Profile {
	p := Profile{Name: k.Value, Pos: d.pos(k)}
	what := "sandbox profile " + k.Value
	if isNull(v) {
		return p
	}
	d.fields(v, what, map[string]func(k, v *yaml.Node){
		"workspace": func(_, v *yaml.Node) {
			p.Workspace = d.str(v)
			if !slices.Contains([]string{"read", "write", "none"}, p.Workspace) {
				d.errAt(v, "%s: workspace must be read, write or none, got %q", what, p.Workspace)
			}
		},
		"network": func(_, v *yaml.Node) {
			if b, ok := d.boolean(v); ok {
				p.Network = b
			}
		},
		"read":  func(_, v *yaml.Node) { p.Read = d.strList(v, what+" read", false) },
		"write": func(_, v *yaml.Node) { p.Write = d.strList(v, what+" write", false) },
	})
	if p.Name == "none" && (p.Workspace != "" || p.Network || len(p.Read) > 0 || len(p.Write) > 0) {
		d.errAt(k, "sandbox profile none runs without a sandbox, so it takes no settings (write none: {})")
	}
	return p
}

func (d *decoder) envNames(v *yaml.Node, what string) []string {
	names := d.strList(v, what, false)
	for _, n := range names {
		if !envNameRE.MatchString(n) {
			d.errAt(v, "%s: %q is not an environment variable name", what, n)
		}
	}
	return names
}
