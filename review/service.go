package review

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/mcp/agent"
	"github.com/toolgate/toolgate/redact"
)

// Defaults for Options.
const (
	DefaultGrantTTL         = 15 * time.Minute
	DefaultTimeout          = 5 * time.Minute
	DefaultPollInterval     = 500 * time.Millisecond
	DefaultMaxPending       = 5
	DefaultProgressInterval = 5 * time.Second
)

// ErrNoChannel is wrapped by Review's error when no review channel could be
// reached; the gate then denies the call.
var ErrNoChannel = errors.New("no review channel could be reached")

// Options configures a Service. Store is required.
type Options struct {
	// Store holds pending reviews and their verdicts (an *audit.Store).
	Store Store
	// Slack configures the Slack channel; nil means no Slack.
	Slack *SlackOptions
	// Channels are the channels to use, in order of preference: "slack",
	// "cli", "elicitation", "web". Slack and elicitation are asked in this order
	// and only the first one reached is used ("fall to the next channel");
	// "cli" means a verdict written by `toolgate review approve|deny` (from
	// any process, found by polling the Store) is accepted, and "web" one
	// given in the web UI (the same way). A verdict from
	// any listed channel ends the review. Empty means slack (when Slack is
	// set), cli, elicitation (when Elicitation is true).
	Channels []string
	// Timeout is how long a review waits before it is denied; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Hold is how long Review keeps the agent's call waiting. Past it (and
	// before Timeout) Review returns ErrHeld and the review goes on without
	// the call: an approval then becomes a grant (Store.GrantReview) that
	// the agent's retry of the same call uses. MCP clients give up on a
	// call after about a minute, so a reviewer who answers later would
	// otherwise approve nothing. Zero, or not less than Timeout, means the
	// call waits the whole review. Not applied while the agent's own user
	// is being asked (elicitation): the client is showing the question.
	Hold time.Duration
	// GrantTTL is how long a grant from a held review stays usable; zero
	// means DefaultGrantTTL.
	GrantTTL time.Duration
	// MaxPending is how many reviews one requester may have waiting in
	// this process, held ones included; a call past it is refused without
	// asking anyone (Channel toolgate.ChannelLimit). A prompt-injected
	// agent would otherwise send reviewers a flood of requests, hoping one
	// is approved in haste. The requester is the call's principal: the
	// person a per-user token or OIDC names, else everyone sharing this
	// process's one token or none (over stdio, its one agent). Not the
	// session: an agent can end its session and open another, while its
	// held reviews wait on. Zero means DefaultMaxPending.
	MaxPending int
	// OnHeldEnd, when set, is told the verdict of each held review when it
	// ends (the gate, which no longer waits, is not): for metrics.
	OnHeldEnd func(id string, v toolgate.Verdict)
	// Elicitation allows asking the agent's own user through MCP
	// elicitation when the client supports it. False disables the
	// "elicitation" channel even when listed.
	Elicitation bool
	// PollInterval is how often a waiting review reads the Store for
	// verdicts written by another process; zero means DefaultPollInterval.
	PollInterval time.Duration
	// ProgressInterval is how often a waiting review sends MCP progress to
	// the agent (when it asked for progress); zero means
	// DefaultProgressInterval.
	ProgressInterval time.Duration
	// Decide evaluates a call under the rules in force (the gate's
	// Decider). A Slack "Approve for this session" click on a review
	// another process posted (its decision, with the rule's session_grant,
	// is not in this one) is honoured only when Decide, on the recorded
	// call, still picks the same rule (toolgate.Pending.SessionGrant); nil
	// refuses such clicks.
	Decide func(ctx context.Context, c toolgate.Call) toolgate.Decision
	// Account is the OS account toolgate runs as, the one a terminal
	// approval (`toolgate review approve`) on this host records as its
	// reviewer's principal user. An elicitation about a call with no
	// principal user (stdio) is answered by whoever runs the agent here,
	// recorded as Account, so that the one-person check across channels
	// (the audit store's) sees the agent's user and the terminal's as
	// one. Empty leaves such answers without a person.
	Account string
	// Redactor masks secrets in what is shown to reviewers, with the
	// reviewers' marks (Redactor.ForReviewers is applied to it); nil uses
	// redact's default rules.
	Redactor *redact.Redactor
	// Logger receives one line per review event; nil discards. Arguments
	// are never logged.
	Logger *slog.Logger
	// Now is the clock for verdict times; nil means time.Now. Waiting uses
	// real timers.
	Now func() time.Time
}

