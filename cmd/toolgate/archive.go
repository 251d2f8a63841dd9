package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
)

const archiveUsage = `usage: toolgate audit archive --before T --to FILE [--db PATH] [--no-vacuum] [--tmp DIR]

Moves the calls decided before T (RFC 3339 time, a date 2006-01-02, or a
duration ago such as 720h or 30d) into FILE, a compressed archive, and
prunes them from the log; the chain stays verifiable across the cut
(toolgate audit verify --archive FILE...). Pending reviews and calls still
running are never archived: the cut stops before the first of them. A
call left started by a toolgate that stopped while it ran (killed, crashed)
is first closed as interrupted, once no process can still be running it:
its process is gone (its lease ran out, or its process on this host
exited), or it is older than the longest review wait plus call timeout of
the server's config (--config; without one, only the first applies). Then
the DB file is vacuumed to give the space back (--no-vacuum skips that:
with a server writing, the vacuum holds its writes for its duration).
On PostgreSQL (--db postgres://...) the archive is the same file; the
prune runs under the chain's lock, so replicas may go on writing, and the
vacuum is a plain VACUUM: it blocks no writes and makes the space reusable
without shrinking the tables.`

// runArchive is `toolgate audit archive`.
func runArchive(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit archive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, archiveUsage)
		fs.PrintDefaults()
	}
	var (
		db, before, to, tmp, output, cfgPath string
		noVacuum                             bool
	)
	fs.StringVar(&db, "db", "", "audit DB `path` or postgres:// URL (default: the config's)")
	fs.StringVar(&cfgPath, "config", "", "the server's config `file`: its timeouts and lease_ttl say when a call left started is over (default $"+envConfig+")")
	fs.StringVar(&before, "before", "", "archive the calls decided before `T` (required)")
	fs.StringVar(&to, "to", "", "the archive `file` to write (required; never overwritten)")
	fs.StringVar(&tmp, "tmp", "", "`dir`ectory to build the uncompressed archive in (default: FILE's)")
	fs.BoolVar(&noVacuum, "no-vacuum", false, "leave the freed pages in the DB file (reused by new records)")
	fs.StringVar(&output, "output", "text", "output `format`: text or json")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: audit archive: %v", errUsage, err)
	}
	if len(pos) > 0 || before == "" || to == "" {
		fs.Usage()
		return fmt.Errorf("%w: audit archive needs --before T and --to FILE, and no arguments", errUsage)
	}
	t, err := audit.ParseWhen(before, time.Now())
	if err != nil {
		return fmt.Errorf("%w: audit archive: --before: %v", errUsage, err)
	}
	cfgFile, cfg, err := loadConfig(cfgPath, env)
	if err != nil {
		return err
	}
	st, err := openExistingDB(ctx, cmp.Or(db, configDB(cfg.Audit, env)), env, cfg.Audit.LeaseTTL)
	if err != nil {
		return err
	}
	defer st.Close()
	// A call a stopped toolgate left started would hold the cut back for
	// good: close it first, if no process can still be running it. Only
	// the server's own config says how long its calls may run.
	var horizon time.Duration
	if cfgFile != "" {
		horizon = callHorizon(cfg)
	}
	closed, err := st.CloseInterrupted(ctx, horizon)
	if err != nil {
		return err
	}
	if len(closed) > 0 {
		fmt.Fprintf(stdout, "closed %d calls left started by a stopped toolgate as interrupted\n", len(closed))
	}
	res, err := st.Archive(ctx, audit.ArchiveOptions{Before: t, To: to, TempDir: tmp, Vacuum: !noVacuum})
	if errors.Is(err, audit.ErrNothingToArchive) {
		fmt.Fprintf(stdout, "nothing to archive: no finished call decided before %s can be cut off whole\n", t.UTC().Format(time.RFC3339))
		return nil
	}
	if err != nil {
		return err
	}
	if output == "json" {
		c := &auditCmd{stdout: stdout}
		return c.writeJSON(res)
	}
	i := res.Info
	fmt.Fprintf(stdout, "archived %d calls (events %d to %d, %d events) to %s: %s, sha256 %s\n",
		i.Calls, i.Start.Seq+1, i.Head.Seq, i.Events, res.File, mib(res.Bytes), res.SHA256)
	fmt.Fprintf(stdout, "the log now starts after event %d (%s); DB %s -> %s (copy %v, prune %v, vacuum %v)\n",
		i.Head.Seq, i.Head.Hash, mib(res.DBBytes), mib(res.DBBytesAfter),
		res.Copy.Round(time.Millisecond), res.Prune.Round(time.Millisecond), res.Vacuum.Round(time.Millisecond))
	if h := res.HeldBack; h != nil {
		fmt.Fprintf(stdout, "held back: call %s (event %d) %s; it and the calls after it stay in the log\n", h.CallID, h.Seq, h.Why)
	}
	return nil
}

