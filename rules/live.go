package rules

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/toolgate/toolgate"
)

// DefaultInterval is how often a Live rule set checks its file when
// LiveOptions.Interval is zero.
const DefaultInterval = 2 * time.Second

// LiveOptions configures a Live rule set.
type LiveOptions struct {
	// Logger receives reload and reload-failure lines; nil discards.
	Logger *slog.Logger
	// Interval is how often the file's content hash is checked; zero means
	// DefaultInterval.
	Interval time.Duration
	// Default is the set served when the path is empty (no rules file);
	// nil means the embedded default pack.
	Default *Set
	// Check, when set, vets every set before it is served (at load and on
	// each reload): an error refuses the set like a compile error would.
	Check func(*Set) error
	// OnLoad, when set, is told of every set about to be put in force (at
	// load and on each reload, once it passed Check), in order, on the
	// loading goroutine, before the set decides any call: serve records
	// each in the audit log, so every call's rule version has a load
	// recorded before it.
	OnLoad func(*Set)
	// Workspace is where calls run: every set served resolves the paths
	// calls name against it (Set.WithWorkspace).
	Workspace Workspace
}

// Live is a rule set that follows its file: Run polls the file and swaps in
// each edit that compiles, atomically, so calls in flight keep the set they
// started with. An edit that does not compile is logged with its errors and
// the previous set stays in force. Safe for concurrent use; it implements
// the gate's Decider.
type Live struct {
	path     string
	interval time.Duration
	log      *slog.Logger
	cur      atomic.Pointer[Set]
	lastSum  [sha256.Size]byte // content hash of the last file version tried (Run's goroutine only)
	check    func(*Set) error
	onLoad   func(*Set)
	ws       Workspace
}

// NewLive loads path and returns a Live set serving it. With an empty path
// it serves opts.Default (or the embedded pack) and Run only waits for ctx;
// DefaultName serves the embedded pack the same way.
// A path that cannot be read or compiled is an error: toolgate does not
// start on a broken rules file.
func NewLive(path string, opts LiveOptions) (*Live, error) {
	if path == DefaultName {
		path, opts.Default = "", Default()
	}
	l := &Live{path: path, interval: opts.Interval, log: opts.Logger, check: opts.Check, onLoad: opts.OnLoad, ws: opts.Workspace}
	if l.check == nil {
		l.check = func(*Set) error { return nil }
	}
	if l.onLoad == nil {
		l.onLoad = func(*Set) {}
	}
	if l.interval <= 0 {
		l.interval = DefaultInterval
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		s := opts.Default
		if s == nil {
			s = Default()
		}
		s = s.WithWorkspace(l.ws)
		if err := l.check(s); err != nil {
			return nil, err
		}
		l.onLoad(s)
		l.cur.Store(s)
		return l, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	s, err := parseIn(path, data, l.ws)
	if err == nil {
		err = l.check(s)
	}
	if err != nil {
		return nil, err
	}
	l.lastSum = sha256.Sum256(data)
	l.onLoad(s)
	l.cur.Store(s)
	return l, nil
}

// Current returns the set in force now.
func (l *Live) Current() *Set { return l.cur.Load() }

// Decide implements the gate's Decider with the set in force when it is called.
func (l *Live) Decide(ctx context.Context, c toolgate.Call) toolgate.Decision {
	return l.cur.Load().Evaluate(ctx, c)
}

// Run checks the file every Interval until ctx ends. Each new content is
// compiled; success swaps it in (logged at info with the new version), and
// failure is logged at error with every problem while the old set stays.
// A file that disappears is logged once and the old set stays.
func (l *Live) Run(ctx context.Context) {
	if l.path == "" {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(l.interval)
	defer t.Stop()
	readFailed := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(l.path)
		if err != nil {
			if !readFailed {
				l.log.Error("rules file unreadable; keeping the rules in force", "rules_file", l.path, "version", l.Current().Version(), "err", err)
				readFailed = true
			}
			continue
		}
		readFailed = false
		l.reload(data)
	}
}

// reload compiles data if it differs from the last version tried.
func (l *Live) reload(data []byte) {
	sum := sha256.Sum256(data)
	if sum == l.lastSum {
		return
	}
	l.lastSum = sum
	old := l.Current()
	s, err := parseIn(l.path, data, l.ws)
	if err == nil {
		err = l.check(s)
	}
	if err != nil {
		l.log.Error("rules file refused (it does not compile, or names a sandbox profile the config lacks); keeping the rules in force", "rules_file", l.path, "version", old.Version(), "err", err)
		return
	}
	l.onLoad(s)
	l.cur.Store(s)
	l.log.Info("rules reloaded", "rules_file", l.path, "version", s.Version(), "label", s.Label(), "rules", s.Len(), "previous", old.Version())
}

// parseIn is Parse, the set resolving paths against ws.
func parseIn(name string, data []byte, ws Workspace) (*Set, error) {
	s, err := Parse(name, data)
	if err != nil {
		return nil, err
	}
	return s.WithWorkspace(ws), nil
}
