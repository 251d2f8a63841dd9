package audit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// Defaults for Options fields left zero.
const (
	DefaultBusyTimeout  = 2 * time.Second
	DefaultWriteTimeout = 5 * time.Second
	// maxBatch bounds how many queued writes share one transaction.
	maxBatch = 1024
	// checkpointEvery is how many commits pass between checkpoint nudges;
	// the checkpointer also runs every checkpointInterval.
	checkpointEvery = 256
	// walRestartFrames is the WAL size (in frames) above which the
	// checkpointer, after a passive checkpoint, briefly holds off commits to
	// copy the last few frames, so that the next commit rewinds the WAL to
	// its start instead of growing it (under steady load a passive
	// checkpoint never catches up on its own, and appending to an ever
	// larger WAL costs a new file block per page).
	walRestartFrames = 4096
	// catchUpPasses bounds the unlocked passes before the locked one.
	catchUpPasses      = 3
	checkpointInterval = time.Second
	// projectBatch is how many unprojected events make the writer bring
	// the calls projection up to date at once; projectDelay how long a
	// smaller tail may wait. The projection is a transaction of its own,
	// so a larger batch touches each index page once for more rows.
	projectBatch = 512
	projectDelay = 100 * time.Millisecond
	// behindDelay is how long a write behind (an outcome) may wait for a
	// waited-for write (the next call's decision) to share its commit
	// before the writer commits it alone. At concurrency 1 it turns two
	// commits per call into one; it is long enough for the next call of an
	// agent over HTTP (at 2 ms, 23% of tgbench's HTTP outcomes committed
	// alone) and bounds how long a finished call's outcome is not durable.
	behindDelay = 20 * time.Millisecond
)

// Synchronous is SQLite's synchronous setting for the audit DB (in WAL mode).
type Synchronous string

const (
	// SyncNormal (the default): a committed write survives a crash or kill
	// of toolgate; the last commits before an OS crash or power loss may be
	// lost (the database stays consistent).
	SyncNormal Synchronous = "NORMAL"
	// SyncFull fsyncs the WAL on every commit: committed writes also survive
	// power loss, at several times the cost per commit (group commit
	// amortises it across concurrent calls).
	SyncFull Synchronous = "FULL"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrNotFound: no call with that id.
	ErrNotFound = errors.New("audit: no such call")
	// ErrNewerSchema: the DB was written by a newer toolgate.
	ErrNewerSchema = errors.New("audit: database schema is newer than this toolgate")
	// ErrClosed: the Store is closed.
	ErrClosed = errors.New("audit: store closed")
	// ErrTimeout: a write waited longer than Options.WriteTimeout.
	ErrTimeout = errors.New("audit: write timed out")
	// ErrState: the call is not in a state that allows the write
	// (e.g. Finish on a refused call, Begin twice with one id).
	ErrState = errors.New("audit: call is not in the right state")
	// ErrVerdictConflict: Resolve was given an approval but the verdict
	// stored first (by SubmitVerdict or an earlier Resolve) is not one. The
	// stored verdict wins and the call is recorded as refused.
	ErrVerdictConflict = errors.New("audit: a different verdict was already recorded")
	// ErrFollows: a person answered a retry that waits on an earlier
	// call's review (PendingFor); that review is the one to answer.
	ErrFollows = errors.New("audit: the call waits on another review")
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// Logger receives write failures and start-up notes; nil discards.
	Logger *slog.Logger
	// Now is the clock for decided/finished/event times; nil means time.Now.
	Now func() time.Time
	// Redact returns a copy of a call's arguments with secrets masked; it
	// runs before the arguments are stored or hashed. nil stores them as
	// they are. It must not modify its argument.
	Redact func(map[string]any) map[string]any
	// RedactText masks secrets in the texts recorded with a decision (the
	// rule's reason, which may quote the arguments, and evaluation errors)
	// and an outcome's error; nil stores them as they are.
	RedactText func(string) string
	// ToolgateVersion is stored in every row.
	ToolgateVersion string
	// ArgsHashOnly stores only the sha256 of each call's (redacted)
	// arguments, never the arguments (config audit.store_args: hash).
	// Replay then cannot evaluate those calls (ReplayReport.ArgsNotStored).
	ArgsHashOnly bool
	// BusyTimeout is how long one transaction waits for another process's
	// write lock; zero means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// WriteTimeout bounds how long Begin, Resolve, Finish and the review
	// writes wait for their commit before failing with ErrTimeout (the gate
	// then denies the call); zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Synchronous is the durability level; "" means SyncNormal.
	Synchronous Synchronous
	// OnBehind, if set, is told about each write behind (an outcome) once
	// it is durable (committed, or spooled: a wait of 0) or has failed:
	// how long it waited since Finish queued it, and its error. It runs on
	// the writer's path or Finish's: keep it cheap.
	OnBehind func(wait time.Duration, err error)
	// ReadOnly opens the DB for queries only (no migrations, no writer);
	// for CLI commands that only read. The DB must exist.
	ReadOnly bool
	// Owner names this process as the owner of the reviews it records
	// (see Lease); "" means it takes part in no lease: its reviews are
	// anyone's to expire, and ExpireOrphanReviews expires every pending one.
	Owner string
	// LeaseTTL is how long an owner's lease lasts without renewal; zero
	// means DefaultLeaseTTL. The store renews its own every LeaseTTL/3.
	LeaseTTL time.Duration

	// projectDelay and projectBatch override the defaults of the same
	// names, importDelay behindDelay, importBatch spoolImportBatch and
	// spoolRotate spoolRotate for the spool (tests).
	projectDelay time.Duration
	projectBatch int64
	importDelay  time.Duration
	importBatch  int
	spoolRotate  int64
}

