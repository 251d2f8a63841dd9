// Package pgtest gives tests their own empty PostgreSQL schema on the
// throwaway cluster that .ci/postgres.sh starts.
//
// $TOOLGATE_TEST_POSTGRES holds the cluster's DSN (a postgres:// URL).
// Without it the tests that need PostgreSQL skip, except in CI ($CI set),
// where they fail: a CI run must never pass by skipping them.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable holding the test cluster's DSN.
const EnvDSN = "TOOLGATE_TEST_POSTGRES"

// Require skips t (fails it under CI) when no test cluster is configured,
// and returns the cluster's DSN.
func Require(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run the tests with .ci/postgres.sh's cluster (see README)", EnvDSN)
		}
		t.Skipf("%s not set: no PostgreSQL to test against (eval \"$(.ci/postgres.sh start)\")", EnvDSN)
	}
	return dsn
}

// DSN creates a schema of its own for t, dropped when t ends, and returns
// a DSN whose connections use it (search_path): tests running in parallel,
// in this package or another, never see each other's tables.
func DSN(t testing.TB) string {
	t.Helper()
	base := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvDSN, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
