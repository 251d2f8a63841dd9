package main

import "testing"

func TestDefaultMaxConns(t *testing.T) {
	for _, tc := range []struct{ fds, want int }{
		{0, maxConnsCeiling},       // unknown limit
		{1024, 768},                // a quarter left to the audit log, upstreams and commands
		{20000, maxConnsCeiling},   // the ceiling bounds memory
		{1, 1},                     // never 0: the server must accept something
		{1 << 20, maxConnsCeiling}, // systemd's usual hard limit
	} {
		if got := defaultMaxConns(tc.fds); got != tc.want {
			t.Errorf("defaultMaxConns(%d) = %d, want %d", tc.fds, got, tc.want)
		}
	}
}
