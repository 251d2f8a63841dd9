package audit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL is the audit log shared by several toolgate replicas. The
// schema, the SQL and the write path are SQLite's (see dialect.go); what
// differs is how the one hash chain stays one when several processes on
// several hosts append to it, and how a verdict reaches the replica whose
// call waits for it.
//
// Chain: every write transaction first takes a transaction-scoped advisory
// lock (pgChainLock), then reads the chain head and appends after it. The
// lock is released at commit, after which the next holder's head read sees
// the commit. Each replica still batches its own writes into one
// transaction (group commit), so the lock is taken once per batch.
//
// Verdicts: recording one (wtx.setVerdict) sends NOTIFY on pgVerdictChannel
// in the same transaction (delivered only if it commits); Listen hands each
// to the review service, which wakes the waiting review at once instead of
// at its next poll. Polling stays as the backstop for notifications missed
// while the listening connection was down.

// pgChainLock is the advisory lock key serializing chain appends: the
// first 8 bytes of "toolgate" read as an integer, so it does not collide
// with another application's small integers in the same database.
const pgChainLock = 0x746f6f6c67617465

// pgVerdictChannel is the NOTIFY channel of verdicts; the payload is the
// call id.
const pgVerdictChannel = "toolgate_verdict"

// pgMigrateLock is the session advisory lock held while one process
// migrates, so that replicas starting together migrate once.
const pgMigrateLock = pgChainLock + 1

// IsPostgres reports whether location (an audit DB path or DSN) names a
// PostgreSQL database (a postgres:// or postgresql:// URL) rather than a
// SQLite file.
func IsPostgres(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

// pgState is what a Store on PostgreSQL has beyond a SQLite one.
type pgState struct {
	// cfg is the parsed DSN, for Listen's own connection.
	cfg *pgx.ConnConfig
	// stale is set when a batch failed as a whole (the server restarted,
	// failed over, or the network dropped): the writer's connection is
	// replaced before the next batch. Guarded by the Store's wmu.
	stale bool
}

// redactDSN returns dsn without its password, for logs and errors.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable DSN)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// openPostgres is Open for a PostgreSQL DSN; o has its defaults set.
func openPostgres(ctx context.Context, dsn string, o Options) (*Store, error) {
	name := redactDSN(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included.
		return nil, fmt.Errorf("audit: open %s: invalid PostgreSQL DSN", name)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	s := &Store{o: o, path: name, pg: &pgState{cfg: cfg}}
	_, _ = rand.Read(s.macKey[:])

	// Readers: a transaction (Verify) reads one snapshot, as SQLite's
	// deferred transactions do, and nothing a reader runs can write.
	rcfg := cfg.Copy()
	rcfg.RuntimeParams["default_transaction_isolation"] = "repeatable read"
	rcfg.RuntimeParams["default_transaction_read_only"] = "on"
	s.rdb = sql.OpenDB(rebindConnector{stdlib.GetConnector(*rcfg)})
	if err := s.rdb.PingContext(ctx); err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("audit: open %s: %w", name, err)
	}
	if o.ReadOnly {
		if err := s.checkVersion(ctx); err != nil {
			s.rdb.Close()
			return nil, err
		}
		return s, nil
	}
	// A replica stalled inside a write transaction (stopped, frozen, cut
	// off) holds the chain lock, and with it every replica's writes, until
	// its transaction ends: the server ends it once it has idled a lease,
	// after which the others take this replica for dead anyway.
	// Set after connecting, not as a startup parameter, which poolers
	// such as PgBouncer refuse.
	idle := "SET idle_in_transaction_session_timeout = " + strconv.FormatInt(o.LeaseTTL.Milliseconds(), 10)
	s.wdb = sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg.Copy(), stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, idle)
		return err
	}))})
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	fail := func(err error) (*Store, error) {
		if s.conn != nil {
			s.conn.Close()
		}
		s.wdb.Close()
		s.rdb.Close()
		return nil, err
	}
	if s.conn, err = s.wdb.Conn(ctx); err != nil {
		return fail(fmt.Errorf("audit: open %s: %w", name, err))
	}
	if err := s.pgMigrate(ctx); err != nil {
		return fail(err)
	}
	if err := s.stmts.prepare(ctx, s.conn, true); err != nil {
		return fail(err)
	}
	if err := s.start(ctx, false); err != nil {
		return nil, err
	}
	return s, nil
}

