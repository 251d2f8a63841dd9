package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// GitControl are the paths of a git directory, relative to it, that decide
// what git runs and where it reads that from: its config (aliases,
// core.fsmonitor, core.pager, filters), the per-worktree config, commondir
// (which moves config and hooks to another directory), the hooks, the
// attributes that pick filters, and the state of a rebase, am or
// cherry-pick in progress (GitSequences). A write to any of them is code
// that runs the next time the user runs git. A trailing "/" marks a
// directory that is created empty when missing, so a mount can hold it.
//
// The sandbox holds them read-only in the workspace's .git and in every
// submodule's git directory under it; the rule pack (package rules)
// classifies the same names as persistence. Both read this list.
var GitControl = slices.Concat([]string{"config", "config.worktree", "commondir", "hooks/", "info/attributes"}, GitSequences)

// GitSequences are the directories of a git directory where git keeps a
// rebase (rebase-merge, rebase-apply), an am (rebase-apply) or a
// cherry-pick or revert of several commits (sequencer) in progress: the
// todo list, whose exec lines git runs when the user continues (git
// rebase --continue), and the options it resumes with (a merge strategy,
// a signing program). A run that leaves one behind (a rebase -i stopped
// at a break, or at a conflict) would have the user's next git command on
// the host run what it wrote. Each is a protected path without a trailing
// "/": one that exists when a run starts (the user's own rebase, stopped)
// is held read-only; a missing one is not created (git refuses to start a
// rebase while one exists) but watched, so a run may rebase and finish,
// and what it leaves there is moved into QuarantineDir after it (Cleanup).
var GitSequences = []string{"rebase-merge", "rebase-apply", "sequencer"}

// WorktreeControl are the paths of a linked worktree's git directory
// (.git/worktrees/NAME) that decide where git reads config and hooks from
// (commondir and the per-worktree config), and what it runs when the
// user continues a rebase there (GitSequences). Its other files are the
// worktree's HEAD and index, which git must write.
var WorktreeControl = slices.Concat([]string{"commondir", "config.worktree"}, GitSequences)

// AgentSettings are the workspace paths that set what coding agents and
// editors do unasked: permission and MCP server files, rules and tasks.
// An agent that writes them grants itself permissions, or starts a server
// the next time a client opens the project. A trailing "/" marks a
// directory that is created empty when missing, so a mount can hold it;
// without it, a missing path is watched and removed if a run creates it.
//
// The sandbox holds them read-only in the workspace root (DefaultProtect);
// the rule pack (package rules) classifies the same names, anywhere in a
// path, as agent policy. Both read this list, so they cannot drift apart.
var AgentSettings = []string{
	".claude/", ".cursor/", ".vscode/", ".idea/", ".toolgate/", ".mcp.json",
	".codex", ".gemini", ".windsurf", ".continue", ".roo", ".amazonq", ".zed",
	".aider.conf.yml",
	// opencode (its plugins are JavaScript it loads), Crush, Qwen Code,
	// Kiro (.kiro/settings/mcp.json, .kiro/steering), Kilo Code.
	"opencode.json", "opencode.jsonc", ".opencode", "crush.json", ".crush.json", ".qwen", ".kiro", ".kilocode",
}

// AgentInstructions are the workspace paths coding agents read as standing
// instructions: a prompt every session of every agent in the project
// starts with. An agent rewrites them at a user's request, so the rule
// pack (package rules) reviews a write to them, anywhere in a path, rather
// than denying it; a run must not rewrite them behind the rules, so the
// sandbox holds them read-only in the workspace root (DefaultProtect).
// Those under an AgentSettings directory (.cursor/rules) are held with it.
// No entry ends in "/": a missing one is watched, not created.
var AgentInstructions = []string{
	"CLAUDE.md", "CLAUDE.local.md", "AGENTS.md", "AGENTS.override.md", "AGENT.md", "GEMINI.md",
	".github/copilot-instructions.md", ".github/instructions", ".github/prompts", ".github/chatmodes", ".github/agents",
	".cursorrules", ".windsurfrules", ".clinerules", ".cursor/rules", ".windsurf/rules",
	".rules", ".goosehints", ".junie/guidelines.md", ".kiro/steering", ".trae/rules", ".augment-guidelines",
}

