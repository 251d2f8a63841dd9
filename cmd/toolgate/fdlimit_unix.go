//go:build unix

package main

import "golang.org/x/sys/unix"

// fdLimit is the process's open file limit (soft), 0 if unknown.
func fdLimit() int {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 0
	}
	return int(r.Cur)
}
