package audit

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/toolgate/toolgate"
)

// kindApproval chains one approver's approval of a review that needs more
// than one; the row is unchanged until the last one (SubmitVerdict).
const kindApproval = "approval"

// setReview records, for a call decided review, what its review demands
// (rules.ReviewPolicy) and the MAC that binds a grant to its arguments.
// Calls not reviewed skip it.
func (w *wtx) setReview(id string, r *entryRow) error {
	if r.e.Action != toolgate.Review {
		return nil
	}
	p := r.policy
	_, err := w.s.conn.ExecContext(w.ctx, `UPDATE calls SET review_needs = ?, review_channels = ?, args_mac = ? WHERE id = ?`,
		max(p.Approvals, 1), strings.Join(p.Channels, ","), r.argsMAC, id)
	if err != nil {
		return fmt.Errorf("audit: record review policy of %s: %w", id, err)
	}
	return nil
}

// admit checks a human verdict v on call id against its review policy. It
// returns the verdict to store, or nil when v must not end the review:
// err then says why (a channel the rule does not accept, the same approver
// twice, more approvers needed, each a review error the caller shows).
// Denials end the review at once; approvals count until enough distinct
// approvers have approved, each chained as it comes. Approvers are
// distinct people: by principal user where the channel names one
// (approvedBy), else by reviewer name.
func (w *wtx) admit(id string, cs callState, v toolgate.Verdict, at time.Time) (*toolgate.Verdict, error) {
	var (
		needs    int
		channels string
		status   = cs.status
	)
	if err := w.s.conn.QueryRowContext(w.ctx, `SELECT review_needs, review_channels FROM calls WHERE id = ?`, id).
		Scan(&needs, &channels); err != nil {
		return nil, fmt.Errorf("audit: review policy of %s: %w", id, err)
	}
	if !toolgate.IsReviewChannel(v.Channel) {
		return &v, nil
	}
	if why := selfApproval(cs.principal, v); why != "" {
		r := &Review{Reviewer: v.Reviewer, Channel: v.Channel, Reason: why, DecidedAt: at}
		if err := w.appendEvent(&event{Kind: kindClick, ID: id, At: at.UnixNano(), Status: status, Verdict: r}); err != nil {
			return nil, err
		}
		w.result = fmt.Errorf("%w: %s", toolgate.ErrSelfApproval, why)
		return nil, nil
	}
	if channels != "" && !slices.Contains(strings.Split(channels, ","), v.Channel) {
		return nil, fmt.Errorf("%w: this review accepts answers via %s only, not %s", toolgate.ErrChannelRefused, strings.ReplaceAll(channels, ",", ", "), v.Channel)
	}
	if !v.Approved || needs <= 1 {
		return &v, nil
	}
	// An elicitation is answered in the agent's own client, by the
	// requester's side (or by the client itself): it is not one of the
	// distinct people a rule asks for.
	if v.Channel == toolgate.ChannelElicitation {
		return nil, fmt.Errorf("%w: an answer in the agent's own client (elicitation) does not count toward the %d approvals this review needs", toolgate.ErrChannelRefused, needs)
	}
	if err := w.approvedBy(id, v); err != nil {
		return nil, err
	}
	res, err := w.s.conn.ExecContext(w.ctx, `INSERT INTO review_approvals (call_id, approver, channel, at, approver_user) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING`,
		id, v.Reviewer, v.Channel, at.UnixNano(), v.ReviewerUser)
	if err != nil {
		return nil, fmt.Errorf("audit: record approval of %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("%w: %s already approved; another approver must", toolgate.ErrSameApprover, v.Reviewer)
	}
	r := newReview(v, 0)
	if err := w.appendEvent(&event{Kind: kindApproval, ID: id, At: at.UnixNano(), Status: status, Verdict: r}); err != nil {
		return nil, err
	}
	rows, err := w.s.conn.QueryContext(w.ctx, `SELECT approver FROM review_approvals WHERE call_id = ? ORDER BY at`, id)
	if err != nil {
		return nil, fmt.Errorf("audit: approvals of %s: %w", id, err)
	}
	defer rows.Close()
	var who []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		who = append(who, a)
	}
	if len(who) < needs {
		w.result = fmt.Errorf("%w: %d of %d approvals (%s)", toolgate.ErrMoreApprovals, len(who), needs, strings.Join(who, ", "))
		return nil, nil
	}
	v.Reviewer = strings.Join(who, " + ")
	return &v, nil
}

// approvedBy returns ErrSameApprover when the person behind approval v
// (v.ReviewerUser, compared as selfApproval compares) has already approved
// call id under another reviewer name: a mapped Slack user and the same
// user in the web UI are one approver, not two. An approval whose channel
// cannot name its person is told apart by its reviewer name only.
func (w *wtx) approvedBy(id string, v toolgate.Verdict) error {
	if v.ReviewerUser == "" {
		return nil
	}
	rows, err := w.s.conn.QueryContext(w.ctx, `SELECT approver, channel, approver_user FROM review_approvals WHERE call_id = ? AND approver_user <> ''`, id)
	if err != nil {
		return fmt.Errorf("audit: approvals of %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var approver, channel, user string
		if err := rows.Scan(&approver, &channel, &user); err != nil {
			return fmt.Errorf("audit: approvals of %s: %w", id, err)
		}
		if strings.EqualFold(user, v.ReviewerUser) {
			return fmt.Errorf("%w: already approved by %s (as %s via %s); another approver must", toolgate.ErrSameApprover, user, approver, channel)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: approvals of %s: %w", id, err)
	}
	return nil
}

// selfApproval says why approval v of a call made by caller must be
// refused, "" if it may count. Only a caller with personal credentials
// can be told from a reviewer; for those, an approver who is the caller,
// or whom the channel cannot name as a principal (a Slack user not
// mapped), is refused. Denials always count.
func selfApproval(caller toolgate.Principal, v toolgate.Verdict) string {
	if !v.Approved || !caller.Personal() || !toolgate.IsReviewChannel(v.Channel) {
		return ""
	}
	switch {
	case v.ReviewerUser == "":
		return fmt.Sprintf("the call was made by %s, and toolgate cannot tell whether %s is %s (map Slack users to principals in review.slack.users)",
			caller.User, orUnknown(v.Reviewer), caller.User)
	// Names that differ only in case (Alice@example.com, alice@example.com)
	// are taken to be one person: refusing one approval too many is safe.
	case strings.EqualFold(v.ReviewerUser, caller.User):
		return fmt.Sprintf("%s made this call and cannot approve it; another reviewer must", caller.User)
	}
	return ""
}

func orUnknown(s string) string {
	if s == "" {
		return "the reviewer"
	}
	return s
}
