package sandbox

import (
	"context"
	"time"
)

// SecretPaths, ForgetWalks and SetClock let the benchmarks (package
// sandbox_test, which may import package rules for its secret class) time
// the walk alone, without and with the last walk's listings.
func (s *Sandbox) SecretPaths(ctx context.Context) (files, dirs []string, err error) {
	return s.secretPaths(ctx)
}

func (s *Sandbox) ForgetWalks() {
	s.walkMu.Lock()
	s.walked = nil
	s.walkMu.Unlock()
}

func (s *Sandbox) SetClock(now func() time.Time) { s.now = now }
