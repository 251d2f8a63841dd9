package audit

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/toolgate/toolgate"
)

// initialStatus is the status Begin gives a decision.
func initialStatus(a toolgate.Action) string {
	switch a {
	case toolgate.Allow:
		return toolgate.StatusStarted
	case toolgate.Review:
		return toolgate.StatusPending
	default:
		return toolgate.StatusRefused
	}
}

// entryRow is an Entry with its column encodings and its decision-event
// body, computed by the caller so the writer goroutine only hashes and
// inserts.
type entryRow struct {
	e Entry
	// body is the decision event's body without its context, which
	// ctxBody (a context event's body) holds: appendDecision chains both.
	body, ctxBody []byte
	status        string
	at            int64
	policy        toolgate.ReviewPolicy // of a review decision
	argsMAC       string                // of a review decision: see Store.argsMAC
}

func (s *Store) newEntry(c toolgate.Call, d toolgate.Decision) (*entryRow, error) {
	if c.ID == "" {
		return nil, fmt.Errorf("audit: call has no id")
	}
	args := c.Args
	if s.o.Redact != nil && args != nil {
		args = s.o.Redact(args)
	}
	if args == nil {
		args = map[string]any{}
	}
	ab, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("audit: encode args of %s: %w", c.ID, err)
	}
	// _meta goes upstream with the arguments, so it is recorded as they
	// are: redacted, and not at all where only their hash is kept. A call
	// without _meta (most) records nothing for it.
	var meta json.RawMessage
	if len(c.Meta) > 0 && !s.o.ArgsHashOnly {
		m := c.Meta
		if s.o.Redact != nil {
			m = s.o.Redact(m)
		}
		if meta, err = json.Marshal(m); err != nil {
			return nil, fmt.Errorf("audit: encode _meta of %s: %w", c.ID, err)
		}
	}
	now := utc(s.o.Now())
	received := utc(c.Time)
	if received.IsZero() {
		received = now
	}
	if s.o.RedactText != nil {
		d.Reason, d.Error = s.o.RedactText(d.Reason), s.o.RedactText(d.Error)
		shadow := make([]toolgate.ShadowResult, len(d.Shadow))
		for i, sr := range d.Shadow {
			sr.Reason, sr.Error = s.o.RedactText(sr.Reason), s.o.RedactText(sr.Error)
			shadow[i] = sr
		}
		if len(shadow) > 0 {
			d.Shadow = shadow
		}
	}
	e := Entry{
		ID: c.ID, ReceivedAt: received, DecidedAt: now,
		Client: c.Client, Model: c.Model, Principal: c.Principal, Session: c.SessionID,
		Server: c.Server, ServerVersion: c.ServerVersion, Tool: c.Tool, Name: c.Name, Kind: entryKind(c.Kind), SchemaHash: c.SchemaHash,
		Annotations: c.Annotations, Args: ab, ArgsHash: argsHash(ab), Meta: meta, Confidence: c.Confidence,
		RulesVersion: d.Version, RulesLabel: d.Label, Rule: d.Rule, Action: d.Action, Reason: d.Reason,
		AutoApproved: d.AutoApproved, Shadow: d.Shadow, EvalError: d.Error, Sandbox: d.Sandbox, ToolgateVersion: s.o.ToolgateVersion,
		ConfidenceEffect: cmp.Or(d.ConfidenceEffect, toolgate.ConfidenceNone),
	}
	if s.o.ArgsHashOnly {
		e.Args = nil
	}
	r, err := s.encodeEntry(e, initialStatus(d.Action), now.UnixNano())
	if r != nil && d.Action == toolgate.Review {
		r.policy = d.Review
		if r.argsMAC, err = s.argsMAC(c.Args, c.Meta); err != nil {
			return nil, err
		}
	}
	return r, err
}

// newEntryRow is e's row (no event body); Args are {} when there are none
// and no hash stands for them.
func newEntryRow(e Entry, status string) *entryRow {
	r := &entryRow{e: e, status: status}
	switch {
	case !argsStored(e.Args) && e.ArgsHash != "":
		r.e.Args = nil // only their hash is stored
	case len(e.Args) == 0:
		r.e.Args = json.RawMessage("{}")
	}
	return r
}

