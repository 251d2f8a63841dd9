package review

import (
	"context"
	"fmt"
	"time"

	"github.com/toolgate/toolgate"
)

// EndedStore is a Store that also tells when a review is over, not only
// decided; *audit.Store is one. With it, Await reports an approval only
// once what it became is recorded too: the grant of a held call, which a
// retry waiting on the review then uses. With a Store that is not one,
// Await takes a stored verdict as the end.
type EndedStore interface {
	Store
	// ReviewEnded reports whether call id has left pending.
	ReviewEnded(ctx context.Context, id string) (bool, error)
}

// Hold is how long Review keeps a call waiting for its verdict: Options.Hold,
// or the whole Timeout when there is no hold.
func (s *Service) Hold() time.Duration {
	if h := s.o.Hold; h > 0 && h < s.o.Timeout {
		return h
	}
	return s.o.Timeout
}

// Await waits up to maxWait for the end of review id, started by another call
// (the one a retry repeats), without asking anyone: the retry waits on the
// review instead of starting a second one. decided is true when the review
// ended, with its verdict; false when maxWait passed first, with a verdict of
// Channel ChannelPending whose Reason says where the review waits, as
// Review's does when it is held. An error means the Store failed or ctx
// ended.
//
// It reads the Store when woken (Wake) and every PollInterval, so it sees a
// verdict given in any process, and sends the agent progress meanwhile, as Review does.
func (s *Service) Await(ctx context.Context, id string, maxWait time.Duration) (v toolgate.Verdict, decided bool, err error) {
	w := s.heldWait(ctx, id)
	wake := s.register(id) // woken by a verdict or grant from any process (Wake)
	defer s.unregister(id, wake)
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	poll := time.NewTicker(s.o.PollInterval)
	defer poll.Stop()
	progress := toolgate.ProgressFrom(ctx)
	var progressC <-chan time.Time
	if progress != nil {
		t := time.NewTicker(s.o.ProgressInterval)
		defer t.Stop()
		progressC = t.C
		w.progress(progress)
	}
	for {
		v, decided, err := s.ended(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return toolgate.Verdict{}, false, context.Cause(ctx)
			}
			return toolgate.Verdict{}, false, fmt.Errorf("waiting on review %s: %w", id, err)
		}
		if decided {
			return v, true, nil
		}
		select {
		case <-wake:
		case <-poll.C:
		case <-progressC:
			w.progress(progress)
		case <-timer.C:
			return toolgate.Verdict{Channel: toolgate.ChannelPending, Reason: w.heldText(), DecidedAt: s.o.Now()}, false, nil
		case <-ctx.Done():
			return toolgate.Verdict{}, false, context.Cause(ctx)
		}
	}
}

// ended returns review id's verdict once the review is over (see
// EndedStore).
func (s *Service) ended(ctx context.Context, id string) (toolgate.Verdict, bool, error) {
	if es, ok := s.o.Store.(EndedStore); ok {
		if over, err := es.ReviewEnded(ctx, id); err != nil || !over {
			return toolgate.Verdict{}, false, err
		}
	}
	return s.o.Store.ReviewVerdict(ctx, id)
}

// progress tells the agent how the review it waits on is going.
func (w *wait) progress(send toolgate.ProgressFunc) {
	t := w.s.o.Timeout
	send((t - w.expires.Sub(w.s.o.Now())).Seconds(), t.Seconds(), w.progressText())
}

// heldWait describes pending review id as Review's wait does, for the texts
// the agent gets: where it waits and until when.
func (s *Service) heldWait(ctx context.Context, id string) *wait {
	w := &wait{s: s, c: toolgate.Call{ID: id}, expires: s.o.Now().Add(s.o.Timeout)}
	ps, err := s.o.Store.PendingReviews(ctx)
	if err != nil {
		return w
	}
	for _, p := range ps {
		if p.Call.ID == id {
			w.c, w.d = p.Call, p.Decision
			w.expires = p.RequestedAt.Add(s.o.Timeout)
			w.msgChannel, w.msgTS = p.SlackChannel, p.SlackTS
		}
	}
	return w
}
