// Package gate runs the pipeline for one tool call: decide, maybe ask a human,
// record, forward, record the outcome. It declares the small interfaces it
// needs and fails closed: a missing or failing part denies the call.
//
// The order is the contract: no call is forwarded before its decision (and,
// for reviews, its verdict) is committed to the audit log.
package gate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/toolgate/toolgate"
)

// Decider evaluates rules for a call. Implementations must never return an
// empty Action; the gate treats one as Deny.
type Decider interface {
	Decide(ctx context.Context, c toolgate.Call) toolgate.Decision
}

// Reviewer asks a human about a call whose decision is Review. It returns
// when someone answers or ctx ends; an error means no verdict (the gate denies).
type Reviewer interface {
	Review(ctx context.Context, c toolgate.Call, d toolgate.Decision) (toolgate.Verdict, error)
}

// Recorder is the audit log as the gate uses it. Begin and Resolve return
// only after their write is durable: the gate forwards nothing before.
type Recorder interface {
	// Begin records the call and its decision. Status is derived from the
	// decision: allow -> started, deny -> refused, review -> pending.
	Begin(ctx context.Context, c toolgate.Call, d toolgate.Decision) error
	// Resolve records a review's verdict for call id.
	Resolve(ctx context.Context, id string, v toolgate.Verdict) error
	// Finish records what happened to call id after it was forwarded. The
	// call has run, so nothing waits on it: it may return before the write
	// is durable (the audit log writes it behind).
	Finish(ctx context.Context, id string, o toolgate.Outcome) error
}

// Granter finds the grant, if any, that covers a call decided review
// (recorded pending by Begin): an earlier approval bound to the same call.
// ok true means it counted the use, and v is the verdict that runs the
// call. *audit.Store is one.
type Granter interface {
	UseGrant(ctx context.Context, c toolgate.Call, d toolgate.Decision) (v toolgate.Verdict, ok bool, err error)
}

// PendingFinder finds, for a call decided review (recorded pending by
// Begin), a review of the same call that is not over: the one a retry
// repeats, bound as a grant is. A Granter that is also a
// PendingFinder lets a retry wait on that review instead of starting its
// own. *audit.Store is one.
type PendingFinder interface {
	PendingFor(ctx context.Context, c toolgate.Call, d toolgate.Decision) (reviewID string, ok bool, err error)
}

// Waiter waits on a review another call started. A Reviewer that is also a
// Waiter lets a retry wait on its call's review (see PendingFinder).
// *review.Service is one.
type Waiter interface {
	// Await waits up to maxWait for review reviewID to end; decided false
	// means it is still pending, and v (Channel toolgate.ChannelPending)
	// says where it waits.
	Await(ctx context.Context, reviewID string, maxWait time.Duration) (v toolgate.Verdict, decided bool, err error)
	// Hold is how long a call waits for a review before it is answered
	// pending.
	Hold() time.Duration
}

// Forwarder sends a call to its upstream and returns the upstream's
// result: its JSON as the upstream sent it (Result.Raw) where it can pass
// on unchanged, else decoded (Result.Value). *tools.Catalog is one.
type Forwarder interface {
	ForwardResult(ctx context.Context, c toolgate.Call) (toolgate.Result, error)
}

// PinSource gives the pin state of a call's tool as it is now. A
// Forwarder that is one (*tools.Catalog is) lets the gate refuse each
// call by its tool's current pin, rather than the one the agent-facing
// tool list was built with: a definition found changed, or an approval,
// applies from the next call. ok is false for a tool it does not list.
type PinSource interface {
	PinOf(c toolgate.Call) (p toolgate.Pin, ok bool)
}

// Observer is told about each finished call, for metrics. It must be cheap.
type Observer interface {
	Observe(c toolgate.Call, d toolgate.Decision, o toolgate.Outcome)
}