// openExistingDB opens the audit DB for writing (flag path, else env's),
// which must exist: a command that changes a log never creates one.
func openExistingDB(ctx context.Context, flagPath string, env environ, leaseTTL time.Duration) (*audit.Store, error) {
	path, err := dbPath(flagPath, env)
	if err != nil {
		return nil, err
	}
	if err := dbExists(path); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return audit.Open(ctx, path, audit.Options{ToolgateVersion: version, LeaseTTL: leaseTTL})
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// archiveList is a repeatable flag of archive files or directories.
type archiveList []string

func (l *archiveList) String() string { return strings.Join(*l, ",") }

func (l *archiveList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// archiveFiles expands l: a directory stands for the *.gz files in it.
func archiveFiles(l []string) ([]string, error) {
	var out []string
	for _, p := range l {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("audit: archive: %w", err)
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.gz"))
		if err != nil {
			return nil, fmt.Errorf("audit: archive: %w", err)
		}
		out = append(out, m...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// openArchives opens c's archives (decompressed into the temp dir); the
// caller closes them.
func (c *auditCmd) openArchives(ctx context.Context) ([]*audit.Archived, error) {
	files, err := archiveFiles(c.archives)
	if err != nil {
		return nil, err
	}
	var out []*audit.Archived
	for _, f := range files {
		a, err := audit.OpenArchive(ctx, f, "")
		if err != nil {
			for _, a := range out {
				a.Close()
			}
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// useCombined points c at one view of the archives and the live log (for
// replay and stats); the returned func closes it.
func (c *auditCmd) useCombined(ctx context.Context) (func(), error) {
	files, err := archiveFiles(c.archives)
	if err != nil {
		return nil, err
	}
	comb, err := audit.OpenCombined(ctx, c.st, files, "")
	if err != nil {
		return nil, err
	}
	c.st = comb.Store
	return func() { comb.Close() }, nil
}

// verifyArchives is `audit verify --archive FILE...` without checkpoints.
func (c *auditCmd) verifyArchives(ctx context.Context) error {
	archives, err := c.openArchives(ctx)
	if err != nil {
		return err
	}
	defer closeArchives(archives)
	rep, err := audit.VerifyArchives(ctx, c.st, archives)
	if err != nil {
		return err
	}
	if c.json() {
		if err := c.writeJSON(map[string]any{"ok": rep.OK(), "report": rep}); err != nil {
			return err
		}
	} else {
		c.printArchiveReport(&rep)
		if rep.OK() {
			ev, calls := rep.Events()
			fmt.Fprintf(c.stdout, "OK: %d archives and the live log verified as one chain: %d events and %d calls; chain head %s\n",
				len(rep.Archives), ev, calls, rep.Live.Head)
		}
	}
	if !rep.OK() {
		return errFailed
	}
	return nil
}

// printArchiveReport prints every problem of rep, each naming its archive.
func (c *auditCmd) printArchiveReport(rep *audit.ArchiveReport) {
	for _, p := range rep.Problems {
		fmt.Fprintf(c.stdout, "BROKEN: %s: %s\n", toolgate.Visible(cmp.Or(p.CallID, "live log")), toolgate.Visible(p.What))
	}
	for _, a := range rep.Archives {
		for _, p := range a.Report.Problems {
			fmt.Fprintf(c.stdout, "BROKEN: archive %s: %s\n", toolgate.Visible(filepath.Base(a.File)), toolgate.Visible(p.String()))
		}
	}
	for _, p := range rep.Live.Problems {
		fmt.Fprintf(c.stdout, "BROKEN: live log: %s\n", toolgate.Visible(p.String()))
	}
}

func closeArchives(as []*audit.Archived) {
	for _, a := range as {
		a.Close()
	}
}

// startRetention applies the audit log's retention once now and then at
// its interval, until the returned stop is called (which waits for a run
// in progress). A run that fails is logged and prunes nothing; the next
// one tries again.
func startRetention(ctx context.Context, st *audit.Store, a config.Audit, horizon time.Duration, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := audit.Retention{MaxAge: a.Retention.MaxAge, MaxSize: a.Retention.MaxSize, MinAge: a.Retention.MinAge,
		Dir: a.ArchiveDir, Horizon: horizon}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(a.Retention.Interval)
		defer t.Stop()
		for {
			res, err := st.ApplyRetention(ctx, r)
			switch {
			case errors.Is(err, audit.ErrNothingToArchive) || ctx.Err() != nil:
			case err != nil:
				logger.Error("audit retention: archive failed; nothing pruned", "err", err)
			default:
				logger.Info("audit retention: archived", "file", res.File, "calls", res.Info.Calls,
					"head_seq", res.Info.Head.Seq, "bytes", res.Bytes, "sha256", res.SHA256, "prune", res.Prune)
				if res.More {
					continue // a backlog: the next bounded run at once
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
