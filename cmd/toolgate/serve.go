package main

import (
	"context"
	"fmt"
	"io"
)

func runServe(ctx context.Context, args []string, env environ, stdin io.Reader, stdout, stderr io.Writer) error {
	return fmt.Errorf("serve: not implemented yet")
}