// Service asks humans about calls whose decision is review. It implements
// the gate's Reviewer. Safe for concurrent use.
type Service struct {
	o        Options
	channels []string
	slack    *slackChannel // nil without Slack

	mu      sync.Mutex
	waiters map[string][]chan struct{} // call id -> woken when its review changes
	open    map[string]int             // requester -> its reviews waiting (MaxPending)
}

// New checks o and returns a Service. It does not contact Slack; Run does.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("review: no store")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if o.GrantTTL <= 0 {
		o.GrantTTL = DefaultGrantTTL
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// A reviewer is told what each mask hides (its length, and words or
	// shell characters in it), so that no argument made to look like a
	// secret hides what the call does.
	o.Redactor = o.Redactor.ForReviewers()
	s := &Service{o: o, waiters: map[string][]chan struct{}{}, open: map[string]int{}}
	s.channels = o.Channels
	if len(s.channels) == 0 {
		if o.Slack != nil {
			s.channels = append(s.channels, toolgate.ChannelSlack)
		}
		s.channels = append(s.channels, toolgate.ChannelCLI)
		if o.Elicitation {
			s.channels = append(s.channels, toolgate.ChannelElicitation)
		}
	}
	for i, ch := range s.channels {
		if !toolgate.IsReviewChannel(ch) {
			return nil, fmt.Errorf("review: unknown channel %q (want %s)", ch, toolgate.ReviewChannels)
		}
		if slices.Contains(s.channels[:i], ch) {
			return nil, fmt.Errorf("review: channel %q listed twice", ch)
		}
	}
	if slices.Contains(s.channels, toolgate.ChannelSlack) && o.Slack == nil {
		return nil, errors.New("review: channel slack is listed but Slack is not configured")
	}
	if o.Slack != nil {
		sc, err := newSlackChannel(s, *o.Slack)
		if err != nil {
			return nil, err
		}
		s.slack = sc
	}
	return s, nil
}

// Channels returns the channels in use, in order.
func (s *Service) Channels() []string { return slices.Clone(s.channels) }

