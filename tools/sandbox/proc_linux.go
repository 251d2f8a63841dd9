package sandbox

import (
	"os"
	"strconv"
	"syscall"
)

// groupLeader starts a command as the leader of its own process group, and
// kills it if toolgate dies first: bwrap's PID namespace then takes every
// process of the run with it.
func groupLeader() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills process group pgid.
func killGroup(pgid int) error {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != syscall.ESRCH {
		return err
	}
	// The group had exited (a hold ended just as the run did): its exit
	// status stands, as exec.Cmd does for os.ErrProcessDone.
	return os.ErrProcessDone
}

// OpenedPath returns the absolute path by which the kernel knows open file
// f, symlinks resolved: what it is, not the name it was opened by. A file
// removed since has " (deleted)" after its path; a path too long to be
// told is an error.
func OpenedPath(f *os.File) (string, error) {
	rc, err := f.SyscallConn() // not f.Fd(), which makes a FIFO's reads block
	if err != nil {
		return "", err
	}
	var p string
	cerr := rc.Control(func(fd uintptr) { p, err = os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd))) })
	if cerr != nil {
		return "", cerr
	}
	return p, err
}