// encodeEntry encodes e's decision event. e.Args must be json.Marshal's
// encoding of the arguments (as Begin and Import make them), with ArgsHash
// their hash: the body holds those bytes and the hash is derived from them.
func (s *Store) encodeEntry(e Entry, status string, at int64) (*entryRow, error) {
	r := newEntryRow(e, status)
	r.at = at
	// The decision event carries the arguments: it alone makes the
	// decision durable, and the row is projected from it.
	var err error
	r.body, err = encodeEvent(&event{Kind: kindDecision, ID: e.ID, At: at, Status: status, Decision: &r.e, cx: -1})
	if err == nil {
		c := ctxOf(&r.e)
		r.ctxBody, err = encodeEvent(&event{Kind: kindContext, context: &c})
	}
	if err != nil {
		return nil, fmt.Errorf("audit: encode decision of %s: %w", e.ID, err)
	}
	return r, nil
}

// begin records r's decision event and its row together (a decision
// whose row carries more than its event: a review's policy and MAC).
func (w *wtx) begin(r *entryRow) error {
	if err := w.appendDecision(r, false); err != nil {
		return err
	}
	n, err := w.insertEntry(w.head, &r.e, r.status)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: begin %s: the call is already recorded", ErrState, r.e.ID)
	}
	return w.setReview(r.e.ID, r)
}

// beginHot records r's decision event alone; its row is projected later.
func (w *wtx) beginHot(r *entryRow) error {
	if _, ok := w.unprojected(r.e.ID); ok {
		return fmt.Errorf("%w: begin %s: the call is already recorded", ErrState, r.e.ID)
	}
	if err := w.appendDecision(r, true); err != nil {
		return err
	}
	w.stage(projItem{id: r.e.ID, status: r.status, entry: r})
	return nil
}

// beginSpooled chains a spooled decision, staged for the projection. Its
// Begin returned, so its call may have run: the event is kept whatever the
// log holds (a second decision for an id is the projection's and Verify's
// to report, not a reason to drop a durable record).
func (w *wtx) beginSpooled(r *entryRow) error {
	if err := w.appendDecision(r, false); err != nil {
		return err
	}
	w.stage(projItem{id: r.e.ID, status: r.status, entry: r})
	return nil
}

// Begin records call c and its decision d, and returns once the decision is
// committed: status started (allow), refused (deny) or pending (review).
// Arguments pass through Options.Redact first. An error means nothing was
// recorded and the call must not run. An allowed or denied call's decision
// is made durable by one append to the event log.
func (s *Store) Begin(ctx context.Context, c toolgate.Call, d toolgate.Decision) error {
	r, err := s.newEntry(c, d)
	if err != nil {
		return err
	}
	if d.Action == toolgate.Review {
		return s.write(ctx, func(w *wtx) error { return w.begin(r) })
	}
	if s.spool.on() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("audit: write: %w", err)
		}
		rec := &spoolRecord{kind: kindDecision, id: r.e.ID, status: r.status, at: r.at, body: r.body, ctx: r.ctxBody}
		return s.spoolAppend(rec, r.status, func(w *wtx) error { return w.beginSpooled(r) })
	}
	return s.writeHot(ctx, func(w *wtx) error { return w.beginHot(r) })
}

