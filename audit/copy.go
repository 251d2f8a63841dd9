package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNotEmpty: CopyFrom's destination already holds a log.
var ErrNotEmpty = errors.New("audit: the destination log is not empty")

// CopyReport says what CopyFrom copied and what the copy verified to.
type CopyReport struct {
	// Rows counts the rows copied per table.
	Rows map[string]int64 `json:"rows"`
	// Source and Copy are Verify's reports of the two logs; a good copy
	// has no problems and the same Head and Events.
	Source VerifyReport `json:"source"`
	Copy   VerifyReport `json:"copy"`
}

// OK reports whether both logs verify and the copy ends at the source's
// chain head.
func (r *CopyReport) OK() bool {
	return r.Source.OK() && r.Copy.OK() && r.Copy.Head == r.Source.Head && r.Copy.Events == r.Source.Events
}

// copySkip are the tables CopyFrom leaves: the schema's own bookkeeping,
// and the review leases of the source's processes (its reviews are
// anyone's to expire in the copy).
// The projection's watermark is set, not copied: the copy's calls rows
// reflect the source's events up to the source's watermark.
var copySkip = map[string]bool{"schema_migrations": true, "review_owners": true, "sqlite_sequence": true, "projection": true}

// CopyFrom copies every row of src, a SQLite log, into s, an empty
// PostgreSQL log at the same schema version (`toolgate audit migrate`),
// keeping sequence numbers and hashes as they are, in one transaction
// under the chain lock: the copy appears whole or not at all. It then
// verifies both; the copy is good when the report's OK holds.
func (s *Store) CopyFrom(ctx context.Context, src *Store) (CopyReport, error) {
	rep := CopyReport{Rows: map[string]int64{}}
	if src.pg != nil || s.pg == nil {
		return rep, errors.New("audit: copy goes from a SQLite log to a PostgreSQL one")
	}
	var tables []string
	rows, err := src.rdb.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		return rep, fmt.Errorf("audit: copy: list tables: %w", err)
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return rep, fmt.Errorf("audit: copy: list tables: %w", err)
		}
		if !copySkip[t] {
			tables = append(tables, t)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("audit: copy: list tables: %w", err)
	}
	if err := src.catchUp(ctx); err != nil {
		return rep, fmt.Errorf("audit: copy: %w", err)
	}
	// One read transaction on the source: the copy is one snapshot of it.
	stx, err := src.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return rep, fmt.Errorf("audit: copy: %w", err)
	}
	defer stx.Rollback()
	mark, err := watermark(ctx, stx)
	if err != nil {
		return rep, fmt.Errorf("audit: copy: %w", err)
	}
	err = s.write(ctx, func(w *wtx) error {
		if len(w.prev) > 0 {
			return fmt.Errorf("%w (its chain has events)", ErrNotEmpty)
		}
		for _, t := range tables {
			n, err := w.copyTable(stx, t)
			if err != nil {
				return fmt.Errorf("audit: copy %s: %w", t, err)
			}
			rep.Rows[t] = n
		}
		if err := w.resetIdentities(); err != nil {
			return err
		}
		if _, err := w.s.conn.ExecContext(w.ctx, `UPDATE projection SET seq = ? WHERE name = 'calls'`, mark); err != nil {
			return fmt.Errorf("audit: copy: set projection watermark: %w", err)
		}
		// Later writes in this batch chain after the copied head.
		return w.readHead()
	})
	if err != nil {
		return rep, err
	}
	if rep.Source, err = src.Verify(ctx); err != nil {
		return rep, err
	}
	if rep.Copy, err = s.Verify(ctx); err != nil {
		return rep, err
	}
	return rep, nil
}

// copyTable copies table t from the source transaction, in rowid order,
// and returns how many rows it copied. The destination table must be
// empty.
func (w *wtx) copyTable(stx *sql.Tx, t string) (int64, error) {
	var have int64
	if err := w.s.conn.QueryRowContext(w.ctx, `SELECT count(*) FROM `+t).Scan(&have); err != nil {
		return 0, err
	}
	if have > 0 {
		return 0, fmt.Errorf("%w (table %s has %d rows)", ErrNotEmpty, t, have)
	}
	return copyRows(w.ctx, stx, w.s.conn, t, "", `SELECT * FROM `+t+` ORDER BY rowid`)
}

// preparer is a connection or transaction statements are prepared on.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// copyRows inserts the rows query returns from src into table t of dst,
// every column under the name the query gives it (suffix ends each
// INSERT: a conflict clause), and returns how many it inserted. It copies either way between SQLite and PostgreSQL: both
// schemas come from the same migrations, and the values (integers, text,
// bytes, NULL) are stored as read.
func copyRows(ctx context.Context, src querier, dst preparer, t, suffix, query string, args ...any) (int64, error) {
	rows, err := src.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = `"` + c + `"`
	}
	ins, err := dst.PrepareContext(ctx, `INSERT INTO `+t+` (`+strings.Join(quoted, ", ")+`) VALUES (?`+strings.Repeat(", ?", len(cols)-1)+`)`+suffix)
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	// events.hash is BYTEA on PostgreSQL: a hash stored as hex text
	// (format 1) goes there as its raw bytes.
	hashCol := -1
	if t == "events" {
		hashCol = slices.Index(cols, "hash")
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		if hashCol >= 0 {
			vals[hashCol] = rawHashValue(vals[hashCol])
		}
		if _, err := ins.ExecContext(ctx, vals...); err != nil {
			return n, fmt.Errorf("row %d: %w", n+1, err)
		}
		n++
	}
	return n, rows.Err()
}

// resetIdentities moves each identity column's next value past the copied
// rows (they were inserted with their own values).
func (w *wtx) resetIdentities() error {
	rows, err := w.s.conn.QueryContext(w.ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE is_identity = 'YES' AND table_schema = current_schema()`)
	if err != nil {
		return fmt.Errorf("audit: copy: identity columns: %w", err)
	}
	var cols [][2]string
	for rows.Next() {
		var c [2]string
		if err := rows.Scan(&c[0], &c[1]); err != nil {
			rows.Close()
			return fmt.Errorf("audit: copy: identity columns: %w", err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: copy: identity columns: %w", err)
	}
	for _, c := range cols {
		// Names come from the catalog, not from input.
		q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', '%s'), COALESCE((SELECT MAX(%s) FROM %s), 0) + 1, false)`, c[0], c[1], c[1], c[0])
		if _, err := w.s.conn.ExecContext(w.ctx, q); err != nil {
			return fmt.Errorf("audit: copy: reset %s.%s: %w", c[0], c[1], err)
		}
	}
	return nil
}

// rawHashValue is a scanned events.hash value as raw bytes.
func rawHashValue(v any) any {
	switch h := v.(type) {
	case string:
		return hashRaw(h)
	case []byte:
		return hashRaw(string(h))
	}
	return v
}
