package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit/pgtest"
)

// BenchmarkBytesPerCall writes b.N allowed, finished calls into a fresh
// log and reports its size on disk per call (DB file plus WAL, after the
// store's closing checkpoint). Run with a fixed count, e.g.
// go test -run '^$' -bench BytesPerCall -benchtime 5000x ./audit
func BenchmarkBytesPerCall(b *testing.B) {
	for _, size := range []int{5, 8 << 10} {
		b.Run(fmt.Sprintf("args=%dB", size), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "a.db")
			writeBenchCalls(b, openTest(b, path, Options{}), size)
			b.StopTimer()
			var total int64
			for _, suf := range []string{"", "-wal"} {
				if fi, err := os.Stat(path + suf); err == nil {
					total += fi.Size()
				}
			}
			b.ReportMetric(float64(total)/float64(b.N), "bytes/call")
			if b.N >= 1000 {
				logSpace(b, path)
			}
		})
	}
}

// BenchmarkBytesPerCallPostgres is BenchmarkBytesPerCall on PostgreSQL:
// the tables' pg_total_relation_size (heap, TOAST and indexes) per call.
// CI=1 .ci/postgres.sh run go test -run '^$' -bench BytesPerCallPostgres -benchtime 5000x ./audit
func BenchmarkBytesPerCallPostgres(b *testing.B) {
	for _, size := range []int{5, 8 << 10} {
		b.Run(fmt.Sprintf("args=%dB", size), func(b *testing.B) {
			dsn := pgtest.DSN(b)
			writeBenchCalls(b, openTest(b, dsn, Options{}), size)
			b.StopTimer()
			db := rawDB(b, dsn)
			rows, err := db.Query(`SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
				JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 2 DESC`)
			if err != nil {
				b.Fatal(err)
			}
			defer rows.Close()
			var total int64
			for rows.Next() {
				var name string
				var n int64
				if err := rows.Scan(&name, &n); err != nil {
					b.Fatal(err)
				}
				total += n
				if b.N >= 1000 {
					b.Logf("%-16s %10d bytes, %6.0f a call", name, n, float64(n)/float64(b.N))
				}
			}
			b.ReportMetric(float64(total)/float64(b.N), "bytes/call")
		})
	}
}

// writeBenchCalls records b.N allowed, finished calls with size bytes of
// arguments, then closes s.
func writeBenchCalls(b *testing.B, s *Store, size int) {
	ctx := context.Background()
	arg := strings.Repeat("x", size)
	b.ResetTimer()
	for i := range b.N {
		id := benchID(i)
		c := testCall(id, i)
		c.Args = map[string]any{"text": arg}
		if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
			b.Fatal(err)
		}
		if err := s.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK, ResultSize: 120, ResultHash: "ab12"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}

// logSpace logs the bytes each table and index takes (SQLite's dbstat
// table, when the driver has it).
func logSpace(b *testing.B, path string) {
	rows, err := rawDB(b, path).Query(`SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC`)
	if err != nil {
		b.Logf("dbstat: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			b.Fatal(err)
		}
		b.Logf("%-16s %10d bytes, %6.0f a call", name, n, float64(n)/float64(b.N))
	}
}
