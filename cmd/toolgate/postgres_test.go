package main

import (
	"testing"

	"github.com/toolgate/toolgate/config"
)

// TestConfigDB: the audit log's location comes from the config; for
// PostgreSQL the password is added from the named environment variable
// only, and SQLite ignores it.
func TestConfigDB(t *testing.T) {
	pg := config.Audit{Driver: config.DriverPostgres, DSN: "postgres://tg@db:5432/tg?sslmode=require", PasswordEnv: "TG_PW"}
	for _, tc := range []struct {
		name string
		a    config.Audit
		env  mapEnv
		want string
	}{
		{"sqlite", config.Audit{Path: "/var/a.db"}, mapEnv{"TG_PW": "x"}, "/var/a.db"},
		{"postgres with password", pg, mapEnv{"TG_PW": "p@ss/word"}, "postgres://tg:p%40ss%2Fword@db:5432/tg?sslmode=require"},
		{"postgres, variable unset", pg, mapEnv{}, pg.DSN},
		{"postgres, no variable named", config.Audit{Driver: config.DriverPostgres, DSN: pg.DSN}, mapEnv{"TG_PW": "x"}, pg.DSN},
	} {
		if got := configDB(tc.a, tc.env); got != tc.want {
			t.Errorf("%s: configDB = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// mapEnv is an environ backed by a map.
type mapEnv map[string]string

func (m mapEnv) Getenv(key string) string { return m[key] }
