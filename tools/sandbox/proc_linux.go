package sandbox

import "syscall"

// groupLeader starts a command as the leader of its own process group, and
// kills it if toolgate dies first: bwrap's PID namespace then takes every
// process of the run with it.
func groupLeader() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills process group pgid.
func killGroup(pgid int) error { return syscall.Kill(-pgid, syscall.SIGKILL) }