// Options configures a Gate. Decider, Recorder and Forwarder are required;
// a nil Reviewer denies every review.
type Options struct {
	Decider   Decider
	Reviewer  Reviewer
	Recorder  Recorder
	Forwarder Forwarder
	Observer  Observer
	// Granter, when set, is asked before a review whether a grant covers
	// the call; nil means every review asks a human. When it is also a
	// PendingFinder and Reviewer a Waiter, a call whose review is already
	// under way (a retry of a held call) waits on that review.
	Granter Granter
	// Linker, if set, finds the arguments that go through a link in the
	// workspace: a call is decided on the paths they resolve to as well.
	Linker Linker
	// Logger receives one line per decision; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// RulePin is the rule name recorded for a call refused because its tool is
// quarantined (toolgate.Pin): its definition changed since it was approved,
// or it is new under pinning mode strict.
const RulePin = "toolgate:pin"

// RuleArgs is the rule name recorded for a call refused because its
// arguments or _meta hold a key a server may read as another
// (toolgate.CaseAmbiguity): the rules could decide on one value while the
// server runs another.
const RuleArgs = "toolgate:arguments"

// caseAmbiguity is toolgate.CaseAmbiguity over c's arguments, then its
// _meta, then toolgate.UndeclaredCase over its arguments.
func caseAmbiguity(c toolgate.Call) string {
	if why := toolgate.CaseAmbiguity(c.Args); why != "" {
		return why
	}
	if why := toolgate.CaseAmbiguity(c.Meta); why != "" {
		return why
	}
	return toolgate.UndeclaredCase(c.Args, c.InputSchema)
}

// Gate is the one place every tool call passes through.
type Gate struct {
	o Options
	// after runs f once d has passed (time.AfterFunc; tests replace it).
	after func(d time.Duration, f func())
}

// cancelGrace is how long the links stay held (Linker) after the agent
// cancelled a forwarded call: its server may still be at work on it, and
// a command let in at once could swap a link under it.
const cancelGrace = 2 * time.Second

// New returns a Gate. It reports a missing required part as an error rather
// than running open.
func New(o Options) (*Gate, error) {
	switch {
	case o.Decider == nil:
		return nil, errors.New("gate: no decider")
	case o.Recorder == nil:
		return nil, errors.New("gate: no recorder")
	case o.Forwarder == nil:
		return nil, errors.New("gate: no forwarder")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Gate{o: o, after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}, nil
}

// NewID returns a new decision id: a ULID, sortable by time.
func NewID(t time.Time) string {
	return ulid.MustNew(ulid.Timestamp(t), rand.Reader).String()
}

// Handle runs one call through the pipeline. It always returns a result the
// agent can act on: refusals are tool errors (Result.Refusal) that say why.
func (g *Gate) Handle(ctx context.Context, c toolgate.Call) toolgate.Result {
	return g.handle(ctx, c, g.o.Forwarder.ForwardResult)
}

func (g *Gate) handle(ctx context.Context, c toolgate.Call, forward func(context.Context, toolgate.Call) (toolgate.Result, error)) toolgate.Result {
	if c.Time.IsZero() {
		c.Time = g.o.Now()
	}
	if c.ID == "" {
		c.ID = NewID(c.Time)
	}
	log := callLog{g.o.Logger, ctx, c.ID, c.Server, c.Tool}

	if ps, ok := g.o.Forwarder.(PinSource); ok {
		if p, ok := ps.PinOf(c); ok {
			c.Pin = p
		}
	}
	var d toolgate.Decision
	// The links are held as they are (Linker) from their check to the
	// answer, and let go while a person reviews.
	release, links, bctx := func() {}, map[string]string(nil), ctx
	defer func() { release() }()
	if c.Pin.Quarantined() {
		// The tool's definition is not the approved one: no rule may run
		// it, whatever the definition now claims (annotations included).
		d = toolgate.Decision{Action: toolgate.Deny, Rule: RulePin, Reason: c.Pin.Refusal(c.KindName(), c.Name)}
	} else if why := caseAmbiguity(c); why != "" {
		d = toolgate.Decision{Action: toolgate.Deny, Rule: RuleArgs, Reason: "the call holds " + why +
			"; servers that match keys ignoring case (as Go's encoding/json does) read such keys otherwise than the rules, so it is not run: send each key once, in one spelling"}
	} else if d = g.o.Decider.Decide(ctx, c); d.Action != toolgate.Deny && g.o.Linker != nil {
		if d, links, release = g.throughLinks(ctx, &c, d); ctx.Err() != nil {
			// It ended while it waited for the links: recorded all the same.
			bctx = context.WithoutCancel(ctx)
		}
	}
	switch d.Action {
	case toolgate.Allow, toolgate.Deny, toolgate.Review:
	default:
		d.Action, d.Error = toolgate.Deny, fmt.Sprintf("invalid action %q", d.Action)
	}
	if d.Error != "" {
		log.Warn("rule evaluation error", slog.String("rule", d.Rule), slog.String("effect", string(d.Action)), slog.String("err", d.Error))
	}
	// The profile a call runs in is part of its decision: the rule's
	// choice, else the tool's default. It is recorded and shown to
	// reviewers before anything runs.
	switch {
	case d.Action == toolgate.Deny:
		d.Sandbox = ""
	case d.Sandbox == "":
		d.Sandbox = c.Sandbox
	default:
		c.Sandbox = d.Sandbox
	}
	g.confine(&c, &d)

	if err := g.o.Recorder.Begin(bctx, c, d); err != nil {
		log.Error("audit write failed; call denied", slog.Any("err", err))
		g.observe(c, d, toolgate.Outcome{Status: toolgate.StatusRefused, Error: err.Error()})
		return refusal(c, "the audit log could not record this call, so it was not run (fail closed): "+err.Error())
	}

	switch d.Action {
	case toolgate.Deny:
		log.Info("call denied", slog.String("rule", d.Rule), slog.String("effect", string(d.Action)))
		g.observe(c, d, toolgate.Outcome{Status: toolgate.StatusRefused})
		return refusal(c, denyText(d))
	case toolgate.Review:
		release()
		release = func() {}
		v, held := g.review(ctx, c, d)
		if held {
			log.Info("review held; the call returns pending", slog.String("rule", d.Rule))
			g.observe(c, d, toolgate.Outcome{Status: toolgate.StatusPending})
			return refusal(c, heldText(d, v))
		}
		if err := g.o.Recorder.Resolve(context.WithoutCancel(ctx), c.ID, v); errors.Is(err, toolgate.ErrTakenOver) {
			log.Warn("review taken over by another process while this one was stalled; call not run", slog.Any("err", err))
			g.observe(c, d, toolgate.Outcome{Status: toolgate.StatusRefused, Error: err.Error()})
			return refusal(c, takenOverText)
		} else if err != nil {
			log.Error("audit write of review verdict failed; call denied", slog.Any("err", err))
			g.observe(c, d, toolgate.Outcome{Status: toolgate.StatusRefused, Error: err.Error()})
			return refusal(c, "the audit log could not record the review verdict, so the call was not run (fail closed): "+err.Error())
		}
		log.Info("review answered", slog.String("rule", d.Rule), slog.Bool("approved", v.Approved), slog.String("reviewer", v.Reviewer), slog.String("channel", v.Channel))
		if v.Channel == toolgate.ChannelPending && !v.Approved {
			// It waited on its call's review, which is still pending.
			g.observe(c, d, toolgate.Outcome{Status: toolgate.StatusPending})
			return refusal(c, heldText(d, v))
		}
		if !v.Approved {
			g.observe(c, d, toolgate.Outcome{Status: toolgate.StatusRefused})
			return refusal(c, reviewDeniedText(d, v))
		}
		if g.o.Linker != nil {
			var why string
			if release, why = g.rehold(ctx, c, links); why != "" {
				out := toolgate.Outcome{Status: toolgate.StatusRefused, Error: why, FinishedAt: g.o.Now()}
				if err := g.o.Recorder.Finish(context.WithoutCancel(ctx), c.ID, out); err != nil {
					log.Error("audit write of outcome failed", slog.Any("err", err))
				}
				g.observe(c, d, out)
				return refusal(c, why)
			}
		}
	}

	log.Debug("call forwarded", slog.String("rule", d.Rule), slog.String("effect", string(d.Action)))
	start := g.o.Now()
	res, err := forward(ctx, c)
	out := outcome(res, err, g.o.Now().Sub(start), g.o.Now())
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		out.Status, out.Error = toolgate.StatusCancelled, cancelledText+" ("+err.Error()+")"
		g.after(cancelGrace, release)
		release = func() {}
	}
	if ferr := g.o.Recorder.Finish(context.WithoutCancel(ctx), c.ID, out); ferr != nil {
		// The call already ran; its decision row stays "started", which is
		// what a crash would leave too. Say so loudly.
		log.Error("audit write of outcome failed", slog.Any("err", ferr))
	}
	g.observe(c, d, out)
	if err != nil {
		res := toolgate.Refused(fmt.Sprintf("toolgate: upstream %q failed on %s: %v", c.Server, c.Tool, err))
		// The upstream's own JSON-RPC error goes on as it sent it, where
		// the edge can answer with one.
		res.RPCError, _ = errors.AsType[*toolgate.RPCError](err)
		return res
	}
	return res
}

// callLog logs about one call, with its call_id, server and tool first. It
// builds nothing for a level the logger does not have enabled: Logger.With
// would format those three attributes on every call, and most calls log
// only at Debug. A pointer to the call would move every call to the heap.
type callLog struct {
	l                *slog.Logger
	ctx              context.Context
	id, server, tool string
}

// log takes attributes: ...any would box its values at every level.
func (cl callLog) log(level slog.Level, msg string, attrs ...slog.Attr) {
	if !cl.l.Enabled(cl.ctx, level) {
		return
	}
	all := append(make([]slog.Attr, 0, 3+len(attrs)), slog.String("call_id", cl.id), slog.String("server", cl.server), slog.String("tool", cl.tool))
	cl.l.LogAttrs(cl.ctx, level, msg, append(all, attrs...)...)
}

func (cl callLog) Debug(msg string, attrs ...slog.Attr) { cl.log(slog.LevelDebug, msg, attrs...) }
func (cl callLog) Info(msg string, attrs ...slog.Attr)  { cl.log(slog.LevelInfo, msg, attrs...) }
func (cl callLog) Warn(msg string, attrs ...slog.Attr)  { cl.log(slog.LevelWarn, msg, attrs...) }
func (cl callLog) Error(msg string, attrs ...slog.Attr) { cl.log(slog.LevelError, msg, attrs...) }

func (g *Gate) observe(c toolgate.Call, d toolgate.Decision, o toolgate.Outcome) {
	if g.o.Observer != nil {
		g.o.Observer.Observe(c, d, o)
	}
}

// review returns the verdict on call c: a grant's, when one covers it, else
// the Reviewer's, every failure turned into a denial. held is true when the
// review goes on without the call (toolgate.ErrHeld).
func (g *Gate) review(ctx context.Context, c toolgate.Call, d toolgate.Decision) (v toolgate.Verdict, held bool) {
	if g.o.Granter != nil {
		v, ok, err := g.o.Granter.UseGrant(ctx, c, d)
		switch {
		case err != nil:
			g.o.Logger.Warn("looking for a grant failed; the call is reviewed", "call_id", c.ID, "err", err)
		case ok:
			return v, false
		}
		if v, ok := g.follow(ctx, c, d); ok {
			return v, false
		}
	}
	if g.o.Reviewer == nil {
		return toolgate.Verdict{Channel: "none", Reason: "no review channel is configured", DecidedAt: g.o.Now()}, false
	}
	v, err := g.o.Reviewer.Review(ctx, c, d)
	if errors.Is(err, toolgate.ErrHeld) {
		return v, true
	}
	if err != nil {
		g.o.Logger.Warn("review failed; call denied", "call_id", c.ID, "err", err)
		ch := v.Channel
		if ch == "" {
			ch = "error"
		}
		return toolgate.Verdict{Channel: ch, Reviewer: v.Reviewer, Reason: "review failed: " + err.Error(), DecidedAt: g.o.Now()}, false
	}
	if v.DecidedAt.IsZero() {
		v.DecidedAt = g.o.Now()
	}
	return v, false
}

// follow waits, when the same call's review is not over (c is a retry of
// a held call), on that review instead of starting a second one,
// at most as long as a review holds a call. ok is false when there is no
// such review; else v is c's verdict: the grant the review's approval
// became, its denial, or still pending (Channel toolgate.ChannelPending).
// Each names the review.
func (g *Gate) follow(ctx context.Context, c toolgate.Call, d toolgate.Decision) (v toolgate.Verdict, ok bool) {
	pf, ok1 := g.o.Granter.(PendingFinder)
	w, ok2 := g.o.Reviewer.(Waiter)
	if !ok1 || !ok2 {
		return v, false
	}
	id, ok, err := pf.PendingFor(ctx, c, d)
	if err != nil {
		// Its own review could not be answered if an earlier twin is
		// pending (reviewers answer that one): refuse now, not after the
		// review times out unseen.
		g.o.Logger.Warn("looking for a pending review of the same call failed; the call is refused", "call_id", c.ID, "err", err)
		return toolgate.Verdict{Channel: "error", Reason: fmt.Sprintf("looking for a review of the same call failed: %v", err), DecidedAt: g.o.Now()}, true
	}
	if !ok {
		return v, false
	}
	g.o.Logger.Info("the same call is already under review; waiting on it", "call_id", c.ID, "review", id)
	rv, decided, err := w.Await(ctx, id, w.Hold())
	switch {
	case err != nil:
		ch := "error"
		if ctx.Err() != nil {
			ch = toolgate.ChannelCancelled
		}
		return toolgate.Verdict{Channel: ch, Reason: fmt.Sprintf("waiting on review %s of the same call failed: %v", id, err), DecidedAt: g.o.Now()}, true
	case !decided:
		rv.Approved, rv.Channel, rv.DecidedAt = false, toolgate.ChannelPending, g.o.Now()
		return rv, true
	case !rv.Approved:
		note := fmt.Sprintf("review %s of the same call, which this call waited on", id)
		if rv.Reason == "" {
			rv.Reason = note
		} else {
			rv.Reason += " (" + note + ")"
		}
		rv.DecidedAt = g.o.Now()
		return rv, true
	}
	// Approved: the review's holder turned the approval into a grant.
	gv, ok, err := g.o.Granter.UseGrant(ctx, c, d)
	switch {
	case err != nil:
		return toolgate.Verdict{Channel: "error", Reason: fmt.Sprintf("review %s of the same call was approved, but using its grant failed: %v", id, err), DecidedAt: g.o.Now()}, true
	case !ok:
		return toolgate.Verdict{Channel: toolgate.ChannelGrant, DecidedAt: g.o.Now(),
			Reason: fmt.Sprintf("review %s of the same call was approved for one run, which another call had; this call needs a review of its own", id)}, true
	}
	return gv, true
}

// cancelledText is the outcome's Error of a call the agent cancelled after
// it was forwarded.
const cancelledText = "outcome unknown: the agent cancelled the call after it was forwarded, and the upstream may have acted on it"

// outcome describes a forwarded call's end. The result's size and hash are
// those of its JSON as the agent gets it: the upstream's bytes for a result
// passed on undecoded, else the encoding of the decoded result.
func outcome(res toolgate.Result, err error, dur time.Duration, now time.Time) toolgate.Outcome {
	o := toolgate.Outcome{Duration: dur, FinishedAt: now}
	switch {
	case err != nil:
		o.Status, o.Error = toolgate.StatusFailed, err.Error()
		return o
	case res.Raw == nil && res.Value == nil:
		o.Status, o.Error = toolgate.StatusFailed, "upstream returned no result"
		return o
	case res.IsError:
		o.Status = toolgate.StatusToolError
	default:
		o.Status = toolgate.StatusOK
	}
	b := []byte(res.Raw)
	if b == nil {
		// MarshalJSON, not json.Marshal: the agent gets the value's own
		// encoding, and json.Marshal would compact and copy it again.
		var merr error
		if b, merr = res.Value.MarshalJSON(); merr != nil {
			return o
		}
	}
	sum := sha256.Sum256(b)
	o.ResultSize, o.ResultHash = len(b), hex.EncodeToString(sum[:])
	return o
}

func refusal(c toolgate.Call, why string) toolgate.Result {
	return toolgate.Refused(fmt.Sprintf("toolgate refused %s (decision %s): %s", c.Name, c.ID, why))
}

func denyText(d toolgate.Decision) string {
	s := "denied by policy"
	if d.Rule != "" {
		s += fmt.Sprintf(" (rule %q)", d.Rule)
	}
	if d.Reason != "" {
		s += ": " + d.Reason
	}
	if d.Error != "" {
		s += " [rule evaluation error: " + d.Error + "]"
	}
	return s + ". Do not retry the same call; change the approach or ask the user."
}

func reviewDeniedText(d toolgate.Decision, v toolgate.Verdict) string {
	s := "a human review was required"
	if d.Rule != "" {
		s += fmt.Sprintf(" (rule %q: %s)", d.Rule, d.Reason)
	}
	switch {
	case v.Channel == "timeout":
		s += " and no reviewer answered in time, so the call was denied"
	case v.Reviewer != "":
		s += fmt.Sprintf(" and %s denied it via %s", v.Reviewer, v.Channel)
	default:
		s += " and it was not approved"
	}
	if v.Reason != "" {
		s += ": " + v.Reason
	}
	return s + ". Ask the user before trying again."
}

// fenceText begins the refusal of a call that ended while it waited for
// the links to be held (Linker); the error follows.
const fenceText = "toolgate waits to run a call while calls that could change the workspace's links run " +
	"(a command, or a change through a server outside the sandbox), and this call ended first: "

// takenOverText tells the agent why a call whose review another toolgate
// process took over did not run, and that its retry is how an approval
// there is used.
const takenOverText = "while this toolgate process was stalled, another one took over the review of this call, " +
	"so the call did not run here; an approval there is turned into a grant: retry the same call with the same " +
	"arguments, and it runs once if the review is approved (it waits for a review still open, and is reviewed again otherwise)"

func heldText(d toolgate.Decision, v toolgate.Verdict) string {
	s := "a human review is required"
	if d.Rule != "" {
		s += fmt.Sprintf(" (rule %q: %s)", d.Rule, d.Reason)
	}
	return s + " and nobody has answered yet, so the call did not run: " + v.Reason + "."
}
