package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
)

// horizonMargin is added to a call's longest run (callHorizon): the write
// of its outcome behind the call (write and busy timeouts) and the skew of
// the replicas' clocks fit in it.
const horizonMargin = time.Minute

// recoverEvery is how often serve closes the calls that stopped processes
// left started (each run reads the started rows by their partial index).
const recoverEvery = time.Minute

// callHorizon is the longest a call may take under cfg from its decision
// to its outcome: the review's wait, the longest call timeout, a margin.
// A call started longer ago is over (audit.Store.CloseInterrupted).
func callHorizon(cfg *config.Config) time.Duration {
	longest := cfg.Workspace.CommandTimeout
	for _, s := range cfg.Servers {
		longest = max(longest, s.Timeout)
	}
	return cfg.Review.Timeout + longest + horizonMargin
}

// closeInterrupted closes, at once and then every recoverEvery until ctx
// ends, the calls left started by a toolgate that stopped while they ran.
// A failed run is logged; the next one tries again.
func closeInterrupted(ctx context.Context, st *audit.Store, horizon time.Duration, logger *slog.Logger) {
	t := time.NewTicker(recoverEvery)
	defer t.Stop()
	for {
		// The store logs each call it closes.
		if _, err := st.CloseInterrupted(ctx, horizon); err != nil && ctx.Err() == nil {
			logger.Warn("closing the calls a stopped toolgate left started failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
