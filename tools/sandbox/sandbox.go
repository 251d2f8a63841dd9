// Package sandbox runs commands inside an OS sandbox built with bubblewrap
// (bwrap): new mount, PID, IPC, UTS and (unless the profile allows it)
// network namespaces, a filesystem assembled from an allowlist, and an
// environment that is exactly the one it is given.
//
// The sandbox is what makes a decision mean something: a command the rules
// allowed runs with the rights of its profile, not with toolgate's. What is
// not mounted does not exist inside, so toolgate's secrets and state, the
// user's home and the usual secret stores are simply absent:
//
//   - system directories (/usr, /etc, /opt, ...) are mounted read-only, with
//     Hide paths (e.g. /etc/shadow, toolgate's config, rules and audit log)
//     masked;
//   - the user's home is an empty private tmpfs at the same path, into which
//     only a profile's Read and Write paths are mounted;
//   - /tmp is a private tmpfs, /proc shows only the sandbox's own processes,
//     /dev holds only the standard devices;
//   - the workspace is mounted read-only or read-write, as the profile says;
//     in a writable workspace the Protect paths (git's control files in
//     .git and its submodules' and worktrees' git directories, the
//     core.hooksPath directory, agent and editor settings) stay read-only,
//     and Hide paths in it keep their place, so a write cannot become code
//     that runs outside the sandbox or policy the agent grants itself.
//
// Every process of a run lives in the run's PID namespace, whose init is
// bwrap: when the run ends, is cancelled or times out, bwrap is killed and
// the kernel kills every process left in the namespace, setsid and double
// forks included.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Built-in profile names.
const (
	// ReadOnly: the workspace readable, nothing writable but private tmpfs
	// (/tmp and the home directory), no network.
	ReadOnly = "read-only"
	// WorkspaceWrite: the workspace writable except its Protect paths, no network.
	WorkspaceWrite = "workspace-write"
	// None: no sandbox at all. It exists only when the configuration names
	// it explicitly.
	None = "none"
)

// Access is what a profile may do in the workspace.
type Access uint8

// Workspace access levels.
const (
	NoAccess Access = iota
	ReadAccess
	WriteAccess
)

// Profile is one set of rights a sandboxed command runs with.
type Profile struct {
	// Name is how rules and the config refer to the profile.
	Name string
	// Workspace is the access to the workspace directory.
	Workspace Access
	// Network keeps the host's network; false gives the run a network
	// namespace of its own with only a loopback interface.
	Network bool
	// Read are absolute paths mounted read-only (missing ones are skipped).
	Read []string
	// Write are absolute paths mounted read-write (missing ones are skipped).
	Write []string
	// Unsandboxed marks the None profile: the command runs directly, with
	// toolgate's rights, in the given environment.
	Unsandboxed bool
}

// Options configures a Sandbox.
type Options struct {
	// Bwrap is the bubblewrap executable. Required unless every profile is
	// unsandboxed.
	Bwrap string
	// Workspace is the workspace directory, absolute with symlinks
	// evaluated; "" means no workspace is mounted.
	Workspace string
	// Home is the home directory path inside the sandbox: an empty private
	// tmpfs. "" means /tmp.
	Home string
	// System are the read-only system paths; nil means DefaultSystem.
	System []string
	// Hide are absolute paths that are never visible inside, even when they
	// lie under a mounted path: a directory is replaced by an empty one, a
	// file by an unreadable one. DefaultHide is always added.
	Hide []string
	// Protect are workspace-relative paths that stay read-only in a
	// writable workspace. A missing one whose name ends in "/" is created
	// as an empty directory first, so it can be held read-only too; a
	// missing file is watched instead: if it appears during the run, it
	// is moved into QuarantineDir (or removed) afterwards and the run
	// reports it (Cmd.Cleanup). When the parent of a path in .git is
	// missing, the first missing name on the way is watched (a whole new
	// repository goes); elsewhere only the path itself is. A symlink on
	// the way to a path, or at it, refuses the run, and so does a held
	// file with another name (a hard link), or a regular file with one
	// anywhere in a held directory (QuarantineDir aside): a mount holds
	// names, not files (see soleNames).
	Protect []string
	// Secret, when set, says which workspace paths hold secrets: it is
	// given a workspace-relative slash path ("config/.env", ".aws") and
	// reports whether that path names a secret file or directory. At each
	// run that mounts the workspace or part of it (a Read or Write path
	// in it, a system path over it), the sandbox walks it (see SkipDirs)
	// and masks every secret that exists, as it masks a Hide path: a file
	// reads as empty, a directory as an empty one, both read-only and
	// pinned in place, so a run can neither read nor move them. A file
	// whose content the workspace's .git holds is not masked (see
	// unheld). A run whose walk cannot finish is refused
	// (ErrSecretWalk), and so is one while a masked file has a name
	// that is not masked (ErrSecretLinked). nil masks none.
	Secret func(rel string) bool
	// Env is the whole environment of a sandboxed command ("K=V"); bwrap
	// itself gets the same one, so /proc/1/environ inside shows nothing more.
	Env []string
	// Profiles are the profiles rules may name. ReadOnly and
	// WorkspaceWrite are added when missing; None only exists if listed.
	Profiles []Profile
	// Unavailable, when set, says why sandboxes cannot be set up here (see
	// Probe): Command then fails with it for every sandboxed profile, so
	// nothing runs unconfined by accident.
	Unavailable error
}

