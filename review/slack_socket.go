package review

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"github.com/toolgate/toolgate"
)

// Socket Mode reconnection.
const (
	// reconnectMaxWait caps the wait between two connection attempts.
	// slack-go's own backoff grows to 5 minutes; past this cap toolgate
	// abandons it and starts over, so a Slack outage ends for toolgate
	// within about this long of its end.
	reconnectMaxWait = 30 * time.Second
	// reconnectFirstWait is the first wait after slack-go's loop stops.
	reconnectFirstWait = time.Second
	// defaultReconnectGrace is how long a new review waits for a lost
	// connection to come back before it skips Slack: Slack asks for a new
	// connection every few hours, and the reconnection takes a moment.
	defaultReconnectGrace = 2 * time.Second
)

// errSlackDown is wrapped by the error a review gets when it skips Slack
// because clicks could not reach toolgate.
var errSlackDown = errors.New("Slack is unreachable")

// socketHealth is what toolgate knows of its Socket Mode connection. Clicks
// only reach toolgate while it is up; a review started while it is down
// goes to the other channels.
type socketHealth struct {
	mu        sync.Mutex
	connected bool
	gen       int           // connections made so far
	downSince time.Time     // zero unless known to be down
	why       error         // why it is down
	back      chan struct{} // closed when the connection is up again; nil while up
}

// up records a new connection; downSince is when the previous one was lost
// (zero if it was not known to be).
func (h *socketHealth) up() (downSince time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	downSince = h.downSince
	h.connected = true
	h.gen++
	h.downSince, h.why = time.Time{}, nil
	if h.back != nil {
		close(h.back)
		h.back = nil
	}
	return downSince
}

// lost records that an open connection is gone; it reports false if none
// was open.
func (h *socketHealth) lost(why error) bool {
	h.mu.Lock()
	was := h.connected
	h.mu.Unlock()
	return was && h.down(why)
}

// down records that the connection is lost (or could not be made) because
// of why; it reports whether it was up or unknown until now.
func (h *socketHealth) down(why error) (fresh bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.connected = false
	if why != nil {
		h.why = why
	}
	if !h.downSince.IsZero() {
		return false
	}
	h.downSince = time.Now()
	h.back = make(chan struct{})
	return true
}

func (h *socketHealth) generation() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

// wait returns nil if the connection is up or not known to be down. A
// connection lost less than grace ago is waited for until then (or until
// ctx ends); otherwise the error says since when it is down and why.
func (h *socketHealth) wait(ctx context.Context, grace time.Duration) error {
	h.mu.Lock()
	since, back := h.downSince, h.back
	h.mu.Unlock()
	if since.IsZero() {
		return nil
	}
	if left := time.Until(since.Add(grace)); left > 0 {
		t := time.NewTimer(left)
		defer t.Stop()
		select {
		case <-back:
			return nil
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.downSince.IsZero() {
		return nil
	}
	err := fmt.Errorf("%w: the Socket Mode connection that delivers clicks has been down since %s",
		errSlackDown, h.downSince.UTC().Format(time.RFC3339))
	if h.why != nil {
		err = fmt.Errorf("%w (%v)", err, h.why)
	}
	return err
}

// SlackUp reports whether Slack can deliver clicks to this toolgate: false
// without Slack, and while the Socket Mode connection Run keeps is lost or
// could not be made. In http mode, and before Run first tries to connect,
// it is true: toolgate cannot tell. While it is false, reviews skip Slack
// and go to the other channels.
func (s *Service) SlackUp() bool {
	if s.slack == nil {
		return false
	}
	h := &s.slack.health
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.downSince.IsZero()
}

// reachable returns nil when a review posted now can be answered in Slack;
// see socketHealth.wait. In http mode it is always nil.
func (sc *slackChannel) reachable(ctx context.Context) error {
	if !sc.socketMode() {
		return nil
	}
	return sc.health.wait(ctx, sc.reconnectGrace)
}

// runSocketMode keeps a Socket Mode connection open until ctx ends,
// reconnecting with backoff whenever it is lost. It returns nil when ctx
// ends, and an error when the connection cannot work (a bad app-level
// token, Socket Mode off); Slack is then down for good.
func (sc *slackChannel) runSocketMode(ctx context.Context) error {
	smc := socketmode.New(sc.api, socketmode.OptionLog(slogWriter{sc.log()}))
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The event loop can end the current smc.RunContext: when slack-go's
	// backoff grows past reconnectMaxWait, or on an error no retry fixes.
	var mu sync.Mutex
	var stopRun context.CancelFunc
	var fatal error
	restart := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && fatal == nil {
			fatal = err
		}
		if stopRun != nil {
			stopRun()
		}
	}
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-smc.Events:
				sc.socketEvent(ctx, smc, evt, &wg, restart)
			}
		}
	})

	wait := reconnectFirstWait
	for {
		runCtx, stop := context.WithCancel(ctx)
		mu.Lock()
		stopRun = stop
		mu.Unlock()
		gen := sc.health.generation()
		err := smc.RunContext(runCtx)
		stop()
		if ctx.Err() != nil {
			return nil
		}
		mu.Lock()
		if fatal != nil {
			err = fatal
		}
		mu.Unlock()
		if err != nil && permanentSocketError(err) {
			sc.health.down(err)
			sc.log().Error("slack socket mode cannot connect; Slack reviews are off until toolgate restarts", "err", err)
			return fmt.Errorf("review: slack socket mode: %w (check the app-level token and that Socket Mode is enabled)", err)
		}
		if sc.health.generation() != gen {
			wait = reconnectFirstWait // it was connected meanwhile
		}
		if runCtx.Err() != nil {
			// Abandoned slack-go's backoff (see restart); the connection
			// errors are already recorded.
			wait, err = reconnectMaxWait, nil
		}
		if sc.health.down(err) {
			sc.log().Warn("slack socket mode connection lost; reviews go to the other channels until it is back", "err", err)
		}
		sc.log().Info("slack socket mode reconnecting", "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, reconnectMaxWait)
	}
}