// pgVersion returns the highest migration applied (0 on an empty
// database).
func pgVersion(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}) (int, error) {
	var exists bool
	if err := q.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// pgMigrate applies the missing migrations (translated by pgDDL), each in
// its own transaction recorded in schema_migrations, under a session lock
// so that replicas starting together do not race.
func (s *Store) pgMigrate(ctx context.Context) (err error) {
	c := s.conn
	if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock(?)`, int64(pgMigrateLock)); err != nil {
		return fmt.Errorf("audit: migrate %s: %w", s.path, err)
	}
	defer func() {
		if _, uerr := c.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?)`, int64(pgMigrateLock)); uerr != nil && err == nil {
			err = fmt.Errorf("audit: migrate %s: %w", s.path, uerr)
		}
	}()
	if _, err := c.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("audit: migrate %s: %w", s.path, err)
	}
	for {
		v, err := pgVersion(ctx, c)
		if err != nil {
			return fmt.Errorf("audit: migrate %s: %w", s.path, err)
		}
		if v > SchemaVersion {
			return fmt.Errorf("%w: %s has schema version %d, this toolgate knows up to %d; upgrade toolgate", ErrNewerSchema, s.path, v, SchemaVersion)
		}
		if v == SchemaVersion {
			return nil
		}
		tx, err := c.BeginTx(ctx, nil)
		if err == nil {
			_, err = tx.ExecContext(ctx, pgDDL(migrations[v]))
			if err == nil {
				_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)`, v+1, s.o.Now().UnixNano())
			}
			if err == nil {
				err = tx.Commit()
			} else {
				tx.Rollback()
			}
		}
		if err != nil {
			return fmt.Errorf("audit: migrate %s to version %d: %w", s.path, v+1, err)
		}
		s.o.Logger.Info("audit: migrated schema", "db", s.path, "version", v+1)
	}
}

// pgReconnect replaces the writer's connection, and its prepared
// statements, if the last batch failed as a whole: database/sql never
// replaces a pinned connection by itself, so without this a PostgreSQL
// restart would fail every later write. Called with wmu held.
func (s *Store) pgReconnect(ctx context.Context) error {
	if !s.pg.stale {
		return nil
	}
	s.stmts.close()
	s.stmts = writeStmts{}
	// A dead connection is discarded by the pool, not reused.
	_ = s.conn.Close()
	c, err := s.wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("audit: reconnect to %s: %w", s.path, err)
	}
	s.conn = c
	if err := s.stmts.prepare(ctx, c, true); err != nil {
		return fmt.Errorf("audit: reconnect to %s: %w", s.path, err)
	}
	s.pg.stale = false
	s.o.Logger.Info("audit: reconnected to the database", "db", s.path)
	return nil
}

// pgBeginLocked begins the writer's transaction and takes the chain lock
// for it in one round trip: without arguments, pgx sends it as one simple
// query, which may hold several statements.
func pgBeginLocked() string {
	return "BEGIN; SELECT pg_advisory_xact_lock(" + strconv.FormatInt(pgChainLock, 10) + ")"
}

// sameSnapshot begins a read transaction on another connection of db that
// sees exactly what tx (a repeatable-read transaction) sees.
func (p *pgState) sameSnapshot(ctx context.Context, db *sql.DB, tx *sql.Tx) (*sql.Tx, error) {
	var snap string
	if err := tx.QueryRowContext(ctx, `SELECT pg_export_snapshot()`).Scan(&snap); err != nil {
		return nil, fmt.Errorf("audit: export snapshot: %w", err)
	}
	if strings.Trim(snap, "0123456789ABCDEF-") != "" {
		return nil, fmt.Errorf("audit: unexpected snapshot id %q", snap)
	}
	tx2, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("audit: begin: %w", err)
	}
	// SET TRANSACTION takes no parameters; snap was checked above.
	if _, err := tx2.ExecContext(ctx, "SET TRANSACTION SNAPSHOT '"+snap+"'"); err != nil {
		tx2.Rollback()
		return nil, fmt.Errorf("audit: import snapshot: %w", err)
	}
	return tx2, nil
}

// notify announces, at commit, that call id's verdict was recorded. A
// no-op on SQLite, whose processes poll.
func (w *wtx) notify(id string) error {
	if w.s.pg == nil {
		return nil
	}
	if _, err := w.s.conn.ExecContext(w.ctx, `SELECT pg_notify(?, ?)`, pgVerdictChannel, id); err != nil {
		return fmt.Errorf("audit: notify verdict of %s: %w", id, err)
	}
	return nil
}

// Listen calls fn with the call id of every verdict recorded by any
// process sharing the database (its own included), until ctx ends. It
// returns nil at once on SQLite, where waiting reviews poll. A dropped
// connection is re-established; verdicts recorded meanwhile are found by
// the review service's polling.
func (s *Store) Listen(ctx context.Context, fn func(id string)) error {
	if s.pg == nil {
		return nil
	}
	backoff := 100 * time.Millisecond
	for {
		err := s.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			return nil
		}
		s.o.Logger.Warn("audit: verdict notifications interrupted; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, fn func(id string)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pg.cfg.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgVerdictChannel); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}