// InstructionOf returns the entry of AgentInstructions that rel, a
// workspace-relative path, is or lies under, when a write may release its
// hold (CommandReleasing): not one under a held settings directory
// (.cursor/rules, held with .cursor). "" otherwise.
func InstructionOf(rel string) string {
	rel = filepath.ToSlash(rel)
	for _, e := range AgentInstructions {
		if rel != e && !strings.HasPrefix(rel, e+"/") {
			continue
		}
		if slices.ContainsFunc(AgentSettings, func(d string) bool { return strings.HasPrefix(e, strings.TrimSuffix(d, "/")+"/") }) {
			return ""
		}
		return e
	}
	return ""
}

// Persistence are the workspace paths that make code run later, outside
// the sandbox and outside the rules: a file a tool the user runs or
// opens reads and executes (direnv's .envrc, pre-commit's and lefthook's
// configs, husky's hooks, mise's config, a dev container's
// initializeCommand, Gitpod's and devbox's start-up tasks, an editor's
// project-local config (vim's and Neovim's exrc, Emacs's .dir-locals.el,
// Helix's language servers), Python's sitecustomize), or a CI pipeline.
// Not here: the configs of the tools the project builds with (.npmrc,
// .pnpmfile.cjs, .yarnrc.yml, .cargo/config.toml, .mvn/, .bazelrc): a
// build already runs the project's own code (package scripts, build.rs,
// tests), which a run writes anyway, so holding them would stop routine
// edits and close nothing. The sandbox holds them
// read-only in the workspace root (DefaultProtect); the rule pack (package
// rules) classifies the same names, anywhere in a path, as persistence.
// Both read this list. No entry ends in "/": a missing one is not created
// but watched, and moved into QuarantineDir if it appears during a run
// (not the directory on the way to it: a .github a run makes keeps its
// CODEOWNERS, and loses its workflows).
var Persistence = slices.Concat([]string{
	".envrc", ".gitmodules", ".husky", ".pre-commit-config.yaml",
	".github/workflows", ".github/actions", ".gitlab-ci.yml", ".gitlab-ci", ".circleci", "Jenkinsfile", ".travis.yml",
	"azure-pipelines.yml", ".buildkite", "bitbucket-pipelines.yml", ".drone.yml", ".woodpecker.yml", ".woodpecker",
	".forgejo/workflows", ".gitea/workflows", ".cirrus.yml", ".cirrus.star", "appveyor.yml", ".appveyor.yml", ".semaphore",
	"cloudbuild.yaml", "cloudbuild.yml", "buildspec.yml", ".tekton",
	".devcontainer", ".devcontainer.json", ".gitpod.yml", "devbox.json",
	"mise.toml", ".mise.toml", "mise.local.toml", ".mise.local.toml", ".mise",
	".lefthook", ".lefthook-local",
	".nvim.lua", ".nvimrc", ".exrc", ".vimrc", "_vimrc", ".lazy.lua", ".helix", ".dir-locals.el", ".dir-locals-2.el",
	"sitecustomize.py", "usercustomize.py",
}, lefthookConfigs())

// lefthookConfigs are the names lefthook reads its (and the local
// override's) configuration from, with or without a leading dot.
func lefthookConfigs() []string {
	var out []string
	for _, base := range []string{"lefthook", "lefthook-local"} {
		for _, ext := range []string{"yml", "yaml", "json", "jsonc", "toml"} {
			out = append(out, base+"."+ext, "."+base+"."+ext)
		}
	}
	return out
}

