package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// relayFlag, as tgbench's first argument, makes it a byte relay instead:
//
//	tgbench -relay FROM=TO -- COMMAND [ARG...]
//
// starts COMMAND and copies JSON-RPC lines between it and its own stdio,
// only renaming the first "FROM" string of each request to "TO" (the
// proxied tool name to the upstream's). No parsing, rules or audit: what
// it adds to a call is the floor of any stdio proxy on this machine (one
// more process, two more pipes, their wake-ups), which tgbench reports next
// to toolgate's figures.
const relayFlag = "-relay"

// relayMain runs the relay on os.Stdin and os.Stdout.
func relayMain(args []string) error {
	if len(args) < 3 || args[1] != "--" {
		return errors.New("usage: tgbench -relay FROM=TO -- COMMAND [ARG...]")
	}
	from, to, ok := strings.Cut(args[0], "=")
	if !ok {
		return fmt.Errorf("-relay %q: want FROM=TO", args[0])
	}
	return relay(os.Stdin, os.Stdout, []byte(fmt.Sprintf("%q", from)), []byte(fmt.Sprintf("%q", to)), args[2], args[3:]...)
}

func relay(in io.Reader, out io.Writer, from, to []byte, command string, args ...string) error {
	cmd := exec.Command(command, args...)
	cmd.Stderr = os.Stderr
	up, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	down, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, down)
		copied <- err
	}()
	r := bufio.NewReaderSize(in, 1<<20)
	var rerr error
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if _, werr := up.Write(bytes.Replace(line, from, to, 1)); werr != nil {
				rerr = werr
				break
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = err
			}
			break
		}
	}
	up.Close()
	cerr := <-copied // the upstream exits on end of input, closing its output
	return errors.Join(rerr, cerr, cmd.Wait())
}
