package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/toolgate/toolgate"
)

// The Deny form: Deny opens a modal (views.open with the click's
// trigger_id) asking for a reason; its submission, a view_submission
// interaction, records the denial as a Deny click did before.
const (
	// ViewDeny is the Deny form's callback_id.
	ViewDeny = "toolgate_deny"
	// BlockDenyReason and ActionDenyReason identify the form's reason
	// input. The reason is required: Slack does not let the form be
	// submitted empty.
	BlockDenyReason  = "toolgate_deny_reason"
	ActionDenyReason = "reason"
)

// Limits of the Deny form.
const (
	// denyReasonMax is the most characters the reason input takes, and
	// the most bytes of a submitted reason that are kept.
	denyReasonMax = 1000
	// denyFormBudget bounds views.open, its retries included: the click's
	// trigger_id is only good for 3 s after the click.
	denyFormBudget = 2500 * time.Millisecond
	// maxPrivateMetadata is Slack's limit on a view's private_metadata.
	maxPrivateMetadata = 3000
	// modalTitleMax is Slack's limit on a modal's title, in characters.
	modalTitleMax = 24
)

// denyMeta is the Deny form's private_metadata: the call the form denies
// and the review message it was opened from (where replies to the
// submitter go). Slack keeps it out of the reviewer's sight and sends it
// back with the submission.
type denyMeta struct {
	ID      string `json:"call_id"`
	Channel string `json:"channel,omitempty"`
	TS      string `json:"message_ts,omitempty"`
}

var (
	slackIDPattern = regexp.MustCompile(`^[A-Z0-9]{2,32}$`)
	slackTSPattern = regexp.MustCompile(`^[0-9]{1,12}\.[0-9]{1,9}$`)
)

// parseDenyMeta decodes and checks a submitted form's private_metadata:
// exactly the fields denyMeta has, a call id of printable text, a Slack
// channel ID and message ts when present.
func parseDenyMeta(s string) (denyMeta, error) {
	var m denyMeta
	if len(s) > maxPrivateMetadata {
		return m, fmt.Errorf("%d bytes, more than Slack allows", len(s))
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return denyMeta{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return denyMeta{}, errors.New("data after the object")
	}
	switch {
	case m.ID == "" || len(m.ID) > 200 || !utf8.ValidString(m.ID) ||
		strings.ContainsFunc(m.ID, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }):
		return denyMeta{}, fmt.Errorf("bad call id %q", truncate(m.ID, 100))
	case m.Channel != "" && !slackIDPattern.MatchString(m.Channel):
		return denyMeta{}, fmt.Errorf("bad channel %q", truncate(m.Channel, 40))
	case m.TS != "" && !slackTSPattern.MatchString(m.TS):
		return denyMeta{}, fmt.Errorf("bad message ts %q", truncate(m.TS, 40))
	}
	return m, nil
}

// inlineReason reports whether a Deny click came from a message posted
// before the Deny form, which carries its own reason input, and the reason
// typed into it. Slack sends such a message's input state with every
// click, an empty input included; the message itself is checked too.
func inlineReason(cb slack.InteractionCallback) (reason string, old bool) {
	if cb.BlockActionState != nil {
		if in, ok := cb.BlockActionState.Values[BlockReason][ActionReason]; ok {
			return strings.TrimSpace(in.Value), true
		}
	}
	for _, b := range cb.Message.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok && in.BlockID == BlockReason {
			return "", true
		}
	}
	return "", false
}

// waitingCall returns call id when its review is still waiting for an
// answer in the store, and the call as far as this process knows it (zero
// when it did not post it and cannot find it among the pending reviews).
func (sc *slackChannel) waitingCall(ctx context.Context, id string) (toolgate.Call, bool) {
	if _, decided, err := sc.s.o.Store.ReviewVerdict(ctx, id); err != nil || decided {
		return toolgate.Call{}, false
	}
	if p, ok, _ := sc.pending(ctx, id); ok {
		return p.Call, true
	}
	return toolgate.Call{ID: id}, true
}

// denyClick handles an approver's Deny click on a review still waiting:
// it opens the Deny form, whose submission records the denial. When the
// form cannot be opened (an expired trigger_id, Slack failing past the
// retries), the call is denied at once without a reason and the clicker
// told so.
func (sc *slackChannel) denyClick(ctx context.Context, cb slack.InteractionCallback, c toolgate.Call) {
	log := sc.log().With("call_id", c.ID, "slack_user", cb.User.ID, "action", ActionDeny)
	err := sc.openDenyForm(ctx, cb, c)
	if err == nil {
		log.Info("deny form opened")
		return
	}
	log.Warn("opening the deny form failed; denying without a reason", "err", err)
	v := toolgate.Verdict{Reviewer: cb.User.ID, Channel: toolgate.ChannelSlack}
	if sc.record(ctx, cb, c.ID, v, 0, ActionDeny) {
		sc.ephemeral(ctx, cb, "Denied, without a reason: toolgate could not open the form asking for one ("+err.Error()+").")
	}
}

