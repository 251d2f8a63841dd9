package main

import (
	"context"
	"fmt"
	"io"
)

func runReview(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	return fmt.Errorf("review: not implemented yet")
}
