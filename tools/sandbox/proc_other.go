//go:build !linux

package sandbox

import (
	"errors"
	"os"
	"syscall"
)

// bubblewrap is Linux only: elsewhere only the None profile runs, as a
// plain process (the caller configured it explicitly).
func groupLeader() *syscall.SysProcAttr { return nil }

func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// OpenedPath is not known here: it returns errors.ErrUnsupported.
func OpenedPath(f *os.File) (string, error) { return "", errors.ErrUnsupported }