func gitPaths(dir string, control []string) []string {
	out := make([]string, 0, len(control))
	for _, c := range control {
		out = append(out, dir+"/"+c)
	}
	return out
}

// gitHooks are the names git runs from a hooks directory; they stand for
// the directory when core.hooksPath names the workspace root itself.
var gitHooks = []string{"applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit", "pre-merge-commit",
	"prepare-commit-msg", "commit-msg", "post-commit", "pre-rebase", "post-checkout", "post-merge", "pre-push",
	"pre-receive", "update", "proc-receive", "post-receive", "post-update", "reference-transaction",
	"push-to-checkout", "pre-auto-gc", "post-rewrite", "sendemail-validate", "fsmonitor-watchman",
	"p4-changelist", "p4-prepare-changelist", "p4-post-changelist", "p4-pre-submit", "post-index-change"}

// maxGitDirWalk bounds the directories protectPaths visits under .git's
// modules and worktrees: a run could fill them with empty directories.
const maxGitDirWalk = 4096

// errTooManyGitDirs stops a run whose .git/modules holds more directories
// than protectPaths visits: a submodule it did not reach would be
// unprotected, so the run does not start.
var errTooManyGitDirs = errors.New("sandbox: .git/modules or .git/worktrees holds too many directories to protect them all")

// holdsGit reports whether Protect holds .git's control files (it does by
// default): then those of the git directories under .git are held too.
func (s *Sandbox) holdsGit() bool { return slices.Contains(s.o.Protect, ".git/config") }

// protectPaths returns the workspace-relative paths to hold read-only (or
// watch) in ws for one run, sorted: the Protect paths, and, when Protect
// holds .git's control files (it does by default), the same files of every
// submodule's and linked worktree's git directory under .git and of each
// gitlink's .git directory in the worktree (gitlinkGitDirs), and the hooks
// directory the repository's core.hooksPath names. It also returns what
// Cleanup's check of git's repositories needs from before the run (zero
// when there is no .git to look at), found on the same walk.
func (s *Sandbox) protectPaths(ctx context.Context, ws string) ([]string, gitBefore, error) {
	out := slices.Clone(s.o.Protect)
	var gb gitBefore
	if s.holdsGit() && realDir(filepath.Join(ws, ".git")) {
		more, slots, err := gitControlPaths(ws)
		if err != nil {
			return nil, gitBefore{}, err
		}
		hooks, err := hooksPathEntries(ctx, ws)
		if err != nil {
			return nil, gitBefore{}, err
		}
		if gb.slots, err = gitDirSlotsOf(ws, slots); err != nil {
			return nil, gitBefore{}, err
		}
		gb.links = s.recordGitlinks(ctx, ws, existingFiles(ws, more))
		out = slices.Concat(out, more, hooks, gitlinkGitDirs(gb.links, ws))
	}
	slices.Sort(out)
	return slices.Compact(out), gb, nil
}

// gitControlPaths returns the control files of the git directories under
// ws/.git: each submodule's (.git/modules/NAME, nested ones too) and each
// linked worktree's (.git/worktrees/NAME), and the slots: the directories
// it looked for git directories in (each git directory's modules/ and
// worktrees/, whether they exist or not, and the directories on the way
// to a submodule's whose name holds slashes). Links are not followed.
func gitControlPaths(ws string) (paths, slots []string, _ error) {
	var out []string
	walked := 0
	var gitDir, names func(rel string) error
	// A submodule's name may hold slashes (.git/modules/libs/x): the
	// directories on the way to its git directory are names.
	names = func(rel string) error {
		if walked++; walked > maxGitDirWalk {
			return errTooManyGitDirs
		}
		if isGitDir(filepath.Join(ws, rel)) {
			return gitDir(rel)
		}
		slots = append(slots, rel)
		for _, name := range subdirs(filepath.Join(ws, rel)) {
			if err := names(filepath.Join(rel, name)); err != nil {
				return err
			}
		}
		return nil
	}
	gitDir = func(rel string) error {
		if rel != ".git" {
			out = append(out, gitPaths(rel, GitControl)...)
		}
		slots = append(slots, filepath.Join(rel, "modules"), filepath.Join(rel, "worktrees"))
		for _, name := range subdirs(filepath.Join(ws, rel, "modules")) {
			if err := names(filepath.Join(rel, "modules", name)); err != nil {
				return err
			}
		}
		for _, name := range subdirs(filepath.Join(ws, rel, "worktrees")) {
			out = append(out, gitPaths(filepath.Join(rel, "worktrees", name), WorktreeControl)...)
		}
		return nil
	}
	if err := gitDir(".git"); err != nil {
		return nil, nil, err
	}
	return out, slots, nil
}