// DefaultLeaseTTL is the review lease's lifetime when Options.LeaseTTL is
// zero: a process that has not renewed its lease for this long is taken to
// be dead, and its pending reviews are expired by the others.
const DefaultLeaseTTL = 30 * time.Second

// DefaultPath is where the audit DB lives under a per-user state directory
// (callers pass $XDG_STATE_HOME, or ~/.local/state when it is unset).
func DefaultPath(stateDir string) string {
	return filepath.Join(stateDir, "toolgate", "audit.db")
}

// Store is the audit log: a SQLite file, or a PostgreSQL database shared by
// replicas (postgres.go). It implements the gate's Recorder and
// review.Store, and answers queries. Safe for concurrent use; several
// processes may open the same log (the CLI answering reviews while the
// server runs).
type Store struct {
	o     Options
	path  string
	rdb   *sql.DB // readers
	wdb   *sql.DB // one connection, owned by the writer goroutine
	cdb   *sql.DB // one connection for WAL checkpoints, off the writer's path
	conn  *sql.Conn
	stmts writeStmts
	// pg is set when the log is in PostgreSQL (postgres.go); nil for SQLite.
	pg *pgState
	// spool is where hot writes go on a SQLite log open for writing
	// (spool.go); nil otherwise.
	spool *spool

	// macKey keys argsMAC; drawn at Open.
	macKey [32]byte

	// leaseStop ends the lease renewal; leaseDone is closed when it has.
	leaseStop, leaseDone chan struct{}
	// files is what the writer opened; every commit first checks the
	// paths still name them. Set by Open, read-only after.
	files liveFiles

	// wmu is held by whoever commits on conn: a caller that found the
	// connection idle (it commits its own write at once, with no hand-off
	// to another goroutine), the writer goroutine (which drains what
	// queued up meanwhile), the checkpointer's catch-up, or Close. Whoever
	// releases it re-checks the queue, so no queued write is stranded.
	wmu sync.Mutex
	// proj is the calls projection's state as this writer knows it;
	// guarded by wmu.
	proj projection
	// names caches the ids of the strings in names (names.go); guarded
	// by wmu.
	names map[string]int64
	// ctxs are the context events this writer wrote (context.go);
	// guarded by wmu.
	ctxs ctxCache
	// hasher hashes the events the writer appends; guarded by wmu.
	hasher eventHasher
	// unprojected counts the events this writer appended that the calls
	// table does not reflect yet (read without wmu by catchUp).
	unprojected atomic.Int64
	// projTimer fires projectDelay after a tail started to build up;
	// projQueued says a projection write is queued (guarded by wmu).
	projTimer  *time.Timer
	projQueued bool

	qmu    sync.Mutex // guards closed, queue, nsync and flushArmed
	closed bool
	queue  []*op
	// nsync counts the queued writes whose callers wait (not written
	// behind): a caller that finds none but its own commits at once.
	nsync int
	// flush fires behindDelay after a write behind queued with no waiting
	// write to ride with; flushArmed says it is set.
	flush      *time.Timer
	flushArmed bool
	spare      []*op         // recycled backing array for queue; guarded by wmu
	kick       chan struct{} // wakes the writer goroutine (buffered, never closed)
	stop       chan struct{} // closed by Close
	done       chan struct{} // closed when the writer goroutine exits

	// commits and committed count transactions and the writes in them
	// (their ratio is the group-commit factor).
	commits, committed atomic.Int64
	// behindFailed counts writes behind (outcomes) that failed.
	behindFailed atomic.Int64
	ckpt         chan struct{} // nudges the checkpointer
	ckptStall    atomic.Int64  // longest catch-up (commits held off), ns
	ckptDone     chan struct{}
}

