package audit

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Archives of a log on PostgreSQL are the same SQLite files as a SQLite
// log's (archive.go): the plan and the copy read one repeatable-read
// snapshot of the database, the rows go into the new archive file by
// copyRows, and the prune is the same chained write, which on PostgreSQL
// runs under the chain lock (pgChainLock): every replica's appends wait
// for it, and its re-checks see the log as it is when the cut is made.
// The prune is plain DELETEs; the space they free is made reusable by a
// plain VACUUM (pgVacuum), which blocks no reader or writer.

// pgRetentionLock is the session advisory lock held by the replica
// applying the retention, so that one replica at a time archives. It is
// taken with the log's schema as its first key: logs in other schemas of
// the same database apply their own retention meanwhile. (Two replicas
// cutting at once would still be safe, the cut being under the chain
// lock; this lock only spares the second one the work.)
const pgRetentionLock int32 = 0x74677274 // "tgrt"

// pgCopyPrefix is copyPrefix for a log on PostgreSQL: it copies the
// planned prefix from tx, a snapshot of the log, into the archive DB at
// path (created, empty).
func pgCopyPrefix(ctx context.Context, tx *sql.Tx, path string, plan *archivePlan) error {
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath())
	if err != nil {
		return fmt.Errorf("audit: archive: %w", err)
	}
	defer db.Close()
	dtx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: archive: %w", err)
	}
	defer dtx.Rollback()
	err = fillArchive(ctx, dtx, "", plan, func(table, where string, args []any) (int64, error) {
		return copyRows(ctx, tx, dtx, table, "", `SELECT * FROM `+table+` WHERE `+where, args...)
	})
	if err != nil {
		return err
	}
	if err := dtx.Commit(); err != nil {
		return fmt.Errorf("audit: archive: %w", err)
	}
	return nil
}

// dbBytes is the size of the log: its DB file with the WAL, or on
// PostgreSQL its tables with their indexes and TOAST (pg_total_relation_size).
func (s *Store) dbBytes(ctx context.Context) (int64, error) {
	if s.pg == nil {
		return fileBytes(s.path), nil
	}
	ts, err := s.pgTables(ctx)
	var n int64
	for _, t := range ts {
		n += t.total
	}
	return n, err
}

// pgTable is one table of the log on PostgreSQL and its sizes.
type pgTable struct {
	name string
	// total counts its indexes and TOAST; heap is pg_table_size.
	total, heap int64
}

// pgTables lists the log's tables (those the migrations create, in the
// current schema, which may hold other applications' tables too) with
// their sizes.
func (s *Store) pgTables(ctx context.Context) ([]pgTable, error) {
	var names []string
	for _, m := range regexp.MustCompile(`CREATE TABLE (\w+)`).FindAllStringSubmatch(strings.Join(migrations, "\n"), -1) {
		names = append(names, m[1])
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT c.relname, pg_total_relation_size(c.oid), pg_table_size(c.oid)
		FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname = ANY(?)
		ORDER BY c.relname`, names)
	if err != nil {
		return nil, fmt.Errorf("audit: table sizes: %w", err)
	}
	defer rows.Close()
	var out []pgTable
	for rows.Next() {
		var t pgTable
		if err := rows.Scan(&t.name, &t.total, &t.heap); err != nil {
			return nil, fmt.Errorf("audit: table sizes: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: table sizes: %w", err)
	}
	return out, nil
}

// pgUsedBytes is usedBytes on PostgreSQL: each table's total size scaled
// by the share of its heap that live rows take. A DELETE (or the VACUUM
// after it) leaves the table's size as it was, its space free for new
// rows; counting that space as used would make every retention run see
// the log as over its size and archive it all. It reads every row
// (pg_column_size), in a snapshot that blocks no writer.
func (s *Store) pgUsedBytes(ctx context.Context) (int64, error) {
	ts, err := s.pgTables(ctx)
	if err != nil {
		return 0, err
	}
	var used float64
	for _, t := range ts {
		if t.heap == 0 {
			continue
		}
		// A row takes its tuple (header included) and a 4-byte line
		// pointer. The name comes from the catalog, not from input.
		var live int64
		q := `SELECT coalesce(sum(pg_column_size(t.*) + 4), 0) FROM "` + t.name + `" t`
		if err := s.rdb.QueryRowContext(ctx, q).Scan(&live); err != nil {
			return 0, fmt.Errorf("audit: retention: size of %s: %w", t.name, err)
		}
		used += float64(t.total) * min(1, float64(live)/float64(t.heap))
	}
	return int64(used), nil
}

// pgVacuum makes the space the prune freed reusable: a plain VACUUM
// (ANALYZE) of the pruned tables, on a connection of its own. It takes no
// lock that blocks reads or writes, so replicas go on appending; the
// tables keep their size (VACUUM FULL would shrink them, but locks them
// exclusively while it rewrites them).
func (s *Store) pgVacuum(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pg.cfg.Copy())
	if err != nil {
		return fmt.Errorf("audit: archive: vacuum: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) events, calls, review_approvals`); err != nil {
		return fmt.Errorf("audit: archive: vacuum: %w", err)
	}
	return nil
}

// retentionLock lets one replica of a log on PostgreSQL apply the
// retention at a time: it takes pgRetentionLock on a session of its own,
// or reports busy if another replica holds it. The lock only spares the
// others the work: two archives racing are still safe, since the prune
// re-checks the chain's start under the chain lock and the later one
// fails with ErrArchiveRace. On SQLite it does nothing.
func (s *Store) retentionLock(ctx context.Context) (unlock func(), busy bool, err error) {
	if s.pg == nil {
		return func() {}, false, nil
	}
	conn, err := pgx.ConnectConfig(ctx, s.pg.cfg.Copy())
	if err != nil {
		return nil, false, fmt.Errorf("audit: retention: %w", err)
	}
	// Closing the session releases the lock, whatever happened to it; the
	// explicit unlock first releases it before unlock returns (the server
	// ends a closed session's locks a moment later).
	closeConn := func() { conn.Close(context.WithoutCancel(ctx)) }
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext(current_schema()), $1)`, pgRetentionLock).Scan(&ok); err != nil {
		closeConn()
		return nil, false, fmt.Errorf("audit: retention: %w", err)
	}
	if !ok {
		closeConn()
		return nil, true, nil
	}
	return func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext(current_schema()), $1)`, pgRetentionLock)
		closeConn()
	}, false, nil
}