// DefaultSystem are the system paths mounted read-only when they exist.
// A top-level symlink (/bin -> usr/bin) is recreated as a symlink.
var DefaultSystem = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// DefaultHide are system files that hold secrets and are masked inside.
var DefaultHide = []string{
	"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-",
	"/etc/sudoers", "/etc/sudoers.d", "/etc/ssh", "/etc/ssl/private",
	"/etc/security/opasswd", "/etc/machine-id",
}

// DefaultProtect are the workspace paths that stay read-only in a writable
// workspace: git's control files in .git (GitControl: a hook or a config
// alias is code that runs the next time the user runs git), the permission
// and server files of coding agents and editors (AgentSettings), their
// instruction files (AgentInstructions), and the files that make code run
// later outside the sandbox (Persistence: .envrc, pre-commit's config, CI).
// At each run the sandbox adds the control files of the submodules' and
// linked worktrees' git directories under .git and of each gitlink's .git
// directory in the worktree, and the directory
// core.hooksPath names when it lies in the workspace.
var DefaultProtect = slices.Concat(gitPaths(".git", GitControl), AgentSettings, AgentInstructions, Persistence)

// ErrUnknownProfile is returned for a profile name that is not configured.
var ErrUnknownProfile = errors.New("unknown sandbox profile")

// ErrUnavailable is returned when the sandbox cannot be set up here.
var ErrUnavailable = errors.New("sandbox unavailable")

var profileNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidName reports whether s can name a profile.
func ValidName(s string) bool { return profileNameRE.MatchString(s) }

// Sandbox builds sandboxed commands. It is safe for concurrent use. Its
// first sandboxed command opens the inotify instance all its commands
// share to watch what their mounts hold (watch_linux.go), which Close
// releases.
type Sandbox struct {
	o        Options
	watcher  *watcher
	profiles map[string]Profile
	// hiddenIDs are the identities of the Hide paths that existed at New,
	// so that a hidden file reached by another name (a hard link, a
	// renamed directory) is still hidden from the file tools.
	hiddenIDs map[fileID]bool
	// maxSecretWalk bounds the entries the walk for secret files looks at.
	maxSecretWalk int
	// maxHeldWalk bounds the entries a writable run's check of the held
	// directories for files with other names looks at (soleNames).
	maxHeldWalk int
	// now is the wall clock the walk compares directories' change times
	// with.
	now func() time.Time
	// walked are the directory listings of the last walk that finished
	// (see secretWalk), and sums the blob ids of the secret files it
	// found (see unheld), guarded by walkMu.
	walkMu sync.Mutex
	walked map[string]listing
	sums   map[string]blobSum
	// links are the gitlinks of the workspace's index (see gitlink.go).
	links gitlinkState
}