// op is one queued write. The writer claims it (queued -> claimed) only once
// it holds the write lock; a waiter that gives up first marks it abandoned
// and the writer skips it, so a write reported as failed is never committed.
// A write behind (done == nil) has no waiter: its failure is logged.
//
// A hot op (Begin of an allowed or denied call, Finish) only appends to the
// event log: it shares transactions with other hot ops and never touches
// the calls table or its indexes. Every other op may read or write calls:
// it runs in a transaction without hot ops, after the projection has been
// brought up to date, and leaves it up to date.
type op struct {
	state atomic.Int32
	hot   bool
	apply func(w *wtx) error
	// result is set by apply for a write that commits but still reports an
	// error to its caller (ErrVerdictConflict).
	result error
	done   chan error
	// what names a write behind in the log if it fails; queued is when
	// it was queued.
	what   string
	queued time.Time
	// finished is set (under wmu) once done has been sent.
	finished bool
}

// finish reports the op's result to its waiter (or, for a write behind, logs
// a failure). Called with wmu held.
func (s *Store) finish(o *op, err error) {
	o.finished = true
	if o.done != nil {
		o.done <- err
		return
	}
	if err != nil {
		s.o.Logger.Error("audit: write behind failed", "write", o.what, "err", err)
	}
	if o.hot {
		s.outcomeWritten(time.Since(o.queued), err)
	} else if err != nil {
		s.behindFailed.Add(1)
	}
}

// outcomeWritten counts an outcome written behind, durable after wait or
// failed with err, and tells Options.OnBehind.
func (s *Store) outcomeWritten(wait time.Duration, err error) {
	if err != nil {
		s.behindFailed.Add(1)
	}
	if s.o.OnBehind != nil {
		s.o.OnBehind(wait, err)
	}
}

const (
	opQueued int32 = iota
	opClaimed
	opAbandoned
)