// Review asks for a verdict on call c, whose pending review the gate has
// already stored, and waits for the first answer from any channel, the
// timeout, or the end of ctx. Timeouts and cancellations are stored as
// not-approved verdicts (channels "timeout" and "cancelled") and returned
// with a nil error. An error means no channel could be reached or the Store
// failed; the gate denies the call.
func (s *Service) Review(ctx context.Context, c toolgate.Call, d toolgate.Decision) (toolgate.Verdict, error) {
	log := s.o.Logger.With("call_id", c.ID, "server", c.Server, "tool", c.Tool, "rule", d.Rule)
	if err := s.admit(ctx, c); err != nil {
		log.Warn("review not asked: the requester has too many reviews waiting", "max_pending", s.o.MaxPending, "err", err)
		reason := fmt.Sprintf("%d reviews of your calls are already waiting for an answer (review.max_pending), so this call was not sent to "+
			"reviewers; wait for those answers (the review_status tool tells them) before asking for more", s.o.MaxPending)
		if !errors.Is(err, errTooMany) {
			reason = "toolgate could not count the reviews of your calls already waiting, so this call was not sent to reviewers (fail closed): " + err.Error()
		}
		return toolgate.Verdict{Channel: toolgate.ChannelLimit, DecidedAt: s.o.Now(), Reason: reason}, nil
	}
	start, began := s.o.Now(), time.Now() // began: for the real timers
	expires := start.Add(s.o.Timeout)
	wake := s.register(c.ID)
	w := &wait{s: s, c: c, d: d, log: log, expires: expires, counted: true}
	defer func() {
		if wake != nil { // not held: the review ends with this call
			s.unregister(c.ID, wake)
			s.release(w)
		}
	}()

	var why []error
	listening := false
	pushed := false // a push channel (slack, elicitation) was reached
	elicitDone := make(chan error, 1)
	elicitCtx, stopElicit := context.WithCancel(ctx)
	defer stopElicit()
	for _, ch := range s.channels {
		if len(d.Review.Channels) > 0 && !slices.Contains(d.Review.Channels, ch) {
			why = append(why, fmt.Errorf("%s: rule %q does not accept answers from it", ch, d.Rule))
			continue
		}
		switch ch {
		case toolgate.ChannelCLI:
			listening = true
			log.Info("review waiting; answer with `toolgate review approve|deny " + c.ID + "`")
		case toolgate.ChannelWeb:
			// Answered in the web UI (package web), through the Store
			// like the CLI's verdicts.
			listening = true
			log.Info("review waiting in the web UI (/ui/reviews)")
		case toolgate.ChannelSlack:
			if pushed {
				continue
			}
			if err := w.postSlack(ctx); err != nil {
				log.Warn("slack review channel unreachable", "err", err)
				why = append(why, fmt.Errorf("slack: %w", err))
				w.slackErr = err // slack: see slackFallback
				continue
			}
			pushed = true
		case toolgate.ChannelElicitation:
			if pushed {
				continue
			}
			if !s.o.Elicitation {
				why = append(why, errors.New("elicitation: disabled in config"))
				continue
			}
			// The agent's user is the requester's side: not one of the
			// distinct people a rule asks for (the audit store refuses
			// such an approval too).
			if d.Review.Approvals > 1 {
				why = append(why, fmt.Errorf("elicitation: rule %q needs %d approvers other than the agent's user", d.Rule, d.Review.Approvals))
				continue
			}
			// A caller named by their own credential would be asked to
			// approve their own call, which the store refuses: asking
			// would only hold the call (no hold applies while the user is
			// asked) for an answer that cannot count.
			if c.Principal.Personal() {
				why = append(why, fmt.Errorf("elicitation: the agent's user %s cannot approve their own call", c.Principal.User))
				continue
			}
			if err := agent.CanElicit(ctx); err != nil {
				why = append(why, fmt.Errorf("elicitation: %w", err))
				continue
			}
			pushed = true
			go func() { elicitDone <- s.elicit(elicitCtx, c, d, expires) }()
		}
	}
	if !pushed && !listening {
		err := fmt.Errorf("review of %s: %w: %w", c.ID, ErrNoChannel, errors.Join(why...))
		log.Warn("review impossible; call denied", "err", err)
		return toolgate.Verdict{Channel: "error", Reason: err.Error(), DecidedAt: s.o.Now()}, err
	}
	w.slackFallback(pushed, listening) // slack: logs where the review goes instead

	timer := time.NewTimer(s.o.Timeout)
	defer timer.Stop()
	poll := time.NewTicker(s.o.PollInterval)
	defer poll.Stop()
	var escalateC <-chan time.Time
	if p := d.Review; p.EscalateAfter > 0 && p.EscalateAfter < s.o.Timeout {
		t := time.NewTimer(p.EscalateAfter)
		defer t.Stop()
		escalateC = t.C
	}
	// The hold does not apply while the agent's own user is asked (pushed
	// with no Slack message): the client shows the question. It starts
	// when that ends in a failure, for what is left of it.
	var holdC <-chan time.Time
	armHold := func() {
		if h := s.Hold(); h < s.o.Timeout {
			t := time.NewTimer(h - time.Since(began))
			holdC = t.C
		}
	}
	if !(pushed && w.msgTS == "") {
		armHold()
	}
	progress := toolgate.ProgressFrom(ctx)
	var progressC <-chan time.Time
	if progress != nil {
		t := time.NewTicker(s.o.ProgressInterval)
		defer t.Stop()
		progressC = t.C
		progress(0, s.o.Timeout.Seconds(), w.progressText())
	}
	for {
		// The store is the source of truth: a verdict may already be there
		// (a fast CLI answer, or another process).
		v, decided, err := s.o.Store.ReviewVerdict(ctx, c.ID)
		if err != nil && ctx.Err() == nil {
			return toolgate.Verdict{}, fmt.Errorf("review of %s: read verdict: %w", c.ID, err)
		}
		if decided {
			w.finish(v)
			return v, nil
		}
		select {
		case <-wake:
		case <-poll.C:
		case <-progressC:
			progress(s.o.Now().Sub(start).Seconds(), s.o.Timeout.Seconds(), w.progressText())
		case err := <-elicitDone:
			if err != nil {
				log.Warn("elicitation failed", "err", err)
				if !listening && w.msgTS == "" {
					err = fmt.Errorf("review of %s: %w: elicitation: %w", c.ID, ErrNoChannel, err)
					return s.conclude(w, toolgate.Verdict{Channel: "error", Reason: err.Error()}), err
				}
				if holdC == nil {
					armHold()
				}
			}
		case <-timer.C:
			return s.conclude(w, toolgate.Verdict{Channel: toolgate.ChannelTimeout,
				Reason: fmt.Sprintf("no reviewer answered within %s", s.o.Timeout)}), nil
		case <-escalateC:
			w.escalate(ctx)
		case <-holdC:
			log.Info("review held: the call returns pending; the review goes on", "expires", expires)
			go s.awaitHeld(w, wake, expires)
			wake = nil // awaitHeld owns the registration now
			return toolgate.Verdict{Channel: toolgate.ChannelPending, Reason: w.heldText(), DecidedAt: s.o.Now()}, toolgate.ErrHeld
		case <-ctx.Done():
			return s.conclude(w, toolgate.Verdict{Channel: toolgate.ChannelCancelled,
				Reason: "the call was cancelled before a reviewer answered: " + context.Cause(ctx).Error()}), nil
		}
	}
}

