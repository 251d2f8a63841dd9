package review

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/slack-go/slack"
)

// Backoff between attempts of a Web API call that failed with a 5xx or a
// network error: 0.5 s, 1 s, 2 s, ... up to retryMaxWait, each ±20%.
const (
	defaultRetryFirstWait = 500 * time.Millisecond
	retryMaxWait          = 8 * time.Second
)

// call runs do, one Slack Web API call named method, until it succeeds,
// fails in a way no retry fixes, ctx ends, or the budget is spent: a 429 is
// tried again after its Retry-After; a 5xx, a network error or Slack's
// service_unavailable after an exponential backoff. The budget is
// APITimeout, or left when that is shorter and positive (a review's time
// left). Every attempt runs under the budget but not under ctx's
// cancellation, which stops the retries only: an attempt that reached
// Slack has its answer read. A retry whose wait would outlast the budget
// is not made; the last error is returned at once, so that the review can
// ask another channel.
//
// slack-go's own retries (slack.OptionRetryConfig) are left off: they sleep
// a whole Retry-After even past the caller's deadline, and tell network
// errors apart by their text.
func (sc *slackChannel) call(ctx context.Context, method string, left time.Duration, do func(context.Context) error) error {
	budget := sc.o.APITimeout
	if left > 0 && left < budget {
		budget = left
	}
	deadline := time.Now().Add(budget)
	attemptCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	backoff := sc.retryFirstWait
	for attempt := 1; ; attempt++ {
		err := do(attemptCtx)
		if err == nil {
			return nil
		}
		wait, ok := retryWait(err, &backoff)
		switch {
		case !ok:
			return err
		case ctx.Err() != nil:
			return fmt.Errorf("%w (not retried: %w)", err, context.Cause(ctx))
		case time.Until(deadline) < wait:
			return fmt.Errorf("%w (gave up after %d attempts: the next would come after the %s budget)", err, attempt, budget)
		}
		sc.log().Warn("slack API call failed; retrying", "method", method, "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (not retried: %w)", err, context.Cause(ctx))
		}
	}
}

// retryWait says whether err is worth another try, and after how long: a
// rate limit's Retry-After (at least a second, plus up to 10% so a burst of
// reviews does not come back at once), or the next step of *backoff.
func retryWait(err error, backoff *time.Duration) (time.Duration, bool) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0, false
	}
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
		d := max(rl.RetryAfter, time.Second)
		return d + rand.N(d/10+1), true // #nosec G404 -- jitter
	}
	retry := false
	if sce, ok := errors.AsType[slack.StatusCodeError](err); ok {
		retry = sce.Code >= http.StatusInternalServerError || sce.Code == http.StatusTooManyRequests
	} else if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		retry = se.Err == "service_unavailable" || se.Err == "ratelimited"
	} else if _, ok := errors.AsType[*url.Error](err); ok {
		retry = true // the request did not get an answer
	} else if _, ok := errors.AsType[net.Error](err); ok {
		retry = true
	}
	if !retry {
		return 0, false
	}
	d := *backoff
	*backoff = min(2*d, retryMaxWait)
	return d*4/5 + rand.N(d*2/5+1), true // #nosec G404 -- jitter
}