// Resolve records a review's verdict for call id and moves it from pending
// to started (approved) or refused, returning once committed.
//
// If a verdict was already stored (SubmitVerdict from any process, or an
// earlier Resolve), that verdict wins: Resolve only finalizes the status.
// The call is started only when both the stored verdict and v approve; if
// v approves but the stored verdict does not, the call is recorded as
// refused and Resolve returns ErrVerdictConflict, so the gate denies.
//
// Resolve returns nil for an approval only when it moved the call from
// pending to started, in its own write transaction: the gate runs the
// call on that nil, so an approval of a call already ended (started,
// refused, granted) or of a review another process took over
// (AdoptOrphanReviews) is an error and changes nothing (see
// runnableBy). Resolving an already-ended call with a denial is a no-op.
func (s *Store) Resolve(ctx context.Context, id string, v toolgate.Verdict) error {
	at := utc(s.o.Now())
	if v.DecidedAt.IsZero() {
		v.DecidedAt = at
	}
	err := s.write(ctx, func(w *wtx) error {
		cs, err := w.state(id)
		if err != nil {
			return err
		}
		if v.Approved {
			if err := cs.runnableBy(id, w.s.o.Owner); err != nil {
				return err
			}
		}
		if cs.verdict != nil {
			status := toolgate.StatusRefused
			if cs.verdict.Approved && v.Approved {
				status = toolgate.StatusStarted
			}
			var conflict error
			if v.Approved && !cs.verdict.Approved {
				conflict = fmt.Errorf("%w: call %s was denied by %s via %s", ErrVerdictConflict, id, cs.verdict.Reviewer, cs.verdict.Channel)
			}
			if cs.status != toolgate.StatusPending {
				return nil // a denial of an ended call: it stays as it ended
			}
			w.s.o.Logger.Debug("audit: finalizing stored verdict", "call_id", id, "status", status)
			if err := w.setStatus(id, status); err != nil {
				return err
			}
			if err := w.notify(id); err != nil { // the review has ended
				return err
			}
			w.result = conflict
			return w.appendEvent(&event{Kind: kindStatus, ID: id, At: at.UnixNano(), Status: status})
		}
		if cs.status != toolgate.StatusPending {
			return fmt.Errorf("%w: resolve %s: status is %s, not pending", ErrState, id, cs.status)
		}
		if why := selfApproval(cs.principal, v); why != "" {
			v.Approved, v.Reason = false, "refused: "+why
			w.result = fmt.Errorf("%w: %s", toolgate.ErrSelfApproval, why)
		}
		status := toolgate.StatusRefused
		if v.Approved {
			status = toolgate.StatusStarted
		}
		return w.verdict(id, at.UnixNano(), status, newReview(v, cs.decidedAt))
	})
	return err
}

// runnableBy returns nil when process owner may start call id on an
// approval: the call is pending and its review is still owner's. A review
// another process took over (its holder was stalled past its lease) is
// that process's to end: an approval there becomes a grant for the
// agent's retry (status granted), or, answered before the takeover, the
// call is refused. Starting it here as well would run one approval twice,
// or run a call the log says never ran. Like any other state check, it
// is read in the write transaction that would start the call.
func (cs *callState) runnableBy(id, owner string) error {
	taken := func(what string) error {
		return fmt.Errorf("%w: call %s: %s", toolgate.ErrTakenOver, id, what)
	}
	switch {
	case cs.status == toolgate.StatusPending && cs.owner == owner:
		return nil
	case cs.status == toolgate.StatusPending:
		return taken("another toolgate process holds its review now")
	case cs.status == toolgate.StatusGranted:
		return taken("its approval became a grant for the agent's retry")
	case cs.status == toolgate.StatusRefused && cs.verdict != nil && !cs.verdict.Approved && cs.verdict.Channel != toolgate.ChannelExpired:
		return fmt.Errorf("%w: call %s was denied by %s via %s", ErrVerdictConflict, id, cs.verdict.Reviewer, cs.verdict.Channel)
	case cs.status == toolgate.StatusRefused:
		return taken("another toolgate process ended its review") // ExpireOrphanReviews
	}
	return fmt.Errorf("%w: resolve %s: status is %s, not pending", ErrState, id, cs.status)
}

// verdict chains verdict r of call id, which leaves it in status, and
// records it on the call's row.
func (w *wtx) verdict(id string, at int64, status string, r *Review) error {
	if err := w.appendEvent(&event{Kind: kindVerdict, ID: id, At: at, Status: status, Verdict: r}); err != nil {
		return err
	}
	return w.setVerdict(id, status, r, w.head)
}

func newReview(v toolgate.Verdict, decidedAt int64) *Review {
	d := utc(v.DecidedAt)
	return &Review{
		Approved: v.Approved, Reviewer: v.Reviewer, Channel: v.Channel, Reason: v.Reason, DecidedAt: d,
		TimeToDecision: d.Sub(time.Unix(0, decidedAt)).Truncate(time.Millisecond),
	}
}