// New checks o and returns a Sandbox. It does not run bwrap: see Probe.
func New(o Options) (*Sandbox, error) {
	if o.System == nil {
		o.System = DefaultSystem
	}
	if o.Home == "" {
		o.Home = "/tmp"
	}
	o.Hide = append(slices.Clone(DefaultHide), o.Hide...)
	s := &Sandbox{o: o, watcher: newWatcher(), profiles: map[string]Profile{}, hiddenIDs: map[fileID]bool{},
		maxSecretWalk: defaultMaxSecretWalk, maxHeldWalk: defaultMaxHeldWalk, now: time.Now}
	for _, h := range o.Hide {
		if fi, err := os.Stat(h); err == nil {
			if id, ok := idOf(fi); ok {
				s.hiddenIDs[id] = true
			}
		}
	}
	var errs []error
	for _, p := range o.Profiles {
		if err := checkProfile(p); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := s.profiles[p.Name]; dup {
			errs = append(errs, fmt.Errorf("sandbox profile %q is defined twice", p.Name))
			continue
		}
		s.profiles[p.Name] = p
	}
	for _, b := range Builtin() {
		if _, ok := s.profiles[b.Name]; !ok {
			s.profiles[b.Name] = b
		}
	}
	for _, p := range append(slices.Clone(o.Hide), o.Workspace, o.Home) {
		if p != "" && !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("sandbox: path %q is not absolute", p))
		}
	}
	for _, rel := range o.Protect {
		if c := filepath.Clean(strings.TrimSuffix(rel, "/")); !filepath.IsLocal(c) {
			errs = append(errs, fmt.Errorf("sandbox: protected path %q must be relative to the workspace and stay inside it", rel))
		}
	}
	if o.Bwrap == "" && o.Unavailable == nil {
		s.o.Unavailable = fmt.Errorf("%w: no bubblewrap (bwrap) executable given", ErrUnavailable)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Close releases what the Sandbox's commands share. A sandboxed command
// still running is killed, and none starts after.
func (s *Sandbox) Close() { s.watcher.close() }

// Builtin returns the built-in profiles, ReadOnly and WorkspaceWrite.
func Builtin() []Profile {
	return []Profile{
		{Name: ReadOnly, Workspace: ReadAccess},
		{Name: WorkspaceWrite, Workspace: WriteAccess},
	}
}

func checkProfile(p Profile) error {
	if !ValidName(p.Name) {
		return fmt.Errorf("sandbox profile name %q: want lower-case letters, digits, - and _", p.Name)
	}
	if p.Name == None && !p.Unsandboxed || p.Name != None && p.Unsandboxed {
		return fmt.Errorf("sandbox profile %q: only the profile named %q runs unsandboxed", p.Name, None)
	}
	for _, path := range append(slices.Clone(p.Read), p.Write...) {
		if !filepath.IsAbs(path) {
			return fmt.Errorf("sandbox profile %q: path %q is not absolute", p.Name, path)
		}
		if filepath.Clean(path) == "/" {
			return fmt.Errorf("sandbox profile %q: mounting / defeats the sandbox; name the directories", p.Name)
		}
	}
	return nil
}

// Profile returns the profile called name, or ErrUnknownProfile.
func (s *Sandbox) Profile(name string) (Profile, error) {
	p, ok := s.profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("%w %q (configured: %s)", ErrUnknownProfile, name, strings.Join(s.Names(), ", "))
	}
	return p, nil
}