// realDir reports whether p is a directory, not a link to one.
func realDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

// subdirs returns the names of the directories in dir (links left out),
// none when dir is not itself a directory.
func subdirs(dir string) []string {
	if !realDir(dir) {
		return nil
	}
	des, _ := os.ReadDir(dir)
	var out []string
	for _, de := range des {
		if de.IsDir() {
			out = append(out, de.Name())
		}
	}
	return out
}

// isGitDir reports whether dir looks like a git directory (it has HEAD).
func isGitDir(dir string) bool {
	fi, err := os.Lstat(filepath.Join(dir, "HEAD"))
	return err == nil && fi.Mode().IsRegular()
}

var gitExe = sync.OnceValue(func() string {
	p, _ := exec.LookPath("git")
	return p
})

// hooksPathEntries returns the protect entries for the hooks directory
// the repository in ws runs its hooks from when core.hooksPath sets one
// inside the workspace (husky and the like: ".husky", ".githooks"); none
// when it is unset, lies outside the workspace, or git is not installed.
// The setting is read as the user's git reads it (system, global and
// repository config, includes), by git itself: .git/config is held
// read-only, so a run cannot move the hooks elsewhere. A config git cannot
// read is an error: the run would go unprotected. git gets only what
// locates the user's config in its environment, none of toolgate's.
func hooksPathEntries(ctx context.Context, ws string) ([]string, error) {
	git := gitExe()
	if git == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, git, "config", "--type=path", "--get", "core.hooksPath")
	cmd.Dir = ws
	cmd.Env = []string{"GIT_DIR=" + filepath.Join(ws, ".git")}
	for _, k := range []string{"PATH", "HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return nil, nil // unset
	case err != nil:
		return nil, fmt.Errorf("sandbox: reading core.hooksPath of %s: %w", ws, err)
	}
	dir := strings.TrimRight(string(out), "\r\n")
	if dir == "" {
		return nil, nil
	}
	if !filepath.IsAbs(dir) {
		// Relative to where hooks run: the top of the working tree.
		dir = filepath.Join(ws, dir)
	}
	dir = filepath.Clean(dir)
	if !Within(ws, dir) {
		return nil, nil
	}
	if dir == ws {
		return slices.Clone(gitHooks), nil
	}
	rel, _ := filepath.Rel(ws, dir)
	entries := []string{rel + "/"}
	if filepath.Base(rel) == "_" && filepath.Dir(rel) != "." {
		// husky 9: core.hooksPath is .husky/_, whose scripts run the
		// user's hooks in .husky itself.
		entries = append(entries, filepath.Dir(rel)+"/")
	}
	return entries, nil
}

// hidePins returns the hidden paths that lie strictly inside ws and exist:
// the directories between ws and each are pinned, so a run cannot rename
// one and with it take the hidden path out from under its mask.
func (s *Sandbox) hidePins(ws string) []string {
	var out []string
	for _, h := range s.o.Hide {
		h = filepath.Clean(h)
		if h == ws || !Within(ws, h) {
			continue
		}
		if _, err := os.Lstat(h); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		out = append(out, h)
	}
	return out
}
