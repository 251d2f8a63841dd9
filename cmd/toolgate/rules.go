package main

import (
	"context"
	"fmt"
	"io"
)

func runRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("rules: not implemented yet")
}