// Open opens (creating if needed) the audit DB at path and migrates it to
// SchemaVersion. The directory is created 0700 and the files 0600. A DB with
// a newer schema fails with ErrNewerSchema.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.projectDelay <= 0 {
		o.projectDelay = projectDelay
	}
	if o.projectBatch <= 0 {
		o.projectBatch = projectBatch
	}
	if o.importDelay <= 0 {
		o.importDelay = behindDelay
	}
	if o.importBatch <= 0 {
		o.importBatch = spoolImportBatch
	}
	if o.spoolRotate <= 0 {
		o.spoolRotate = spoolRotate
	}
	switch o.Synchronous {
	case "":
		o.Synchronous = SyncNormal
	case SyncNormal, SyncFull:
	default:
		return nil, fmt.Errorf("audit: unknown synchronous mode %q", o.Synchronous)
	}
	if IsPostgres(path) {
		return openPostgres(ctx, path, o)
	}
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("audit: open %s: %w", path, err)
		}
	} else if err := createFile(path); err != nil {
		return nil, err
	}
	s := &Store{o: o, path: path}
	_, _ = rand.Read(s.macKey[:]) // crypto/rand.Read never fails on Linux
	var err error
	s.rdb, err = sql.Open("sqlite3", dsn(path, o, true))
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if o.ReadOnly {
		err := s.checkVersion(ctx)
		if err == nil {
			err = catchUpFile(ctx, s.rdb, path, o)
		}
		if err != nil {
			s.rdb.Close()
			return nil, err
		}
		return s, nil
	}
	if err := s.openWriter(ctx); err != nil {
		s.rdb.Close()
		if s.wdb != nil {
			s.wdb.Close()
		}
		return nil, err
	}
	// SQLite creates -wal and -shm with the DB file's mode; enforce 0600
	// anyway in case they pre-existed with a wider one.
	for _, suf := range []string{"-wal", "-shm"} {
		if err := os.Chmod(path+suf, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			o.Logger.Warn("audit: cannot restrict file mode", "path", path+suf, "err", err)
		}
	}
	if s.files, err = rememberFiles(path); err != nil {
		// No writer goroutine runs yet: Close only closes the connections.
		return nil, errors.Join(err, s.Close())
	}
	// Every writer imports the other processes' spools; one at
	// SyncFull has none of its own: its commits fsync, which group
	// commit shares among concurrent calls and a spool could not.
	s.spool = &spool{live: map[string]string{}, off: o.Synchronous == SyncFull}
	s.spool.scanWant.Store(1)
	// The directory exists from here on, whether this process spools or
	// not, so that the sandbox hides it (a hide covers an existing path):
	// an agent must not leave a spool there for the next Open to import.
	if err := os.MkdirAll(path+SpoolSuffix, 0o700); err != nil {
		return nil, errors.Join(fmt.Errorf("audit: create spool directory: %w", err), s.Close())
	}
	if err := s.start(ctx, true); err != nil {
		return nil, err
	}
	return s, nil
}

// start starts the writer, the WAL checkpointer (SQLite only) and the
// review lease's renewal. On failure the Store is closed.
func (s *Store) start(ctx context.Context, checkpoints bool) error {
	s.kick = make(chan struct{}, 1)
	s.flush = time.NewTimer(time.Hour)
	s.flush.Stop()
	s.projTimer = time.NewTimer(time.Hour)
	s.projTimer.Stop()
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	s.ckpt = make(chan struct{}, 1)
	s.ckptDone = make(chan struct{})
	go s.writer()
	if checkpoints {
		go s.checkpointer()
	} else {
		close(s.ckptDone)
	}
	// Events committed but not projected by whoever wrote last (a crash
	// between the two, or a process still running): project them now.
	lag, err := behind(ctx, s.rdb, s.path)
	if err != nil || lag {
		if err == nil {
			err = s.write(ctx, func(*wtx) error { return nil })
		}
		if err != nil {
			return errors.Join(err, s.Close())
		}
	}
	if s.o.Owner != "" {
		if err := s.RenewLease(ctx); err != nil {
			return errors.Join(err, s.Close())
		}
		s.leaseStop, s.leaseDone = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(s.leaseDone)
			s.renewLoop(s.leaseStop)
		}()
	}
	return nil
}

func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("audit: create directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: create %s: %w", path, err)
	}
	f.Close()
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("audit: restrict mode of %s: %w", path, err)
		}
	}
	return nil
}

// dsn builds the mattn/go-sqlite3 DSN. PRAGMAs go here because they are per
// connection and database/sql pools connections.
func dsn(path string, o Options, read bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", fmt.Sprint(o.BusyTimeout.Milliseconds()))
	q.Set("_synchronous", string(o.Synchronous))
	q.Set("_txlock", "immediate")
	if read {
		// A reader's transaction only pins a snapshot (see Verify); it
		// never takes the write lock.
		q.Set("_txlock", "deferred")
		q.Set("_query_only", "true")
	}
	if o.ReadOnly {
		q.Set("mode", "ro")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

func (s *Store) openWriter(ctx context.Context) error {
	var err error
	s.wdb, err = sql.Open("sqlite3", dsn(s.path, s.o, false))
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", s.path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	s.conn, err = s.wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", s.path, err)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	// The writer never checkpoints (a checkpoint fsyncs and copies pages,
	// which would stall every queued call); the checkpointer does, on its
	// own connection. Both settings are per connection, and this one is
	// held for the Store's lifetime.
	if _, err := s.conn.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0"); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if _, err := s.conn.ExecContext(ctx, "PRAGMA journal_size_limit = 67108864"); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	s.cdb, err = sql.Open("sqlite3", dsn(s.path, s.o, false))
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", s.path, err)
	}
	s.cdb.SetMaxOpenConns(1)
	return s.stmts.prepare(ctx, s.conn, false)
}

