// Package sandboxtest helps tests watch sandboxed commands from the host:
// their processes live in a PID namespace of their own, so they are found
// by command line, a service on the host's loopback shows whether a
// sandbox reaches the host's network, and a tree's listing shows whether
// anything in it changed.
package sandboxtest

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Processes returns the host pids of the live processes whose command line
// (NUL-separated, as in /proc/PID/cmdline) is exactly cmdline.
func Processes(cmdline string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == cmdline {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Tree lists every path under dir, links not followed, with its type and,
// for a regular file, its content: two listings differ when anything in the
// tree was added, removed, replaced or rewritten.
func Tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		s := p + " " + d.Type().String()
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += " " + string(b)
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Sleep is the command line of `sleep secs`: tests give each sleeper an
// unusual duration so that Processes finds only theirs.
func Sleep(secs int) string { return "sleep\x00" + strconv.Itoa(secs) + "\x00" }

// HostService listens on the host's loopback and answers every connection
// with banner; it returns the port. It stops when the test ends.
func HostService(t testing.TB, banner string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(banner + "\n"))
			_ = c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
