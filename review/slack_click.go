package review

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/toolgate/toolgate"
)

// Why a click changed nothing, as logged (key "why") and passed to
// SlackOptions.OnRefusedClick.
const (
	RefusedNotApprover    = "not_approver"
	RefusedAlreadyDecided = "already_decided"
	RefusedExpired        = "expired"
	RefusedUnknownReview  = "unknown_review"
	RefusedBadSignature   = "bad_signature"
	RefusedStaleRequest   = "stale_request"
	// RefusedPolicy: the review's rule wants another approver, or answers
	// from another channel.
	RefusedPolicy = "policy"
	// RefusedSelfApproval: the approver made the call (or is not mapped
	// to a principal, see SlackOptions.Users).
	RefusedSelfApproval = "self_approval"
)

// handleInteraction acts on a click or a submitted Deny form. It never
// fails the caller: problems are logged and, where a person can act on
// them, told to the clicker ephemerally.
func (sc *slackChannel) handleInteraction(ctx context.Context, cb slack.InteractionCallback) {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
	case slack.InteractionTypeViewSubmission:
		sc.handleSubmission(ctx, cb)
		return
	default:
		return
	}
	for _, a := range cb.ActionCallback.BlockActions {
		switch a.ActionID {
		case ActionApprove, ActionDeny, ActionApproveSession:
			sc.handleClick(ctx, cb, a)
			return
		case ActionViewArgs:
			sc.showArgs(ctx, cb, a.Value)
			return
		}
	}
}

// refused records a click that changed nothing: a Warn line with stable
// keys, and OnRefusedClick.
func (sc *slackChannel) refused(id, user, why, msg string) {
	sc.log().Warn("review click refused: "+msg, "call_id", id, "slack_user", user, "why", why)
	if sc.o.OnRefusedClick != nil {
		sc.o.OnRefusedClick(id, user, why)
	}
}

// handleClick acts on Approve, Approve for this session and Deny. Deny on
// a review still waiting opens the Deny form (see denyClick); on a message
// posted before the form existed, it denies at once with the reason typed
// into the message.
func (sc *slackChannel) handleClick(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	id, asked := sessionValue(a.Value)
	user := cb.User.ID
	if id == "" {
		return
	}
	if !sc.approver(ctx, user) {
		sc.refused(id, user, RefusedNotApprover, "not an approver")
		sc.ephemeral(ctx, cb, "You are not on toolgate's approver list, so your click was not counted. The review is still waiting for an approver.")
		return
	}
	var session time.Duration
	if a.ActionID == ActionApproveSession {
		var ok bool
		if session, ok = sc.sessionGrant(ctx, cb, id, asked); !ok {
			return
		}
	}
	v := toolgate.Verdict{Approved: a.ActionID != ActionDeny, Reviewer: user, Channel: toolgate.ChannelSlack}
	switch {
	case !v.Approved:
		reason, old := inlineReason(cb)
		if !old {
			// A review no longer waiting is answered below, as any late
			// click is.
			if c, waiting := sc.waitingCall(ctx, id); waiting {
				sc.denyClick(ctx, cb, c)
				return
			}
		}
		v.Reason = reason
	case session > 0:
		v.Reason = "approved for the rest of the session, for " + session.String()
	}
	sc.record(ctx, cb, id, v, session, a.ActionID)
}

