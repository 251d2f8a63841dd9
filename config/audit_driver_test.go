package config

import (
	"strings"
	"testing"
	"time"
)

func TestAuditDriver(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte("audit: {driver: postgres, dsn: \"postgres://tg@db:5432/tg\", password_env: TG_PG_PASSWORD, lease_ttl: 6s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Audit; a.Driver != DriverPostgres || a.DSN != "postgres://tg@db:5432/tg" || a.PasswordEnv != "TG_PG_PASSWORD" || a.LeaseTTL != 6*time.Second {
		t.Fatalf("Audit = %+v", a)
	}
	cfg, err = Parse("t.yaml", []byte("audit: {path: /var/a.db}\n"))
	if err != nil || cfg.Audit.Driver != "" || cfg.Audit.DSN != "" {
		t.Fatalf("default driver: %+v, %v", cfg.Audit, err)
	}
	for _, tc := range []struct{ src, want string }{
		{"audit: {driver: mysql}", "audit.driver must be"},
		{"audit: {driver: postgres}", "audit.dsn must be a postgres:// URL"},
		{"audit: {driver: postgres, dsn: \"host=db\"}", "audit.dsn must be a postgres:// URL"},
		{"audit: {driver: postgres, dsn: \"postgres://db/tg\", path: a.db}", "audit.path is the SQLite file"},
		{"audit: {dsn: \"postgres://db/tg\"}", "need audit.driver postgres"},
		{"audit: {driver: postgres, dsn: \"postgres://db/tg\", password_env: \"not a name\"}", "environment variable name"},
	} {
		_, err := Parse("t.yaml", []byte(tc.src+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestAuditStoreArgs(t *testing.T) {
	for _, tc := range []struct{ yaml, want, err string }{
		{"audit: {}\n", "", ""},
		{"audit: {store_args: full}\n", StoreArgsFull, ""},
		{"audit: {store_args: hash}\n", StoreArgsHash, ""},
		{"audit: {store_args: none}\n", "", "audit.store_args must be full or hash"},
	} {
		cfg, err := Parse("t.yaml", []byte(tc.yaml))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.yaml, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case cfg.Audit.StoreArgs != tc.want:
			t.Errorf("%q: store_args %q, want %q", tc.yaml, cfg.Audit.StoreArgs, tc.want)
		}
	}
}