// openDenyForm opens the Deny form for call c for the clicker of cb.
func (sc *slackChannel) openDenyForm(ctx context.Context, cb slack.InteractionCallback, c toolgate.Call) error {
	meta, err := json.Marshal(denyMeta{ID: c.ID, Channel: clickChannel(cb), TS: cb.Container.MessageTs})
	if err != nil {
		return err
	}
	if len(meta) > maxPrivateMetadata {
		return fmt.Errorf("the call id is too long for the form (%d bytes)", len(c.ID))
	}
	view := sc.denyForm(c, string(meta))
	err = sc.call(ctx, "views.open", denyFormBudget, func(ctx context.Context) error {
		_, err := sc.api.OpenViewContext(ctx, cb.TriggerID, view)
		return err
	})
	if err != nil {
		return slackHint(fmt.Errorf("views.open: %w", err))
	}
	return nil
}

// denyForm is the Deny form for call c: what is denied, and a required
// multi-line reason, which the agent is sent and the audit log keeps.
func (sc *slackChannel) denyForm(c toolgate.Call, meta string) slack.ModalViewRequest {
	r := sc.s.o.Redactor
	what := "this call"
	if c.Name != "" {
		what = fmt.Sprintf("%s (%s on server %s)", code(r.String(c.Name)), code(r.String(c.Tool)), code(r.String(c.Server)))
	}
	name := c.Name
	if name == "" {
		name = "tool call"
	}
	intro := fmt.Sprintf("Deny %s, decision `%s`. The call does not run; the agent is told it was denied, and why.",
		what, escape(truncate(c.ID, 100)))
	in := slack.NewPlainTextInputBlockElement(plain("Why deny? e.g. use the staging cluster instead"), ActionDenyReason)
	in.Multiline = true
	in.MaxLength = denyReasonMax
	in.FocusOnLoad = true
	reason := slack.NewInputBlock(BlockDenyReason, plain("Reason"),
		plain("Sent to the agent and kept in the audit log (secrets are masked)."), in)
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plain(runeCut("Deny "+r.String(name), modalTitleMax)),
		Blocks:          slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(mrkdwn(truncate(intro, sectionLimit)), nil, nil), reason}},
		Submit:          plain("Deny"),
		Close:           plain("Cancel"),
		PrivateMetadata: meta,
		CallbackID:      ViewDeny,
	}
}

// runeCut cuts s to at most n characters, the last one "…" when cut.
func runeCut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	rs := []rune(s)
	return string(rs[:n-1]) + "…"
}

// handleSubmission acts on a submitted Deny form: the same approver check,
// store write and replies as a Deny click. Other views are ignored.
// Either way the submission is answered with an empty acknowledgement
// (which closes the form) by the caller.
func (sc *slackChannel) handleSubmission(ctx context.Context, cb slack.InteractionCallback) {
	if cb.View.CallbackID != ViewDeny {
		return
	}
	user := cb.User.ID
	m, err := parseDenyMeta(cb.View.PrivateMetadata)
	if err != nil {
		sc.log().Warn("deny form submission ignored: bad private_metadata", "slack_user", truncate(user, 100), "err", err)
		return
	}
	// Replies go to the submitter in the review message's channel.
	reply := slack.InteractionCallback{User: cb.User,
		Container: slack.Container{ChannelID: m.Channel, MessageTs: m.TS}}
	if !sc.approver(ctx, user) {
		sc.refused(m.ID, user, RefusedNotApprover, "not an approver")
		sc.ephemeral(ctx, reply, "You are not on toolgate's approver list, so your denial was not counted. The review is still waiting for an approver.")
		return
	}
	v := toolgate.Verdict{Reviewer: user, Channel: toolgate.ChannelSlack, Reason: formReason(cb.View.State)}
	if v.Reason == "" {
		// Slack requires the input, so only blanks get here: the reviewer
		// still chose to deny.
		sc.log().Info("deny form submitted with a blank reason", "call_id", m.ID, "slack_user", user)
	}
	sc.record(ctx, reply, m.ID, v, 0, ViewDeny)
}

// formReason reads the reason from a submitted Deny form's state.
func formReason(st *slack.ViewState) string {
	if st == nil {
		return ""
	}
	in, ok := st.Values[BlockDenyReason][ActionDenyReason]
	if !ok {
		return ""
	}
	return truncate(strings.TrimSpace(in.Value), denyReasonMax)
}
