package sandbox

import "context"

// SecretPaths lets the benchmarks (package sandbox_test, which may import
// package rules for its secret class) time the walk alone.
func (s *Sandbox) SecretPaths(ctx context.Context) (files, dirs []string, err error) {
	return s.secretPaths(ctx)
}