// record stores v, an approver's answer to call id given by a click or a
// Deny form (named action, for the log), and tells the approver when it
// changed nothing (cb says where: the clicked message, or the one the form
// was opened from). It reports whether v was stored as the verdict. An
// approval for a session issues its grant.
func (sc *slackChannel) record(ctx context.Context, cb slack.InteractionCallback, id string, v toolgate.Verdict, session time.Duration, action string) bool {
	user := v.Reviewer
	v.ReviewerUser = sc.o.Users[user]
	log := sc.log().With("call_id", id, "slack_user", user, "action", action)
	ok, err := sc.s.submit(ctx, id, v)
	switch {
	case errors.Is(err, toolgate.ErrSelfApproval):
		// The store chained the refusal with the call.
		log.Warn("review click refused: "+err.Error(), "why", RefusedSelfApproval)
		sc.ephemeral(ctx, cb, "Your approval was not counted: "+err.Error()+". The review is still waiting.")
		return false
	case errors.Is(err, toolgate.ErrMoreApprovals):
		log.Info("slack approval counted; more approvers needed", "err", err)
		sc.ephemeral(ctx, cb, "Your approval counts ("+err.Error()+"). The review waits for another approver.")
		return false
	case errors.Is(err, toolgate.ErrSameApprover), errors.Is(err, toolgate.ErrChannelRefused):
		sc.refused(id, user, RefusedPolicy, err.Error())
		sc.ephemeral(ctx, cb, "Your click was not counted: "+err.Error()+".")
		return false
	}
	if err != nil {
		if _, _, rerr := sc.s.o.Store.ReviewVerdict(ctx, id); rerr != nil {
			// Not in this toolgate's audit DB: another instance's message,
			// or a deleted DB.
			sc.refused(id, user, RefusedUnknownReview, "unknown review")
			sc.ephemeral(ctx, cb, "This review is not known to this toolgate (it may belong to another instance). Your click changed nothing.")
			return false
		}
		log.Error("storing slack verdict failed", "err", err)
		sc.ephemeral(ctx, cb, "toolgate could not record your answer ("+err.Error()+"). Try again, or use `toolgate review` on the host.")
		return false
	}
	if ok {
		log.Info("slack verdict stored", "approved", v.Approved)
		if v.Approved && session > 0 {
			if gid, err := sc.s.o.Store.GrantSession(context.WithoutCancel(ctx), id, session); err != nil {
				log.Error("issuing the session grant failed; later calls are reviewed", "err", err)
			} else {
				log.Info("session grant issued", "grant", gid, "ttl", session)
			}
		}
		return true
	}
	// Late click: already decided or expired.
	msg, why := "This review is no longer waiting for an answer.", RefusedAlreadyDecided
	if won, decided, err := sc.s.o.Store.ReviewVerdict(ctx, id); err == nil && decided {
		msg = "This review was already closed: " + plainOutcome(won) + "."
		if !won.Approved && (won.Channel == toolgate.ChannelTimeout || won.Channel == toolgate.ChannelExpired || won.Channel == toolgate.ChannelCancelled) {
			why = RefusedExpired
		}
		sc.closeStale(ctx, cb, won)
	}
	sc.refused(id, user, why, "the review was already closed")
	sc.ephemeral(ctx, cb, msg+" Your click changed nothing.")
	return false
}

// closeStale closes the clicked message when it still offers buttons for a
// review that ended with won: its update at the end failed, or it went to
// another process. The message is rebuilt from what Slack sent with the
// click: the buttons (and the reason input of a message posted before the
// Deny form) give way to the outcome.
func (sc *slackChannel) closeStale(ctx context.Context, cb slack.InteractionCallback, won toolgate.Verdict) {
	var kept []slack.Block
	live := false
	for _, b := range cb.Message.Blocks.BlockSet {
		switch b := b.(type) {
		case *slack.ActionBlock:
			if strings.HasPrefix(b.BlockID, blockActionsPrefix) {
				live = true
				continue
			}
		case *slack.InputBlock:
			if b.BlockID == BlockReason {
				continue
			}
		}
		kept = append(kept, b)
	}
	ts := cb.Container.MessageTs
	if !live || ts == "" {
		return
	}
	kept = append(kept, slack.NewSectionBlock(mrkdwn(sc.outcomeText(won)), nil, nil))
	err := sc.call(context.WithoutCancel(ctx), "chat.update", 0, func(ctx context.Context) error {
		_, _, _, err := sc.api.UpdateMessageContext(ctx, clickChannel(cb), ts,
			slack.MsgOptionText("toolgate: review "+outcomeWord(won), false), slack.MsgOptionBlocks(kept...))
		return err
	})
	if err != nil {
		sc.log().Error("closing a stale slack review message failed", "slack_ts", ts, "err", slackHint(err))
		return
	}
	sc.log().Info("closed a slack review message left with live buttons", "slack_ts", ts)
}