// checkVersion fails if the DB's schema is not one this build can read.
// An older schema may be one a writer (serve starting) is migrating step by
// step, with no event to wait on from another process: it is read again
// every 25 ms for up to BusyTimeout before the error says to migrate it.
func (s *Store) checkVersion(ctx context.Context) error {
	deadline := time.Now().Add(s.o.BusyTimeout)
	for {
		var v int
		var err error
		if s.pg != nil {
			v, err = pgVersion(ctx, s.rdb)
		} else {
			err = s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
		}
		switch {
		case err != nil:
			return fmt.Errorf("audit: open %s: %w", s.path, err)
		case v > SchemaVersion:
			return fmt.Errorf("%w: %s has schema version %d, this toolgate knows up to %d; upgrade toolgate", ErrNewerSchema, s.path, v, SchemaVersion)
		case v == SchemaVersion:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("audit: %s has schema version %d; run a toolgate command that writes (e.g. serve) to migrate it to %d", s.path, v, SchemaVersion)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("audit: open %s: %w", s.path, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// migrate applies the missing migrations, each in its own transaction that
// also records it in schema_migrations and PRAGMA user_version.
func (s *Store) migrate(ctx context.Context) error {
	c := s.conn
	if _, err := c.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("audit: migrate %s: %w", s.path, err)
	}
	for {
		if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			return fmt.Errorf("audit: migrate %s: %w", s.path, err)
		}
		var v int
		err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
		if err == nil && v > SchemaVersion {
			err = fmt.Errorf("%w: %s has schema version %d, this toolgate knows up to %d; upgrade toolgate", ErrNewerSchema, s.path, v, SchemaVersion)
		}
		if err == nil && v == SchemaVersion {
			_, err = c.ExecContext(ctx, "COMMIT")
			return err
		}
		if err == nil {
			if ddl := forDialect(migrations[v], "sqlite"); strings.TrimSpace(ddl) != "" {
				_, err = c.ExecContext(ctx, ddl)
			}
		}
		if err == nil {
			_, err = c.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)`, v+1, s.o.Now().UnixNano())
		}
		if err == nil {
			_, err = c.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1))
		}
		if err == nil {
			_, err = c.ExecContext(ctx, "COMMIT")
		}
		if err != nil {
			c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			if errors.Is(err, ErrNewerSchema) {
				return err
			}
			return fmt.Errorf("audit: migrate %s to version %d: %w", s.path, v+1, err)
		}
		s.o.Logger.Info("audit: migrated schema", "path", s.path, "version", v+1)
	}
}

// Path returns the DB file's path, or for PostgreSQL its DSN without the
// password.
func (s *Store) Path() string { return s.path }

// Close waits for queued writes to commit, stops the writer and closes the
// DB. Writes after Close fail with ErrClosed.
func (s *Store) Close() error {
	if s.leaseStop != nil {
		close(s.leaseStop)
		<-s.leaseDone
		s.leaseStop = nil
		if err := s.releaseLease(context.Background()); err != nil {
			s.o.Logger.Warn("audit: releasing the review lease failed", "err", err)
		}
	}
	if s.kick != nil {
		s.qmu.Lock()
		if s.closed {
			s.qmu.Unlock()
			return nil
		}
		s.closed = true
		s.qmu.Unlock()
		// Nothing can queue any more: commit what did, and leave the
		// projection up to date for the readers that come next.
		s.wmu.Lock()
		for batch := s.take(); len(batch) > 0; batch = s.take() {
			s.commit(batch)
		}
		if s.unprojected.Load() > 0 || s.spool.hasPending() {
			s.commitRun([]*op{newProjectionOp()}, false)
		}
		if s.spool != nil {
			s.closeSpool()
		}
		s.projTimer.Stop()
		s.wmu.Unlock()
		close(s.stop)
		<-s.done
		close(s.ckpt)
		<-s.ckptDone
		s.o.Logger.Info("audit: closed", "writes", s.committed.Load(), "commits", s.commits.Load())
	}
	var errs []error
	if s.conn != nil {
		s.stmts.close()
		errs = append(errs, s.conn.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if s.cdb != nil {
		errs = append(errs, s.cdb.Close())
	}
	errs = append(errs, s.rdb.Close())
	s.files.close()
	return errors.Join(errs...)
}

// write queues apply and waits until it is committed (or failed). If no
// commit is in progress, the caller commits the queue itself (with its own
// write first in line), so a lone call pays no goroutine hand-off; otherwise
// its write joins the next batch (group commit). ctx cancellation and
// WriteTimeout only take effect while the write is still queued; once a
// committer has claimed it, the result is awaited so that success is never
// reported for a rolled-back write or vice versa.
func (s *Store) write(ctx context.Context, apply func(w *wtx) error) error {
	if s.kick == nil {
		return fmt.Errorf("audit: store opened read-only")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	return s.wait(ctx, &op{apply: apply, done: make(chan error, 1)})
}

// writeHot is write for a hot op (see op).
func (s *Store) writeHot(ctx context.Context, apply func(w *wtx) error) error {
	if s.kick == nil {
		return fmt.Errorf("audit: store opened read-only")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	return s.wait(ctx, &op{hot: true, apply: apply, done: make(chan error, 1)})
}

// wait queues o and waits for its result (see write).
func (s *Store) wait(ctx context.Context, o *op) error {
	alone, _, err := s.enqueue(o)
	if err != nil {
		return err
	}
	if !alone {
		// Others are waiting: their committer (or the writer goroutine)
		// takes this write with theirs.
		s.wake()
	} else if s.wmu.TryLock() {
		// Lead: commit until our own write is done, then hand whatever
		// queued meanwhile to the writer goroutine.
		for !o.finished {
			batch := s.take()
			if len(batch) == 0 {
				break // unreachable: o was queued and not yet finished
			}
			s.commit(batch)
		}
		s.release()
		return <-o.done
	}

	timer := time.NewTimer(s.o.WriteTimeout)
	defer timer.Stop()
	select {
	case err := <-o.done:
		return err
	case <-timer.C:
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return fmt.Errorf("%w after %v (database busy or locked)", ErrTimeout, s.o.WriteTimeout)
		}
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return fmt.Errorf("audit: write: %w", ctx.Err())
		}
	}
	return <-o.done
}

// writeBehind queues apply without waiting for its commit. It commits with
// the next waited-for write (usually the next call's decision), or on its
// own behindDelay later if none comes. Failures are logged (what names the
// write). Close commits what is still queued.
func (s *Store) writeBehind(what string, hot bool, apply func(w *wtx) error) error {
	if s.kick == nil {
		return fmt.Errorf("audit: store opened read-only")
	}
	o := &op{hot: hot, apply: apply, what: what, queued: time.Now()}
	o.state.Store(opClaimed) // nobody can abandon it
	_, arm, err := s.enqueue(o)
	if arm {
		s.flush.Reset(behindDelay)
	}
	return err
}

// enqueue queues o unless the store is closed. For a waited-for write it
// reports whether it is the only one queued (alone: writes behind queued
// before it commit with it); for a write behind, whether the flush timer
// must be armed (no waited-for write to ride with, timer not yet set).
func (s *Store) enqueue(o *op) (alone, arm bool, err error) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.closed {
		return false, false, ErrClosed
	}
	s.queue = append(s.queue, o)
	if o.done != nil {
		s.nsync++
		return s.nsync == 1, false, nil
	}
	if s.nsync == 0 && !s.flushArmed {
		s.flushArmed = true
		return false, true, nil
	}
	return false, false, nil
}

// Flush returns once every write queued before it, including outcomes
// written behind, is committed.
func (s *Store) Flush(ctx context.Context) error {
	return s.write(ctx, func(*wtx) error { return nil })
}

// take removes up to maxBatch queued writes, oldest first. Called with wmu
// held; the returned slice is valid until the next take.
func (s *Store) take() []*op {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.queue) <= maxBatch {
		batch := s.queue
		s.queue, s.spare = s.spare[:0], batch
		s.nsync = 0
		return batch
	}
	batch := append(s.spare[:0], s.queue[:maxBatch]...)
	s.queue = append(s.queue[:0], s.queue[maxBatch:]...)
	s.spare = batch
	s.nsync = 0
	for _, o := range s.queue {
		if o.done != nil {
			s.nsync++
		}
	}
	return batch
}

func (s *Store) queued() int {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return len(s.queue)
}

// release unlocks wmu and, if writes queued while it was held, wakes the
// writer goroutine to commit them.
func (s *Store) release() {
	s.wmu.Unlock()
	if s.queued() > 0 {
		s.wake()
	}
}

// wake wakes the writer goroutine.
func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default: // already woken
	}
}

// writer commits the writes that queue up while another commit is in
// progress, in batches: group commit.
func (s *Store) writer() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-s.flush.C:
			s.qmu.Lock()
			s.flushArmed = false
			s.qmu.Unlock()
		case <-s.projTimer.C:
			s.wmu.Lock()
			s.queueProjection()
			s.wmu.Unlock()
		}
		for s.wmu.TryLock() { // else the holder re-checks the queue on release
			batch := s.take()
			if len(batch) > 0 {
				s.commit(batch)
			}
			s.wmu.Unlock()
			if s.queued() == 0 {
				break
			}
		}
	}
}

// commit commits batch, acknowledging each write: each run of hot ops, and
// each run of the others, in a transaction of its own, in queue order.
// Called with wmu held.
func (s *Store) commit(batch []*op) {
	for len(batch) > 0 {
		n := 1
		for n < len(batch) && batch[n].hot == batch[0].hot {
			n++
		}
		s.commitRun(batch[:n], batch[0].hot)
		batch = batch[n:]
	}
}

// commitRun commits ops, all hot or all not (see op).
func (s *Store) commitRun(ops []*op, hot bool) {
	live := make([]*op, 0, len(ops))
	for _, o := range ops {
		if o.state.Load() != opAbandoned {
			live = append(live, o)
		}
	}
	for len(live) > 0 {
		failed, err := s.tryCommit(live, hot)
		if err != nil {
			// The transaction as a whole failed (lock, disk, I/O): every
			// write in it fails.
			s.o.Logger.Error("audit write failed", "err", err, "writes", len(live))
			if s.pg != nil {
				s.pg.stale = true // the connection may be gone: the next batch opens another
			}
			if s.spool != nil {
				s.spoolFailed(err)
			}
			for _, o := range live {
				s.finish(o, err)
			}
			return
		}
		if failed < 0 {
			for _, o := range live {
				s.finish(o, o.result)
			}
			return
		}
		// One write failed on its own (duplicate id, wrong state, ...). Its
		// error was sent; redo the others without it. Ops re-read their
		// state inside the new transaction, so re-running is safe.
		live = slices.Delete(live, failed, failed+1)
		if s.pg != nil && s.conn.PingContext(context.Background()) != nil {
			// Or it failed because the server ended the connection (as it
			// ends a transaction that idled a lease): the next try opens
			// another.
			s.pg.stale = true
		}
	}
}

// tryCommit runs every op in one transaction. It returns the index of the
// first op whose apply failed (after rolling back and reporting that op's
// error), -1 after a successful commit, or an error for the whole batch.
// Ops are claimed once the write lock is held; an op its waiter already
// abandoned is dropped (it can never commit after its caller saw a failure).
func (s *Store) tryCommit(live []*op, hot bool) (int, error) {
	ctx := context.Background()
	begin := "BEGIN IMMEDIATE"
	if s.pg != nil {
		begin = pgBeginLocked()
		if err := s.pgReconnect(ctx); err != nil {
			return 0, err
		}
	}
	rollback := func() { s.conn.ExecContext(ctx, "ROLLBACK") }
	if _, err := s.conn.ExecContext(ctx, begin); err != nil {
		rollback() // PostgreSQL: the lock may have failed inside the begun transaction
		return 0, fmt.Errorf("audit: begin transaction: %w", err)
	}
	w := &wtx{s: s, ctx: ctx, base: -1}
	if err := w.readHead(); err != nil {
		rollback()
		return 0, err
	}
	if s.spool != nil {
		if want := s.spool.scanWant.Load(); want > s.spool.scanDone {
			if err := w.importForeign(); err != nil {
				rollback()
				return 0, err
			}
			w.scanned = want
		}
		if err := w.importSpool(); err != nil {
			rollback()
			return 0, err
		}
	}
	if !hot {
		s.projQueued = false // this transaction projects
		if err := w.project(); err != nil {
			rollback()
			return 0, err
		}
	}
	n := 0
	for i, o := range live {
		if !o.state.CompareAndSwap(opQueued, opClaimed) && o.state.Load() != opClaimed {
			continue // abandoned by its waiter: never commit it
		}
		w.result = nil
		if err := o.apply(w); err != nil {
			rollback()
			s.finish(o, err)
			return i, nil
		}
		o.result = w.result
		n++
	}
	if n == 0 && w.projected == 0 {
		rollback()
		return -1, nil
	}
	if !hot {
		// The ops' own events are reflected by their own writes to calls.
		if err := w.setWatermark(w.head); err != nil {
			rollback()
			return 0, err
		}
	}
	// Checked last, so the window in which the file can vanish unnoticed
	// before the commit is as short as it gets.
	if s.pg == nil {
		if err := s.files.check(s.path); err != nil {
			rollback()
			return 0, err
		}
	}
	if _, err := s.conn.ExecContext(ctx, "COMMIT"); err != nil {
		rollback()
		return 0, fmt.Errorf("audit: commit: %w", err)
	}
	s.committedTx(w, hot)
	if s.commits.Add(1)%checkpointEvery == 0 {
		select {
		case s.ckpt <- struct{}{}:
		default:
		}
	}
	s.committed.Add(int64(n))
	return -1, nil
}

// checkpointer copies the WAL back into the DB file (PASSIVE: it never
// blocks the writer or readers) after every checkpointEvery commits, once a
// second while there are commits, and on Close. If the WAL has grown past
// walRestartFrames it then holds off commits (wmu) just long enough to copy
// the frames committed during that checkpoint, so the next commit starts
// the WAL over.
func (s *Store) checkpointer() {
	defer close(s.ckptDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	ctx := context.Background()
	last := s.commits.Load()
	for {
		select {
		case _, ok := <-s.ckpt:
			if !ok {
				// PASSIVE: another process (the server) may be writing;
				// the last connection to close checkpoints the rest.
				if _, _, err := s.checkpoint(ctx); err != nil {
					s.o.Logger.Warn("audit: final checkpoint failed", "err", err)
				}
				return
			}
		case <-t.C:
			if n := s.commits.Load(); n == last {
				continue
			}
		}
		last = s.commits.Load()
		frames, _, err := s.checkpoint(ctx)
		if err == nil && frames >= walRestartFrames {
			// Each pass copies what was committed during the previous
			// one; a few unlocked passes shrink what the locked one copies.
			for i := 0; i < catchUpPasses && err == nil; i++ {
				var n int
				n, _, err = s.checkpoint(ctx)
				if n-frames < walRestartFrames/8 {
					break
				}
				frames = n
			}
			if err == nil {
				s.wmu.Lock()
				t0 := time.Now()
				_, _, err = s.checkpoint(ctx)
				s.ckptStall.Store(max(s.ckptStall.Load(), int64(time.Since(t0))))
				s.release()
			}
		}
		if err != nil {
			s.o.Logger.Warn("audit: checkpoint failed", "err", err)
		}
	}
}

// checkpoint runs a passive checkpoint on the checkpointer's connection and
// returns the WAL's size and how much of it is now in the DB, in frames.
func (s *Store) checkpoint(ctx context.Context) (frames, copied int, err error) {
	var busy int
	err = s.cdb.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	return frames, copied, err
}
