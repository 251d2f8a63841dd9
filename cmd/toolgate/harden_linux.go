package main

import (
	"log/slog"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// harden makes the serving process non-dumpable. The kernel then lets no
// other process without CAP_SYS_PTRACE read its /proc/PID/environ, mem or
// maps, or ptrace-attach to it, even one running as the same user: a
// command the agent gets run as that user cannot lift toolgate's tokens
// from its environment or memory. (It also turns off core dumps, which
// would hold the same secrets.) The flag is reset on exec, so the
// processes toolgate starts are unaffected.
//
// It also marks close-on-exec every file descriptor from 3 up that
// toolgate inherited open across exec: whatever started it (an IDE, an MCP
// client) may leak some, and each would pass into every process toolgate
// starts, a sandboxed command reading a file its profile hides, or writing
// one outside a read-only profile, through it. Toolgate's own descriptors
// are close-on-exec already.
func harden(logger *slog.Logger) {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		logger.Warn("cannot make toolgate non-dumpable: processes of the same user can read its environment and memory", "err", err)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		logger.Warn("cannot list toolgate's open files: descriptors it inherited may pass into the processes it starts", "err", err)
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.CloseOnExec(fd)
			logger.Debug("inherited descriptor marked close-on-exec", "fd", fd)
		}
	}
}