// showArgs posts the full, redacted arguments of call id in the thread of
// the clicked message, once; a later click is pointed at the thread.
// Anyone who can see the message may ask: it shows nothing the message
// does not, only more of it.
func (sc *slackChannel) showArgs(ctx context.Context, cb slack.InteractionCallback, id string) {
	sc.mu.Lock()
	lr, ok := sc.live[id]
	posted := ok && lr.argsPosted
	if ok {
		lr.argsPosted = true // claimed: a concurrent click is pointed at the thread
	}
	sc.mu.Unlock()
	if posted {
		sc.ephemeral(ctx, cb, "The full arguments are in this message's thread.")
		return
	}
	if !ok {
		// Not posted by this process: look for it among the pending reviews.
		if p, pending, _ := sc.pending(ctx, id); pending {
			if p.ArgsNotStored {
				sc.ephemeral(ctx, cb, "This call's arguments are not stored (audit store_args: hash), so only the toolgate process that posted this message could show them whole, and it is gone. Deny the call unless the message shows them all.")
				return
			}
			lr = &liveReview{c: p.Call, d: p.Decision}
		}
		if lr == nil {
			sc.ephemeral(ctx, cb, "This review is no longer waiting. Its call is in the audit log: `toolgate audit show "+escape(id)+"` on toolgate's host.")
			return
		}
	}
	r := sc.s.o.Redactor
	ts := cb.Container.MessageTs
	var meta any
	if len(lr.c.Meta) > 0 {
		meta = r.Value(lr.c.Meta)
	}
	err := sc.call(context.WithoutCancel(ctx), "chat.postMessage", 0, func(ctx context.Context) error {
		_, _, err := sc.api.PostMessageContext(ctx, clickChannel(cb),
			slack.MsgOptionTS(ts),
			slack.MsgOptionText("Full arguments of "+code(r.String(lr.c.Name))+" (decision "+escape(id)+")", false),
			slack.MsgOptionBlocks(append(lookalikeBlocks(lr.c, lr.d, r), fullArgsBlocks(r.Value(lr.c.Args), meta)...)...),
			slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
		return err
	})
	if err != nil {
		sc.mu.Lock()
		if ok {
			lr.argsPosted = false
		}
		sc.mu.Unlock()
		sc.log().Warn("posting full arguments failed", "call_id", id, "err", slackHint(err))
		sc.ephemeral(ctx, cb, "toolgate could not post the full arguments. `toolgate audit show "+escape(id)+"` on toolgate's host shows them.")
		return
	}
	sc.log().Info("full arguments posted in the review's thread", "call_id", id, "slack_user", cb.User.ID)
}

// sessionGrant is how long an "Approve for this session" click on review
// id grants: the length the button asked for (asked; zero for none),
// capped at the session_grant of the review's rule, which is looked up
// (toolgate.Pending.SessionGrant) and never taken from the click: the
// button's value comes back from the client and can be forged. It reports
// false, having told the clicker, when the rule allows no session grant or
// the review cannot be looked up. A review no longer pending gets zero,
// and the click is then answered as any late click is.
func (sc *slackChannel) sessionGrant(ctx context.Context, cb slack.InteractionCallback, id string, asked time.Duration) (time.Duration, bool) {
	p, pending, err := sc.pending(ctx, id)
	switch {
	case err != nil:
		sc.log().Error("looking up a review for a session approval failed", "call_id", id, "err", err)
		sc.ephemeral(ctx, cb, "toolgate could not look up this review ("+err.Error()+"). Your click was not counted; try again.")
		return 0, false
	case !pending:
		return 0, true
	}
	limit := p.SessionGrant(ctx, sc.s.o.Decide)
	if limit <= 0 {
		sc.refused(id, cb.User.ID, RefusedPolicy, "the rule allows no approval for the session")
		sc.ephemeral(ctx, cb, "This review's rule does not allow an approval for the session (no session_grant). Your click was not counted; the review is still waiting.")
		return 0, false
	}
	if asked <= 0 || asked > limit {
		return limit, true
	}
	return asked, true
}

// pending is review id as this process holds it (posted here) or, posted
// by another process, as the store lists it; false when it is not pending.
func (sc *slackChannel) pending(ctx context.Context, id string) (toolgate.Pending, bool, error) {
	sc.mu.Lock()
	lr, ok := sc.live[id]
	sc.mu.Unlock()
	if ok {
		return toolgate.Pending{Call: lr.c, Decision: lr.d}, true, nil
	}
	ps, err := sc.s.o.Store.PendingReviews(ctx)
	if err != nil {
		return toolgate.Pending{}, false, err
	}
	for _, p := range ps {
		if p.Call.ID == id {
			return p, true, nil
		}
	}
	return toolgate.Pending{}, false, nil
}

// sessionValue splits a button's value: the call id and, for
// ActionApproveSession, the session grant's length the button asks for
// ("<id>|<seconds>"), which sessionGrant caps at the rule's.
func sessionValue(v string) (id string, session time.Duration) {
	id, secs, ok := strings.Cut(v, "|")
	if !ok {
		return v, 0
	}
	n, err := strconv.Atoi(secs)
	if err != nil || n <= 0 {
		return id, 0
	}
	return id, time.Duration(n) * time.Second
}