// conclude stores v (not approved) unless another verdict won the race, and
// returns the verdict that counts, after updating the Slack message.
func (s *Service) conclude(w *wait, v toolgate.Verdict) toolgate.Verdict {
	ctx := context.WithoutCancel(context.Background())
	v.Approved = false
	v.DecidedAt = s.o.Now()
	ok, err := s.o.Store.SubmitVerdict(ctx, w.c.ID, v)
	switch {
	case err != nil:
		// The gate's Resolve will try to record v again and deny.
		w.log.Error("storing review end failed", "channel", v.Channel, "err", err)
	case !ok:
		if won, decided, err := s.o.Store.ReviewVerdict(ctx, w.c.ID); err == nil && decided {
			v = won
		}
	}
	w.finish(v)
	return v
}

// requester is whose reviews of c count together against MaxPending.
func requester(c toolgate.Call) string {
	return c.Principal.Auth + ":" + c.Principal.User
}

// errTooMany is admit's refusal: the requester has MaxPending reviews
// waiting.
var errTooMany = errors.New("too many reviews waiting")

// admit counts c's review in, unless its requester has MaxPending waiting
// already: in this process, or, for a person (a per-user credential),
// in every process sharing the Store (PendingCounter), where c's own
// call is recorded already. It counts c in only when it returns nil.
func (s *Service) admit(ctx context.Context, c toolgate.Call) error {
	key := requester(c)
	s.mu.Lock()
	if s.open[key] >= s.o.MaxPending {
		s.mu.Unlock()
		return errTooMany
	}
	s.open[key]++
	s.mu.Unlock()
	pc, ok := s.o.Store.(PendingCounter)
	if !ok || !c.Principal.Personal() {
		return nil
	}
	n, err := pc.PendingOf(ctx, c.Principal.User)
	if err == nil && n > s.o.MaxPending {
		err = errTooMany
	}
	if err != nil {
		s.release(&wait{c: c, counted: true})
	}
	return err
}

// release counts w's review out once it ends, if admit counted it in.
func (s *Service) release(w *wait) {
	if !w.counted {
		return
	}
	key := requester(w.c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key]--; s.open[key] <= 0 {
		delete(s.open, key)
	}
}

// register returns a channel woken when review id changes; several waits
// (the review, and a retry's Await) may watch one review.
func (s *Service) register(id string) chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.waiters[id] = append(s.waiters[id], ch)
	s.mu.Unlock()
	return ch
}

func (s *Service) unregister(id string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chs := slices.DeleteFunc(s.waiters[id], func(c chan struct{}) bool { return c == ch })
	if len(chs) == 0 {
		delete(s.waiters, id)
		return
	}
	s.waiters[id] = chs
}

