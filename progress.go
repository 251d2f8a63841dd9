package toolgate

import "context"

// ProgressFunc reports progress on the call in flight to the agent. total is
// 0 when unknown. It must be safe to call from any goroutine.
type ProgressFunc func(progress, total float64, message string)

type progressKey struct{}

// WithProgress returns a context carrying fn, set by the agent-facing server
// when the agent sent a progress token.
func WithProgress(ctx context.Context, fn ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ProgressFrom returns the context's ProgressFunc, or nil when the agent asked
// for no progress.
func ProgressFrom(ctx context.Context) ProgressFunc {
	fn, _ := ctx.Value(progressKey{}).(ProgressFunc)
	return fn
}
