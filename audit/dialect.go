package audit

import (
	"context"
	"database/sql/driver"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The store's SQL is written once, in the dialect SQLite and PostgreSQL
// share: ? placeholders, ON CONFLICT, COALESCE, integer nanoseconds for
// times and 0/1 integers for booleans. What differs is bridged here, so the
// query code does not branch on the driver:
//
//   - placeholders: rebind turns ? into $1, $2, ... when a statement reaches
//     PostgreSQL (the connector below does it for every query, prepared or
//     not);
//   - booleans: PostgreSQL will not store a Go bool in an integer column,
//     so the connector passes bools as 0/1, as SQLite stores them;
//   - DDL: pgDDL translates a migration's SQLite DDL (types, row ids,
//     append-only triggers, reserved column names);
//   - a migration step only one of them needs is marked pgOnly or
//     sqliteOnly (see forDialect).

// rebind returns q with each ? placeholder outside string literals, quoted
// identifiers and comments replaced by $n, numbered from 1.
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(q[i+1:], c)
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+2])
			i += j + 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+1])
			i += j
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// pgConn is what the connector needs of pgx's database/sql connection
// (*stdlib.Conn implements all of it).
type pgConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.NamedValueChecker
}

// rebindConnector wraps pgx's connector so that every connection rebinds
// placeholders and converts bools (see above).
type rebindConnector struct{ driver.Connector }

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	pc, ok := conn.(pgConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("audit: postgres driver connection %T lacks a required method", conn)
	}
	return rebindConn{pc}, nil
}

type rebindConn struct{ pgConn }

func (c rebindConn) Prepare(q string) (driver.Stmt, error) {
	return c.pgConn.PrepareContext(context.Background(), rebind(q))
}

func (c rebindConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.pgConn.PrepareContext(ctx, rebind(q))
}

func (c rebindConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.pgConn.ExecContext(ctx, rebind(q), args)
}

func (c rebindConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.pgConn.QueryContext(ctx, rebind(q), args)
}

// CheckNamedValue passes bools as the 0/1 integers the schema stores them
// as; everything else goes to pgx as it is.
func (c rebindConn) CheckNamedValue(v *driver.NamedValue) error {
	if b, ok := v.Value.(bool); ok {
		v.Value = int64(0)
		if b {
			v.Value = int64(1)
		}
		return nil
	}
	return c.pgConn.CheckNamedValue(v)
}

var (
	// pgRowID: SQLite's INTEGER PRIMARY KEY is the row id, assigned in
	// insertion order. Inserts into events and calls run under the chain
	// lock (see pgChainLock), so identity values follow commit order too.
	pgRowID = regexp.MustCompile(`(?m)^(\s*\w+\s+)INTEGER(\s+)PRIMARY KEY\b`)
	// pgTrigger: an append-only trigger (RAISE(ABORT)) becomes a trigger
	// function raising the same message.
	pgTrigger = regexp.MustCompile(`CREATE TRIGGER (\w+) BEFORE (UPDATE|DELETE) ON (\w+)\s*BEGIN SELECT RAISE\(ABORT, '([^']*)'\); END;`)
	// pgWhenTrigger: a conditional one (WHEN) becomes a trigger function
	// that raises only when the condition holds, replacing the trigger
	// and function of that name; a bare DROP TRIGGER before it goes.
	pgWhenTrigger = regexp.MustCompile(`(?s)CREATE TRIGGER (\w+) BEFORE (UPDATE|DELETE) ON (\w+)\s*WHEN (.*?)\s*BEGIN SELECT RAISE\(ABORT, '([^']*)'\); END;`)
	pgDropTrigger = regexp.MustCompile(`DROP TRIGGER (\w+);\n?`)
	pgInteger     = regexp.MustCompile(`\bINTEGER\b`)
	pgReal        = regexp.MustCompile(`\bREAL\b`)
	pgBlob        = regexp.MustCompile(`\bBLOB\b`)
	// pgText: text compares bytewise, as in SQLite (BINARY) and in Go:
	// Verify merges two ORDER BY id streams with Go's < on the ids.
	pgText = regexp.MustCompile(`\bTEXT\b`)
	// pgUser: "user" is a reserved word in PostgreSQL; quoted, it is a
	// column name in both.
	pgUser = regexp.MustCompile(`(?m)^(\s*)user(\s+TEXT)`)
)

// Marks of a migration step one dialect runs alone, inside the
// migration's one string: forDialect keeps the steps of its dialect and
// drops the other's.
const (
	pgOnlyMark     = "/*postgres only*/"
	sqliteOnlyMark = "/*sqlite only*/"
	onlyEndMark    = "/*end only*/"
)

var onlyStep = regexp.MustCompile(`(?s)/\*(postgres|sqlite) only\*/(.*?)/\*end only\*/`)

// pgOnly marks stmt as a migration step PostgreSQL runs and SQLite skips.
func pgOnly(stmt string) string { return pgOnlyMark + stmt + onlyEndMark }

// sqliteOnly marks stmt as a migration step SQLite runs and PostgreSQL skips.
func sqliteOnly(stmt string) string { return sqliteOnlyMark + stmt + onlyEndMark }

// forDialect is migration ddl for dialect ("postgres" or "sqlite"): its
// steps marked for the other dialect removed, its own unmarked.
func forDialect(ddl, dialect string) string {
	return onlyStep.ReplaceAllStringFunc(ddl, func(m string) string {
		sub := onlyStep.FindStringSubmatch(m)
		if sub[1] != dialect {
			return ""
		}
		return sub[2]
	})
}

// pgDDL translates a migration written for SQLite into PostgreSQL (its
// PostgreSQL-only steps kept as they are, its SQLite-only ones dropped): row-id
// keys become identity columns, INTEGER (SQLite's is 64 bits) BIGINT, REAL
// DOUBLE PRECISION, BLOB BYTEA, TEXT compares bytewise, and RAISE(ABORT)
// triggers become plpgsql ones.
func pgDDL(ddl string) string {
	ddl = forDialect(ddl, "postgres")
	ddl = pgTrigger.ReplaceAllString(ddl, `CREATE FUNCTION ${1}() RETURNS trigger LANGUAGE plpgsql AS $$$$
BEGIN RAISE EXCEPTION '$4'; END $$$$;
CREATE TRIGGER $1 BEFORE $2 ON $3 FOR EACH ROW EXECUTE FUNCTION ${1}();`)
	ddl = pgDropTrigger.ReplaceAllString(ddl, "")
	ddl = pgWhenTrigger.ReplaceAllString(ddl, `CREATE OR REPLACE FUNCTION ${1}() RETURNS trigger LANGUAGE plpgsql AS $$$$
BEGIN IF $4 THEN RAISE EXCEPTION '$5'; END IF; RETURN old; END $$$$;
DROP TRIGGER IF EXISTS $1 ON $3;
CREATE TRIGGER $1 BEFORE $2 ON $3 FOR EACH ROW EXECUTE FUNCTION ${1}();`)
	ddl = pgRowID.ReplaceAllString(ddl, `${1}BIGINT${2}GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY`)
	ddl = pgInteger.ReplaceAllString(ddl, "BIGINT")
	ddl = pgReal.ReplaceAllString(ddl, "DOUBLE PRECISION")
	ddl = pgBlob.ReplaceAllString(ddl, "BYTEA")
	ddl = pgText.ReplaceAllString(ddl, `TEXT COLLATE "C"`)
	return pgUser.ReplaceAllString(ddl, `$1"user"$2`)
}