// permanentSocketError reports whether err, from opening a Socket Mode
// connection, is one no retry fixes: the app-level token or the app's
// settings are wrong.
func permanentSocketError(err error) bool {
	if sce, ok := errors.AsType[slack.StatusCodeError](err); ok && sce.Code == http.StatusNotFound {
		return true
	}
	msg := err.Error()
	for _, code := range []string{"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
		"missing_scope", "not_allowed_token_type", "team_access_not_granted", "no_permission"} {
		if strings.Contains(msg, code) {
			return true
		}
	}
	return false
}

func (sc *slackChannel) socketEvent(ctx context.Context, smc *socketmode.Client, evt socketmode.Event, wg *sync.WaitGroup, restart func(error)) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		if since := sc.health.up(); since.IsZero() {
			sc.log().Info("slack socket mode connected")
		} else {
			sc.log().Info("slack socket mode connected again; reviews use Slack", "down_for", time.Since(since).Round(time.Millisecond))
		}
	case socketmode.EventTypeConnecting:
		// slack-go opens a new connection: the previous one, if any, is gone.
		if sc.health.lost(errors.New("connection lost")) {
			sc.log().Warn("slack socket mode connection lost; reconnecting, reviews go to the other channels until it is back")
		}
	case socketmode.EventTypeConnectionError:
		ce, _ := evt.Data.(*slack.ConnectionErrorEvent)
		var err error = errors.New("connection failed")
		var next time.Duration
		if ce != nil {
			err, next = ce.ErrorObj, ce.Backoff
		}
		sc.health.down(err)
		sc.log().Warn("slack socket mode connection attempt failed", "err", err, "next_in", next)
		switch {
		case err != nil && permanentSocketError(err):
			restart(err)
		case next > reconnectMaxWait:
			restart(nil)
		}
	case socketmode.EventTypeInvalidAuth, socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed, socketmode.EventTypeErrorBadMessage:
		sc.log().Warn("slack socket mode problem", "event", string(evt.Type), "data", fmt.Sprint(evt.Data))
	case socketmode.EventTypeInteractive:
		if evt.Request != nil {
			if err := smc.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
				sc.log().Warn("slack socket mode ack failed", "err", err)
			}
		}
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			return
		}
		wg.Go(func() { sc.handleInteraction(context.WithoutCancel(ctx), cb) })
		return
	}
	// Acknowledge anything else Slack sends so it does not retry it.
	if evt.Request != nil && evt.Request.EnvelopeID != "" {
		_ = smc.AckCtx(ctx, evt.Request.EnvelopeID, nil)
	}
}

// slogWriter adapts slack-go's logger interface to slog (debug level).
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Output(_ int, s string) error {
	w.l.Debug("slack: " + strings.TrimSpace(s))
	return nil
}

// slackFallback logs, once Review has asked its channels, that Slack was
// listed but could not be used, and which channels ask instead.
func (w *wait) slackFallback(pushed, listening bool) {
	if w.slackErr == nil {
		return
	}
	var via []string
	if pushed {
		via = append(via, toolgate.ChannelElicitation) // the only push channel after slack
	}
	if listening {
		via = append(via, toolgate.ChannelCLI)
	}
	w.log.Warn("Slack is unreachable, asking via "+strings.Join(via, " and "), "err", w.slackErr)
}

// slackNote opens the progress text the agent gets when Slack, listed,
// was not used.
func (w *wait) slackNote() string {
	if w.slackErr == nil {
		return ""
	}
	return "Slack is unreachable; "
}