// appendOutcome chains outcome o of call id, staged for the projection.
func (w *wtx) appendOutcome(id string, at int64, body []byte, o *toolgate.Outcome) error {
	if err := w.appendBody(id, kindOutcome, at, body); err != nil {
		return err
	}
	w.stage(projItem{id: id, status: o.Status, outcome: o})
	return nil
}

// Finish records the outcome of a forwarded (started) call. It does not wait
// for the commit: the call has already run, so nothing waits on the outcome
// being durable, and the agent gets its result one commit sooner. The
// outcome is committed right behind, with whatever else is queued; Flush
// waits for it, Close commits it. If it cannot be written (or the call is
// not started), the failure is logged and the row stays "started", as a
// crash would leave it (CloseInterrupted closes it later). o.Status must
// be StatusOK, StatusToolError, StatusFailed or StatusCancelled, or
// StatusRefused for an approved call the gate did not forward after all;
// a zero FinishedAt means now.
func (s *Store) Finish(ctx context.Context, id string, o toolgate.Outcome) error {
	switch o.Status {
	case toolgate.StatusOK, toolgate.StatusToolError, toolgate.StatusFailed, toolgate.StatusCancelled, toolgate.StatusRefused:
	default:
		return fmt.Errorf("%w: finish %s: outcome status %q is not ok, tool_error, failed, cancelled or refused", ErrState, id, o.Status)
	}
	at := utc(s.o.Now())
	if o.FinishedAt.IsZero() {
		o.FinishedAt = at
	}
	o.FinishedAt = utc(o.FinishedAt)
	if s.o.RedactText != nil && o.Error != "" {
		// An upstream's error may quote what it was sent, or where.
		o.Error = s.o.RedactText(o.Error)
	}
	// The event is at the finish: its body then holds no time of its own.
	at = o.FinishedAt
	// Encode here, not in the writer, which every write waits behind.
	body, err := encodeEvent(&event{Kind: kindOutcome, ID: id, At: at.UnixNano(), Status: o.Status, Outcome: &o})
	if err != nil {
		return fmt.Errorf("audit: encode outcome of %s: %w", id, err)
	}
	apply := func(w *wtx) error {
		if own, ok := w.stagedStatus(id); ok && own == toolgate.StatusStarted {
			// Decided in this transaction: no other process has seen the
			// call, so nothing can have closed it.
			return w.appendOutcome(id, at.UnixNano(), body, &o)
		}
		if own, ok := w.unprojected(id); ok && own == toolgate.StatusStarted {
			// Started in this process's log: the outcome is appended
			// unless calls shows another status (another process closed
			// the call as interrupted), which the check below reports.
			appended, err := w.appendUnless(id, kindOutcome, at.UnixNano(), body, toolgate.StatusStarted)
			if err != nil {
				return err
			}
			if appended {
				w.stage(projItem{id: id, status: o.Status, outcome: &o})
				return nil
			}
		}
		status, err := w.status(id)
		if err != nil {
			return err
		}
		switch status {
		case toolgate.StatusStarted:
		case toolgate.StatusInterrupted:
			// One outcome per call: the log keeps interrupted (recover.go).
			return fmt.Errorf("%w: finish %s: its outcome (%s) came after it was closed as interrupted; not recorded", ErrState, id, o.Status)
		default:
			return fmt.Errorf("%w: finish %s: status is %s, not started", ErrState, id, status)
		}
		return w.appendOutcome(id, at.UnixNano(), body, &o)
	}
	if s.spool.on() {
		rec := &spoolRecord{kind: kindOutcome, id: id, status: o.Status, at: at.UnixNano(), body: body}
		err := s.spoolAppend(rec, o.Status, apply)
		if !errors.Is(err, errNotSpooled) {
			if err != nil {
				s.outcomeWritten(0, err) // else counted once imported
			}
			return err
		}
	}
	return s.writeBehind("outcome of "+id, true, apply)
}