// notify wakes the review of call id waiting in this process, if any.
func (s *Service) notify(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.waiters[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Wake wakes the review of call id if one waits in this process, so that
// it reads the verdict another process recorded now instead of at its next
// poll (the audit store's Listen reports such verdicts).
func (s *Service) Wake(id string) { s.notify(id) }

// submit stores v for call id and wakes its waiter; ok is false when the
// review was already decided.
func (s *Service) submit(ctx context.Context, id string, v toolgate.Verdict) (bool, error) {
	if v.DecidedAt.IsZero() {
		v.DecidedAt = s.o.Now()
	}
	ok, err := s.o.Store.SubmitVerdict(ctx, id, v)
	if ok {
		s.notify(id)
	}
	return ok, err
}

// AdoptStore is a Store whose reviews can outlive the process holding them
// (the audit store on PostgreSQL, shared by replicas): AdoptOrphanReviews
// makes this process the owner of the unanswered reviews whose owner's
// lease ran out, and returns them. A Store that cannot returns none.
type AdoptStore interface {
	AdoptOrphanReviews(ctx context.Context, now time.Time) ([]toolgate.Pending, error)
}

// adopt goes on with review p, whose process is gone, as a held review
// (awaitHeld): it stays answerable until the end of its original timeout,
// an approval becomes a grant for the agent's retry, and its Slack message
// is closed when it ends. The call itself ended with its process.
func (s *Service) adopt(p toolgate.Pending) {
	log := s.o.Logger.With("call_id", p.Call.ID, "server", p.Call.Server, "tool", p.Call.Tool, "rule", p.Decision.Rule)
	expires := p.RequestedAt.Add(s.o.Timeout)
	log.Info("review taken over from an ended process", "expires", expires)
	w := &wait{s: s, c: p.Call, d: p.Decision, log: log, expires: expires, msgChannel: p.SlackChannel, msgTS: p.SlackTS}
	if s.slack == nil {
		w.msgTS = ""
	}
	go s.awaitHeld(w, s.register(p.Call.ID), expires)
}

// Recover expires the reviews a previous process left pending (their calls
// are gone) and updates their Slack messages to say so. Call it at start-up,
// before serving. Slack failures are logged, not returned.
//
// Adoption and expiry judge the other processes' leases at one instant:
// read twice, a lease running out in between (the adopting write waiting
// in the commit queue) would be live to the one and dead to the other, and
// a review a live process should carry on would be expired.
func (s *Service) Recover(ctx context.Context) error {
	now := s.o.Now()
	if as, ok := s.o.Store.(AdoptStore); ok {
		ps, err := as.AdoptOrphanReviews(ctx, now)
		if err != nil {
			s.o.Logger.Warn("taking over the reviews of ended processes failed; they are expired instead", "err", err)
		}
		for _, p := range ps {
			s.adopt(p)
		}
	}
	ps, err := s.o.Store.ExpireOrphanReviews(ctx, now)
	if err != nil {
		return fmt.Errorf("review: expire orphan reviews: %w", err)
	}
	if len(ps) > 0 {
		s.o.Logger.Info("expired reviews left pending by a previous run", "count", len(ps))
	}
	for _, p := range ps {
		if s.slack == nil || p.SlackChannel == "" || p.SlackTS == "" {
			continue
		}
		v := toolgate.Verdict{Channel: toolgate.ChannelExpired, Reason: "toolgate restarted", DecidedAt: s.o.Now()}
		if err := s.slack.update(ctx, p.SlackChannel, p.SlackTS, p.Call, p.Decision, time.Time{}, &v); err != nil {
			s.o.Logger.Warn("updating slack message of expired review failed", "call_id", p.Call.ID, "err", err)
		}
	}
	return nil
}

// Run runs the background parts until ctx ends: the Slack Socket Mode
// connection (when Slack is configured with an app-level token). It returns
// nil when ctx ends and an error when Socket Mode cannot work (bad token).
// Reviews are still answered through the other channels while it is not
// running.
func (s *Service) Run(ctx context.Context) error {
	if s.slack == nil || !s.slack.socketMode() {
		<-ctx.Done()
		return nil
	}
	return s.slack.runSocketMode(ctx)
}

// wait is one review in flight.
type wait struct {
	s       *Service
	c       toolgate.Call
	d       toolgate.Decision
	log     *slog.Logger
	expires time.Time
	// Where the Slack message is, once posted.
	msgChannel, msgTS string
	// escalated is set once the rule's escalate_to has been mentioned.
	escalated bool
	// slackErr is why Slack, listed, was not used (slack_socket.go).
	slackErr error
	// counted: the review counts against its requester's MaxPending (one
	// adopted from an ended process does not).
	counted bool
}

func (w *wait) postSlack(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The call going away stops post's retries, not a post under way: a
	// post that reached Slack must be known, so that the review's end
	// (cancelled, here) updates it instead of leaving reviewers a live
	// request.
	ch, ts, err := w.s.slack.post(ctx, w.c, w.d, w.expires)
	if err != nil {
		return err
	}
	w.msgChannel, w.msgTS = ch, ts
	w.log.Info("review posted to slack", "slack_channel", ch, "slack_ts", ts)
	if err := w.s.o.Store.SetReviewMessage(context.WithoutCancel(ctx), w.c.ID, ch, ts); err != nil {
		// Only restart recovery needs it; the review itself goes on.
		w.log.Warn("remembering the slack message failed", "err", err)
	}
	return nil
}

// finish updates the Slack message (if any) to show verdict v.
func (w *wait) finish(v toolgate.Verdict) {
	w.log.Info("review ended", "approved", v.Approved, "reviewer", v.Reviewer, "channel", v.Channel)
	if w.msgTS == "" {
		return
	}
	_ = w.s.slack.update(context.Background(), w.msgChannel, w.msgTS, w.c, w.d, w.expires, &v) // logs its failure
}

// progressText is sent to the agent. It never says how to answer from a
// terminal: an agent that can run commands would run that one and approve
// its own call. The log (for the humans) says it instead.
func (w *wait) progressText() string {
	left := w.expires.Sub(w.s.o.Now()).Round(time.Second)
	return w.slackNote() + fmt.Sprintf("waiting for human review via %s; denied in %s if nobody answers", w.where(), max(left, 0))
}

// where names the channel a reviewer answers in, for the agent.
func (w *wait) where() string {
	if w.msgTS != "" {
		return "Slack"
	}
	return "a terminal on toolgate's host"
}

// heldText tells the agent what became of its call when the review is
// held: where it waits, until when, and that the same call runs once
// approved. Like progressText, never how to answer it.
func (w *wait) heldText() string {
	return w.slackNote() + fmt.Sprintf("review %s is waiting for a human via %s until %s UTC; once it is approved, "+
		"the same call with the same arguments runs once (retry it then; toolgate's review_status tool waits for the answer); "+
		"a different call needs a review of its own",
		w.c.ID, w.where(), w.expires.UTC().Format("15:04:05"))
}

// awaitHeld waits, without the call, for the verdict of a held review until
// it expires, then keeps it (keepHeld). It owns the review's wake-up
// registration.
func (s *Service) awaitHeld(w *wait, wake chan struct{}, expires time.Time) {
	defer s.release(w)
	defer s.unregister(w.c.ID, wake)
	ctx := context.Background()
	timer := time.NewTimer(time.Until(expires))
	defer timer.Stop()
	poll := time.NewTicker(s.o.PollInterval)
	defer poll.Stop()
	// A review held before its escalation is still escalated on time.
	var escalateC <-chan time.Time
	if p := w.d.Review; p.EscalateAfter > 0 && !w.escalated {
		t := time.NewTimer(time.Until(expires.Add(p.EscalateAfter - s.o.Timeout)))
		defer t.Stop()
		escalateC = t.C
	}
	for {
		v, decided, err := s.o.Store.ReviewVerdict(ctx, w.c.ID)
		if err != nil {
			w.log.Warn("reading the verdict of a held review failed", "err", err)
		}
		if decided {
			w.finish(v)
			s.keepHeld(w, v)
			return
		}
		select {
		case <-wake:
		case <-poll.C:
		case <-escalateC:
			w.escalate(ctx)
		case <-timer.C:
			v := s.conclude(w, toolgate.Verdict{Channel: toolgate.ChannelTimeout, Reason: fmt.Sprintf("no reviewer answered within %s", s.o.Timeout)})
			s.keepHeld(w, v)
			return
		}
	}
}

// keepHeld records the end of a held review: an approval becomes a grant
// for the agent's retry; anything else refuses the call for good.
func (s *Service) keepHeld(w *wait, v toolgate.Verdict) {
	ctx := context.Background()
	if s.o.OnHeldEnd != nil {
		s.o.OnHeldEnd(w.c.ID, v)
	}
	if !v.Approved {
		if err := s.o.Store.Resolve(ctx, w.c.ID, v); err != nil {
			w.log.Error("recording the end of a held review failed", "err", err)
		}
		return
	}
	id, err := s.o.Store.GrantReview(ctx, w.c.ID, "once", s.o.GrantTTL)
	if err != nil {
		w.log.Error("issuing the grant of an approved held review failed; the retry will be reviewed again", "err", err)
		return
	}
	w.log.Info("held review approved: grant issued for the agent's retry", "grant", id, "reviewer", v.Reviewer, "ttl", s.o.GrantTTL)
}

// escalate mentions the rule's escalate_to in the review's Slack thread; a
// review not in Slack is escalated in the log only.
func (w *wait) escalate(ctx context.Context) {
	w.escalated = true
	p := w.d.Review
	w.log.Warn("review still unanswered: escalating", "after", p.EscalateAfter, "to", p.EscalateTo)
	if w.msgTS == "" {
		return
	}
	what := fmt.Sprintf("rule %s, %s, asked %s ago", w.d.Rule, w.c.Name, p.EscalateAfter)
	if err := w.s.slack.escalate(context.WithoutCancel(ctx), w.msgChannel, w.msgTS, p.EscalateTo, what); err != nil {
		w.log.Error("escalating in slack failed", "err", err)
	}
}
