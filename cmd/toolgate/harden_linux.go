package main

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

// harden makes the serving process non-dumpable. The kernel then lets no
// other process without CAP_SYS_PTRACE read its /proc/PID/environ, mem or
// maps, or ptrace-attach to it, even one running as the same user: a
// command the agent gets run as that user cannot lift toolgate's tokens
// from its environment or memory. (It also turns off core dumps, which
// would hold the same secrets.) The flag is reset on exec, so the
// processes toolgate starts are unaffected.
func harden(logger *slog.Logger) {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		logger.Warn("cannot make toolgate non-dumpable: processes of the same user can read its environment and memory", "err", err)
	}
}