// Names returns the configured profile names, sorted.
func (s *Sandbox) Names() []string {
	names := make([]string, 0, len(s.profiles))
	for n := range s.profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Writable returns every host path some profile can write to
// (WritableBy). toolgate's own files must lie outside all of them.
func (s *Sandbox) Writable() []string {
	ps := make([]Profile, 0, len(s.profiles))
	for _, n := range s.Names() {
		ps = append(ps, s.profiles[n])
	}
	return WritableBy(s.o.Workspace, ps)
}

// WritableBy returns every host path one of profiles can write to,
// cleaned and sorted: workspace when a profile writes it, and each
// profile's Write paths.
func WritableBy(workspace string, profiles []Profile) []string {
	var out []string
	for _, p := range profiles {
		if p.Unsandboxed {
			continue
		}
		if p.Workspace == WriteAccess && workspace != "" {
			out = append(out, workspace)
		}
		for _, w := range p.Write {
			out = append(out, filepath.Clean(w))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Cmd is a command prepared to run in a sandbox. Run it like any
// exec.Cmd, then call Cleanup once it has exited.
type Cmd struct {
	*exec.Cmd
	// Profile is the profile it runs with.
	Profile Profile
	// Masked are the workspace's secret files and directories the run
	// finds empty (Options.Secret), workspace-relative slash paths,
	// sorted: what the agent and the user may need to know when a
	// command that reads one fails.
	Masked []string
	// Quarantine is the directory Cleanup moved what it took away into,
	// absolute: what was at workspace path REL is at Quarantine/REL (a
	// .git named dot-git). "" when it took nothing away, or removed it.
	Quarantine string
	ws         string // the workspace, when watch is not empty
	// quarantine says whether the run held QuarantineDir's parent
	// (.toolgate/) read-only, so Cleanup may move things into it.
	quarantine bool
	watch      []string // workspace-relative paths to remove if the run creates them
	// links are the workspace's gitlinks before a writable run, nil for
	// none to check (see takeGitlinks).
	links *gitlinks
	// slots are what the directories under .git where git finds other git
	// directories held before a writable run (see takeGitDirs).
	slots    gitDirSlots
	argsPipe *os.File // read end of bwrap's --args pipe, until Start
	// hold are the paths the run's mounts hold, as they were at the
	// start; holdWatch watches them during the run, holdLog collects
	// the ones whose hold ended, and cancel kills the run (see hold.go).
	hold      []holdPath
	holdWatch *holdWatch
	holdLog   holdLog
	holdOnce  sync.Once
	cancel    context.CancelCauseFunc
}

// Command prepares argv to run in profile, in dir (an absolute path that
// must be visible inside: the workspace or a directory in it). The returned
// command is in its own process group; its Cancel kills the group, which
// ends the sandbox's PID namespace and with it every process of the run.
func (s *Sandbox) Command(ctx context.Context, profile, dir string, argv []string) (*Cmd, error) {
	return s.command(ctx, profile, dir, argv, "")
}

// CommandReleasing is Command with one agent instruction file (or
// directory) of AgentInstructions, release, left writable: the rules
// decide a write to one (a review, by default), and write_file, whose
// command is its own fixed script, writes it once they let it. Any other
// path, or one under another held directory (.cursor/rules under
// .cursor), is refused.
func (s *Sandbox) CommandReleasing(ctx context.Context, profile, dir string, argv []string, release string) (*Cmd, error) {
	if release == "" || InstructionOf(release) != release {
		return nil, fmt.Errorf("sandbox: %s is not an agent instruction path that can be released", release)
	}
	return s.command(ctx, profile, dir, argv, release)
}

func (s *Sandbox) command(ctx context.Context, profile, dir string, argv []string, release string) (*Cmd, error) {
	p, err := s.Profile(profile)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, errors.New("sandbox: empty command")
	}
	if !p.Unsandboxed && s.o.Unavailable != nil {
		return nil, s.o.Unavailable
	}
	c := &Cmd{Profile: p}
	var cmd *exec.Cmd
	var argsPipe *os.File
	if p.Unsandboxed {
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	} else {
		var args []string
		var gb gitBefore
		args, c.watch, c.Masked, c.hold, gb, err = s.args(ctx, p, dir, release)
		if err != nil {
			return nil, err
		}
		c.ws, c.links, c.slots = s.o.Workspace, gb.links, gb.slots
		qdir := filepath.Join(c.ws, filepath.Dir(QuarantineDir))
		c.quarantine = slices.ContainsFunc(c.hold, func(h holdPath) bool { return h.kind == heldRO && h.path == qdir })
		ctx, c.cancel = context.WithCancelCause(ctx)
		c.holdWatch, err = s.watcher.watch(c.hold, &c.holdLog, func() { c.cancel(ErrHoldEnded) })
		if err != nil {
			c.cancel(err)
			return nil, err
		}
		// Recorded once the watches are in place: a change after this is
		// seen by the watcher, or after the run, or both.
		for i := range c.hold {
			c.hold[i].record()
		}
		r, w, err := os.Pipe()
		if err != nil {
			c.endHold()
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		// The mount options go through a pipe (--args), so the paths
		// toolgate hides are not in bwrap's command line for a
		// sandboxed process to read; the command itself follows "--".
		go func() {
			_, _ = w.Write(nulJoin(args))
			_ = w.Close()
		}()
		cmd = exec.CommandContext(ctx, s.o.Bwrap, append([]string{"--args", "3", "--"}, argv...)...)
		cmd.ExtraFiles = []*os.File{r}
		argsPipe = r
	}
	cmd.Dir = dir
	cmd.Env = slices.Clone(s.o.Env)
	cmd.SysProcAttr = groupLeader()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	c.Cmd, c.argsPipe = cmd, argsPipe
	return c, nil
}

// Start starts the command. It must be used instead of the embedded
// exec.Cmd's: it closes toolgate's copy of the argument pipe, so the
// writer ends (EPIPE) even when bwrap dies before reading it.
func (c *Cmd) Start() error {
	err := c.Cmd.Start()
	if c.argsPipe != nil {
		_ = c.argsPipe.Close()
		c.argsPipe = nil
	}
	if err != nil {
		c.endHold()
	}
	return err
}

// Wait waits for the command to exit, then stops watching the paths its
// mounts held and checks them (see HoldErr). It must be used instead of
// the embedded exec.Cmd's.
func (c *Cmd) Wait() error {
	err := c.Cmd.Wait()
	c.endHold()
	return err
}

// Run starts the command and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// HoldErr reports, once Wait (or a failed Start) has returned, whether a
// protected or masked path was replaced, removed or changed on the host
// while the run was in flight: nil, or ErrHoldEnded with each path, what
// happened to it and what to do. The run was killed when the change was
// seen, which may be after a process of it reached the new file: a call
// that gets this error failed, and the paths it names are for the user to
// inspect.
func (c *Cmd) HoldErr() error {
	c.endHold()
	return c.holdLog.err()
}

// endHold stops watching the run's held paths and compares each with what
// it was at the start.
func (c *Cmd) endHold() {
	c.holdOnce.Do(func() {
		if c.holdWatch == nil {
			return
		}
		c.holdWatch.stop()
		holdLogged(&c.holdLog, c.hold)
		c.cancel(nil)
	})
}

// Kill kills the command's process group: bwrap and, through its PID
// namespace, everything the command started. Safe after exit.
func (c *Cmd) Kill() {
	if c.Process != nil {
		_ = killGroup(c.Process.Pid)
	}
}

// Cleanup takes away what appeared at the watched paths during the run: a
// protected file or directory that did not exist when it started (no mount
// could hold it read-only), or, in .git, the first missing directory on the
// way to a protected path (a .git a run made where there was none: a
// repository, a file naming another git directory, or a link), what
// appeared where git finds submodules' and worktrees' git directories
// (takeGitDirs), and a repository at a submodule's path (takeGitlinks). inotify
// cannot tell who made it: the run, or the user on the host. So nothing is
// destroyed when it can be kept: it is moved into a directory of its own
// under QuarantineDir (Cmd.Quarantine), which every writable run holds
// read-only and where no tool reads it as what it was; only when that
// fails (the Protect paths do not hold .toolgate/, or the move fails) is it
// removed. If the run replaced a directory on the way with a symlink, the
// link itself is taken away: Cleanup runs with toolgate's rights, so it
// goes through an os.Root on the workspace and follows no link (see walk).
// It returns the absolute paths it took away, and an error naming each one
// it could not, even after giving the directories involved their owner's
// permission bits back (a run may take them away to keep what it created).
// Call it after the command has exited.
func (c *Cmd) Cleanup() ([]string, error) {
	c.endHold()
	if len(c.watch) == 0 && c.links == nil && c.slots == nil {
		return nil, nil
	}
	root, err := openWorkspace(c.ws, true)
	if err != nil {
		return nil, fmt.Errorf("sandbox: after the run: %w", err)
	}
	defer root.Close()
	q := quarantine{root: root, ok: c.quarantine}
	var removed []string
	var errs []error
	for _, rel := range c.watch {
		p, err := walk(root, rel, true)
		if err != nil {
			errs = append(errs, fmt.Errorf("sandbox: after the run: %s: %w", filepath.Join(c.ws, rel), err))
			continue
		}
		// Nothing there, or a file where a directory was: there is
		// nothing at rel, and nothing to remove.
		created := p.fi != nil && (p.rel == rel || p.fi.Mode()&fs.ModeSymlink != 0)
		if created {
			if err := q.take(p); err != nil {
				errs = append(errs, fmt.Errorf("sandbox: removing %s, which appeared during the run: %w", filepath.Join(c.ws, p.rel), err))
			} else {
				removed = append(removed, filepath.Join(c.ws, p.rel))
			}
		}
		p.dir.Close()
	}
	if c.slots != nil {
		more, serrs := c.takeGitDirs(root, &q)
		removed, errs = append(removed, more...), append(errs, serrs...)
	}
	if c.links != nil {
		more, lerrs := c.takeGitlinks(root, &q)
		removed, errs = append(removed, more...), append(errs, lerrs...)
	}
	if q.dir != "" {
		c.Quarantine = filepath.Join(c.ws, q.dir)
	}
	return removed, errors.Join(errs...)
}

func nulJoin(args []string) []byte {
	var b []byte
	for _, a := range args {
		b = append(b, a...)
		b = append(b, 0)
	}
	return b
}

// args returns bwrap's options for a command in profile p, run in dir, the
// protected files to watch, the workspace's secrets it masks and what its
// mounts hold (held, pinned and masked paths). Mount order matters: later
// mounts cover earlier ones, so masks and protections come after what they
// cover.
func (s *Sandbox) args(ctx context.Context, p Profile, dir, release string) (a, watch, masked []string, hold []holdPath, gb gitBefore, err error) {
	a = []string{
		"--die-with-parent", "--new-session",
		"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--cap-drop", "ALL",
	}
	if !p.Network {
		a = append(a, "--unshare-net")
	}
	for _, sys := range s.o.System {
		fi, err := os.Lstat(sys)
		switch {
		case err != nil:
			continue
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(sys)
			if err != nil {
				continue
			}
			a = append(a, "--symlink", target, sys)
		default:
			a = append(a, "--ro-bind", sys, sys)
		}
	}
	a = append(a, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp", "--tmpfs", "/run")
	if s.o.Home != "/tmp" {
		a = append(a, "--tmpfs", s.o.Home)
	}
	for _, r := range p.Read {
		a = append(a, "--ro-bind-try", r, r)
	}
	for _, w := range p.Write {
		a = append(a, "--bind-try", w, w)
	}
	var dirs, files []string
	if s.o.Secret != nil && s.showsWorkspace(p) {
		sf, sd, err := s.secretPaths(ctx)
		if err != nil {
			return nil, nil, nil, nil, gitBefore{}, err
		}
		for _, rel := range sf {
			if f := filepath.Join(s.o.Workspace, rel); s.visible(p, f) {
				files = append(files, f)
				masked = append(masked, rel)
			}
		}
		for _, rel := range sd {
			if d := filepath.Join(s.o.Workspace, rel); s.visible(p, d) {
				dirs = append(dirs, d)
				masked = append(masked, rel)
			}
		}
		slices.Sort(masked)
	}
	var held, pins []string
	if ws := s.o.Workspace; ws != "" && p.Workspace != NoAccess {
		if p.Workspace == WriteAccess {
			a = append(a, "--bind", ws, ws)
			a, watch, held, pins, gb, err = s.protect(ctx, a, ws, slices.Concat(s.hidePins(ws), files, dirs), release)
			if err != nil {
				return nil, nil, nil, nil, gitBefore{}, err
			}
		} else {
			a = append(a, "--ro-bind", ws, ws)
		}
	}
	// A hidden directory is an empty read-only tmpfs, in which nothing
	// can be mounted: a hidden path inside one is masked by it already.
	// The workspace's secrets join the Hide paths here.
	for _, h := range s.o.Hide {
		h = filepath.Clean(h)
		fi, err := os.Stat(h)
		switch {
		case err != nil || !s.visible(p, h):
		case fi.IsDir():
			dirs = append(dirs, h)
		default:
			files = append(files, h)
		}
	}
	slices.Sort(dirs)
	slices.Sort(files)
	dirs, files = slices.Compact(dirs), slices.Compact(files)
	isDir := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		isDir[d] = true
	}
	under := func(h string) bool {
		for d := filepath.Dir(h); ; d = filepath.Dir(d) {
			if isDir[d] {
				return true
			}
			if d == "/" {
				return false
			}
		}
	}
	var masks []string
	for _, d := range dirs {
		if !under(d) {
			a = append(a, "--tmpfs", d, "--remount-ro", d)
			masks = append(masks, d)
		}
	}
	for _, f := range files {
		if !under(f) {
			a = append(a, "--ro-bind", "/dev/null", f)
			masks = append(masks, f)
		}
	}
	if dir != "" {
		a = append(a, "--chdir", dir)
	}
	return a, watch, masked, holdPaths(held, pins, masks), gb, nil
}

// showsWorkspace reports whether any of the workspace is mounted in
// profile p: as the workspace, or under or as a system, Read or Write path.
func (s *Sandbox) showsWorkspace(p Profile) bool {
	ws := s.o.Workspace
	if ws == "" {
		return false
	}
	if p.Workspace != NoAccess {
		return true
	}
	for _, r := range slices.Concat(s.o.System, p.Read, p.Write) {
		if Within(r, ws) || Within(ws, r) {
			return true
		}
	}
	return false
}

// visible reports whether host path h would be mounted in profile p (and so
// needs masking).
func (s *Sandbox) visible(p Profile, h string) bool {
	roots := slices.Concat(s.o.System, p.Read, p.Write)
	if p.Workspace != NoAccess && s.o.Workspace != "" {
		roots = append(roots, s.o.Workspace)
	}
	for _, r := range roots {
		if Within(r, h) {
			return true
		}
	}
	return false
}

// protect appends the read-only mounts that hold the workspace's protected
// paths, creating missing protected directories, and returns the
// workspace-relative paths to watch (missing protected paths, and in .git
// the first missing name on the way to one whose parent is missing), and
// the absolute paths it holds read-only and pins.
//
// A mount point cannot be renamed or removed, but its parent's entry can:
// holding .git/config alone would let a run rename .git away and put a
// copy with its own hooks in its place. So every directory between the
// workspace and a held path is bound onto itself (still writable) first,
// which pins the whole chain of names. The same holds for the hidden paths
// in the workspace (hidden): each is masked by a mount, and renaming a
// directory above it would move it out from under its mask.
func (s *Sandbox) protect(ctx context.Context, a []string, ws string, hidden []string, release string) (_, watch, held, pins []string, gb gitBefore, _ error) {
	root, err := os.OpenRoot(ws)
	if err != nil {
		return nil, nil, nil, nil, gitBefore{}, fmt.Errorf("sandbox: workspace: %w", err)
	}
	defer root.Close()
	rels, gb, err := s.protectPaths(ctx, ws)
	if err != nil {
		return nil, nil, nil, nil, gitBefore{}, err
	}
	if release != "" {
		rels = slices.DeleteFunc(rels, func(r string) bool { return r == release })
	}
	// Sorted, a protected directory comes before the paths under it, so
	// it exists (and is held, not watched) when they are looked at.
	w := heldWalk{limit: s.maxHeldWalk, left: s.maxHeldWalk}
	for _, rel := range rels {
		p, hold, err := protectOne(root, rel, &w)
		var link linkError
		switch {
		case errors.As(err, &link):
			// Every later run fails the same way until someone acts, and
			// a run may have made the link itself (.git/modules is
			// writable): say so, and exactly what to remove.
			return nil, nil, nil, nil, gitBefore{}, fmt.Errorf("sandbox: protected path %s: %s is a symlink, which a mount cannot hold "+
				"(it would hold what the link points to, and a command could repoint it), so no command runs with a writable "+
				"workspace until it is gone. A command of the agent may have made it: if the user did not, remove it (rm %s) "+
				"and check what it pointed to; if the user did, replace it with the %s it points to",
				rel, filepath.Join(ws, link.rel), filepath.Join(ws, link.rel), link.want)
		case err != nil:
			return nil, nil, nil, nil, gitBefore{}, fmt.Errorf("sandbox: protected path %s: %w", rel, err)
		case hold:
			held = append(held, filepath.Join(ws, p))
		default:
			watch = append(watch, p)
		}
	}
	slices.Sort(watch)
	watch = slices.Compact(watch)
	for _, p := range slices.Concat(held, hidden) {
		for d := filepath.Dir(p); d != ws && Within(ws, d); d = filepath.Dir(d) {
			pins = append(pins, d)
		}
	}
	slices.Sort(pins) // a parent sorts before its children, so is bound first
	pins = slices.Compact(pins)
	for _, d := range pins {
		a = append(a, "--bind", d, d)
	}
	for _, p := range held {
		a = append(a, "--ro-bind", p, p)
	}
	return a, watch, held, pins, gb, nil
}

// linkError says a protected path, or a directory on the way to it (rel,
// workspace-relative), is a symlink: the run is refused. want is what
// should be there instead. It stops in protect, which words it for the
// user.
type linkError struct{ rel, want string }

func (e linkError) Error() string { return e.rel + " is a symlink" }

// protectOne looks at protected path rel in the workspace, without
// following a link, and returns the workspace-relative path to hold
// read-only (creating it if rel names a missing directory), or else the
// one to watch. A held file, or a regular file in a held directory, with
// another name refuses the run (see soleNames); the check of a directory
// counts down w.
func protectOne(root *os.Root, rel string, w *heldWalk) (path string, hold bool, err error) {
	clean := filepath.Clean(strings.TrimSuffix(rel, "/"))
	p, err := walk(root, clean, false)
	if err != nil {
		return "", false, err
	}
	defer p.dir.Close()
	switch {
	case p.fi != nil && p.fi.Mode()&fs.ModeSymlink != 0 && p.rel == clean:
		// A mount holds what a link points to, not the link: the run
		// could replace the link itself. Refuse rather than protect
		// the wrong thing.
		return "", false, linkError{rel: p.rel, want: "file or directory"}
	case p.fi != nil && p.fi.Mode()&fs.ModeSymlink != 0:
		// Through a link, the mounts would hold what it points to, maybe
		// outside the workspace, and a run could repoint it.
		return "", false, linkError{rel: p.rel, want: "directory"}
	case p.fi != nil && p.rel != clean:
		return "", false, fmt.Errorf("%s is not a directory", p.rel)
	case p.fi != nil && p.fi.Mode().IsRegular() && links(p.fi) > 1:
		return "", false, linkedError(p.rel, links(p.fi))
	case p.fi != nil && p.fi.IsDir():
		if err := soleNames(p, w); err != nil {
			return "", false, err
		}
		return clean, true, nil
	case p.fi != nil:
		return clean, true, nil
	case p.rel != clean && (clean == ".git" || strings.HasPrefix(clean, ".git/")):
		// .git/hooks/ when there is no .git: nothing to hold until the
		// directory exists. Watch the first missing name instead: what
		// a run puts there (a repository, a .git file naming another
		// git directory, a link) is taken away when it ends.
		return p.rel, false, nil
	case p.rel != clean:
		// .github/workflows when there is no .github: watch the path
		// itself, not the directory on the way, which may hold what
		// the user keeps (.github/CODEOWNERS, made on the host during
		// the run). A link on the way is taken away too (Cleanup).
		return clean, false, nil
	case strings.HasSuffix(rel, "/"):
		if err := p.dir.Mkdir(p.name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", false, fmt.Errorf("creating it: %w", err)
		}
		if fi, err := p.dir.Lstat(p.name); err != nil || !fi.IsDir() {
			return "", false, fmt.Errorf("creating it: %s changed while toolgate created it", p.rel)
		}
		return clean, true, nil
	default:
		return clean, false, nil
	}
}

// Within reports whether absolute path p is dir or lies under it,
// lexically, after cleaning both. A relative path is within nothing.
func Within(dir, p string) bool {
	if !filepath.IsAbs(dir) || !filepath.IsAbs(p) {
		return false
	}
	dir, p = filepath.Clean(dir), filepath.Clean(p)
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// Probe runs a trivial command in a bare sandbox of bwrap once, so a
// machine where sandboxes cannot be set up (no user namespaces, an old
// kernel, a seccomp policy that forbids them) is found at start, with
// bwrap's own message. Pass its error as Options.Unavailable.
func Probe(ctx context.Context, bwrap string) error {
	s, err := New(Options{Bwrap: bwrap, Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		return err
	}
	c, err := s.Command(ctx, ReadOnly, "", []string{"/bin/sh", "-c", "exit 0"})
	if err != nil {
		return err
	}
	var out strings.Builder
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		return fmt.Errorf("%w: bubblewrap (%s) cannot set up a sandbox here: %v: %s", ErrUnavailable, bwrap, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Workspace returns the workspace directory the sandbox mounts ("" for none).
func (s *Sandbox) Workspace() string { return s.o.Workspace }

// Protected reports whether rel, a clean workspace-relative path, is or
// lies under one of the Protect paths (the paths that stay read-only in a
// writable workspace), or, when those hold .git's control files, is a
// control file of a git directory under .git/modules or .git/worktrees
// (by name: the run's mounts hold the ones that exist).
func (s *Sandbox) Protected(rel string) bool {
	rel = filepath.Clean(rel)
	for _, p := range s.o.Protect {
		p = filepath.Clean(strings.TrimSuffix(p, "/"))
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	if !s.holdsGit() ||
		!strings.HasPrefix(rel, ".git/modules/") && !strings.HasPrefix(rel, ".git/worktrees/") {
		return false
	}
	for _, c := range GitControl {
		c = strings.TrimSuffix(c, "/")
		if strings.HasSuffix(rel, "/"+c) || strings.Contains(rel, "/"+c+"/") {
			return true
		}
	}
	return false
}

// Hidden reports whether absolute path p is, or lies under, a Hide path
// or a secret of the workspace (Options.Secret) that exists: something no
// sandboxed process can see. Besides the names, it compares identities
// (device and inode, recorded at New): p, and in the workspace each
// directory above it, is hidden when it is the file or directory a Hide
// path named, under whatever name it is reached now.
func (s *Sandbox) Hidden(p string) bool {
	for _, h := range s.o.Hide {
		if Within(h, p) {
			return true
		}
	}
	if ws := s.o.Workspace; ws != "" && Within(ws, p) {
		if rel, err := filepath.Rel(ws, filepath.Clean(p)); err == nil && s.secretIn(rel) {
			return true
		}
	}
	if len(s.hiddenIDs) == 0 || !filepath.IsAbs(p) {
		return false
	}
	for d := filepath.Clean(p); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && s.HiddenFile(fi) {
			return true
		}
		if ws := s.o.Workspace; ws == "" || d == ws || !Within(ws, d) {
			return false
		}
	}
}

// HiddenFile reports whether fi (of an open file, say) is one of the Hide
// paths, by identity: the file tools check what they opened, so a path
// swapped after Hidden answered is still caught.
func (s *Sandbox) HiddenFile(fi fs.FileInfo) bool {
	id, ok := idOf(fi)
	return ok && s.hiddenIDs[id]
}

// Describe says in a few words what p allows, for agents and reviewers.
func (p Profile) Describe() string {
	if p.Unsandboxed {
		return p.Name + " (no sandbox: toolgate's own rights)"
	}
	net := "no network"
	if p.Network {
		net = "network"
	}
	ws := "workspace read-only"
	switch p.Workspace {
	case WriteAccess:
		ws = "workspace writable except protected paths"
	case NoAccess:
		ws = "no workspace"
	}
	return fmt.Sprintf("%s (%s, %s)", p.Name, ws, net)
}
