package main

import (
	"context"
	"fmt"
	"io"
)

func runAudit(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	return fmt.Errorf("audit: not implemented yet")
}
