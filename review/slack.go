package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/tools"
)

// Slack receive modes.
const (
	SlackModeSocket = "socket"
	SlackModeHTTP   = "http"
)

// Block and action IDs of the review message. The buttons' value is the
// call id.
const (
	ActionApprove = "approve"
	ActionDeny    = "deny"
	// BlockReason and ActionReason identify the deny-reason text input.
	BlockReason  = "toolgate_reason"
	ActionReason = "reason"
	// blockActionsPrefix + call id is the actions block's id.
	blockActionsPrefix = "toolgate_review:"
)

// Defaults for SlackOptions.
const (
	DefaultSlackAPITimeout = 10 * time.Second
	DefaultGroupCacheTTL   = 5 * time.Minute
	// argsPreviewLimit is how much of the pretty-printed, redacted
	// arguments the message shows.
	argsPreviewLimit = 600
)

// SlackOptions configures the Slack review channel.
type SlackOptions struct {
	// BotToken (xoxb-...) posts and updates messages. Required.
	BotToken string
	// AppToken (xapp-..., scope connections:write) opens the Socket Mode
	// connection; required in socket mode.
	AppToken string
	// SigningSecret verifies requests to InteractionHandler; required in
	// http mode.
	SigningSecret string
	// Mode is how clicks arrive: "socket" (default) or "http".
	Mode string
	// Channel is where reviews are posted: a channel ID or "#name". The bot
	// must be a member. Required.
	Channel string
	// Approvers are the Slack user IDs allowed to answer.
	Approvers []string
	// ApproverGroups are user group IDs (S...) whose members may answer;
	// needs the usergroups:read scope. At least one approver or group is
	// required: toolgate never lets just anyone in the channel approve.
	ApproverGroups []string
	// APIURL overrides Slack's API base URL (tests); it must end in "/".
	APIURL string
	// HTTPClient is used for API calls; nil means http.DefaultClient.
	HTTPClient *http.Client
	// APITimeout bounds each API call; zero means DefaultSlackAPITimeout.
	APITimeout time.Duration
	// GroupCacheTTL is how long user group members are cached; zero means
	// DefaultGroupCacheTTL.
	GroupCacheTTL time.Duration
}

type slackChannel struct {
	s   *Service
	o   SlackOptions
	api *slack.Client

	mu     sync.Mutex
	groups map[string]groupMembers
}

type groupMembers struct {
	users   []string
	fetched time.Time
}

func newSlackChannel(s *Service, o SlackOptions) (*slackChannel, error) {
	if o.Mode == "" {
		o.Mode = SlackModeSocket
	}
	switch {
	case o.BotToken == "":
		return nil, errors.New("review: slack: no bot token")
	case o.Channel == "":
		return nil, errors.New("review: slack: no channel")
	case len(o.Approvers) == 0 && len(o.ApproverGroups) == 0:
		return nil, errors.New("review: slack: no approvers or approver groups (refusing to let anyone in the channel approve)")
	case o.Mode == SlackModeSocket && o.AppToken == "":
		return nil, errors.New("review: slack: socket mode needs an app-level token (xapp-...)")
	case o.Mode == SlackModeHTTP && o.SigningSecret == "":
		return nil, errors.New("review: slack: http mode needs the signing secret")
	case o.Mode != SlackModeSocket && o.Mode != SlackModeHTTP:
		return nil, fmt.Errorf("review: slack: mode must be socket or http, got %q", o.Mode)
	}
	if o.APITimeout <= 0 {
		o.APITimeout = DefaultSlackAPITimeout
	}
	if o.GroupCacheTTL <= 0 {
		o.GroupCacheTTL = DefaultGroupCacheTTL
	}
	opts := []slack.Option{}
	if o.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(o.APIURL))
	}
	if o.HTTPClient != nil {
		opts = append(opts, slack.OptionHTTPClient(o.HTTPClient))
	}
	if o.AppToken != "" {
		opts = append(opts, slack.OptionAppLevelToken(o.AppToken))
	}
	return &slackChannel{s: s, o: o, api: slack.New(o.BotToken, opts...), groups: map[string]groupMembers{}}, nil
}

func (sc *slackChannel) socketMode() bool { return sc.o.Mode == SlackModeSocket }

func (sc *slackChannel) log() *slog.Logger { return sc.s.o.Logger }

// post sends the review message and returns where it landed.
func (sc *slackChannel) post(ctx context.Context, c tools.Call, d rules.Decision, expires time.Time) (channel, ts string, err error) {
	ctx, cancel := context.WithTimeout(ctx, sc.o.APITimeout)
	defer cancel()
	blocks := sc.reviewBlocks(c, d, expires, nil)
	channel, ts, err = sc.api.PostMessageContext(ctx, sc.o.Channel,
		slack.MsgOptionText(sc.fallbackText(c, nil), false),
		slack.MsgOptionBlocks(blocks...),
		slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
	if err != nil {
		return "", "", slackHint(fmt.Errorf("chat.postMessage to %s: %w", sc.o.Channel, err))
	}
	return channel, ts, nil
}

// update rewrites the review message in place to show verdict v.
func (sc *slackChannel) update(ctx context.Context, channel, ts string, c tools.Call, d rules.Decision, expires time.Time, v *Verdict) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sc.o.APITimeout)
	defer cancel()
	_, _, _, err := sc.api.UpdateMessageContext(ctx, channel, ts,
		slack.MsgOptionText(sc.fallbackText(c, v), false),
		slack.MsgOptionBlocks(sc.reviewBlocks(c, d, expires, v)...))
	if err != nil {
		return slackHint(fmt.Errorf("chat.update: %w", err))
	}
	return nil
}

// slackHint adds what to do for the errors people hit while setting up.
func slackHint(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "not_in_channel"):
		return fmt.Errorf("%w (invite the bot to the channel: /invite @toolgate)", err)
	case strings.Contains(msg, "channel_not_found"):
		return fmt.Errorf("%w (check review.slack.channel, and invite the bot if the channel is private)", err)
	case strings.Contains(msg, "invalid_auth"), strings.Contains(msg, "not_authed"):
		return fmt.Errorf("%w (check the bot token)", err)
	case strings.Contains(msg, "missing_scope"):
		return fmt.Errorf("%w (the app lacks a scope; see docs/review.md)", err)
	}
	return err
}

// fallbackText is the notification text; names are escaped so a tool
// called "<!channel>" cannot ping anyone.
func (sc *slackChannel) fallbackText(c tools.Call, v *Verdict) string {
	name, id := escape(truncate(c.Name, 200)), escape(truncate(c.ID, 100))
	if v == nil {
		return fmt.Sprintf("toolgate: review requested for %s (decision %s)", name, id)
	}
	return fmt.Sprintf("toolgate: %s %s (decision %s)", name, outcomeWord(*v), id)
}

func outcomeWord(v Verdict) string {
	switch {
	case v.Approved:
		return "approved"
	case v.Channel == ChannelTimeout || v.Channel == ChannelExpired:
		return "expired"
	case v.Channel == ChannelCancelled:
		return "cancelled"
	default:
		return "denied"
	}
}

// reviewBlocks builds the message: a header, the call's details, the
// redacted arguments, and either the reason input and buttons (v == nil) or
// the outcome.
func (sc *slackChannel) reviewBlocks(c tools.Call, d rules.Decision, expires time.Time, v *Verdict) []slack.Block {
	r := sc.s.o.Redactor
	txt := func(s string) string { return escape(r.String(s)) }
	mrkdwn := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
	}
	plain := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}

	title := "Review requested: " + c.Name
	if v != nil {
		title = strings.ToUpper(outcomeWord(*v)[:1]) + outcomeWord(*v)[1:] + ": " + c.Name
	}
	blocks := []slack.Block{slack.NewHeaderBlock(plain(truncate(r.String(title), 145)))}

	summary := fmt.Sprintf("An agent wants to run *%s* (`%s` on server `%s`).", txt(c.Name), txt(c.Tool), txt(c.Server))
	if d.Rule != "" {
		summary += fmt.Sprintf("\n*Rule:* `%s`", txt(d.Rule))
	}
	if d.Reason != "" {
		summary += " — " + txt(d.Reason)
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(truncate(summary, 2900)), nil, nil))

	conf := "unknown"
	if c.Confidence != nil {
		conf = strconv.FormatFloat(*c.Confidence, 'f', 2, 64)
	}
	fields := []*slack.TextBlockObject{
		mrkdwn("*Client:*\n" + orDash(truncate(txt(peer(c.Client)), 200))),
		mrkdwn("*Model:*\n" + orDash(truncate(txt(peer(c.Model)), 200))),
		mrkdwn("*Confidence:*\n" + conf),
		mrkdwn("*Runs in:*\n" + escape(sandboxText(d.Sandbox))),
		mrkdwn("*Decision ID:*\n`" + truncate(txt(c.ID), 100) + "`"),
	}
	if !expires.IsZero() {
		fields = append(fields, mrkdwn("*Expires:*\n"+slackDate(expires)))
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn("*Arguments:*\n```"+argsPreview(r.Value(c.Args))+"```"), nil, nil))

	if v == nil {
		in := slack.NewInputBlock(BlockReason, plain("Reason (optional; sent to the agent on Deny)"), nil,
			slack.NewPlainTextInputBlockElement(plain("Why deny?"), ActionReason))
		in.Optional = true
		blocks = append(blocks, in,
			slack.NewActionBlock(blockActionsPrefix+c.ID,
				slack.NewButtonBlockElement(ActionApprove, c.ID, plain("Approve")).WithStyle(slack.StylePrimary),
				slack.NewButtonBlockElement(ActionDeny, c.ID, plain("Deny")).WithStyle(slack.StyleDanger)))
		return blocks
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(outcomeText(*v)), nil, nil))
	return blocks
}

// outcomeText is the line that replaces the buttons once a review ends.
func outcomeText(v Verdict) string {
	who := v.Reviewer
	if v.Channel == ChannelSlack && who != "" {
		who = "<@" + escape(who) + ">"
	} else if who != "" {
		who = "`" + escape(who) + "`"
	}
	when := "at " + slackDate(v.DecidedAt)
	var s string
	switch {
	case v.Approved:
		s = fmt.Sprintf(":white_check_mark: *Approved* by %s via %s %s", orDash(who), v.Channel, when)
	case v.Channel == ChannelTimeout:
		s = ":hourglass: *Expired*: nobody answered in time; the call was denied " + when
	case v.Channel == ChannelExpired:
		s = ":hourglass: *Expired (toolgate restarted)*: the call was denied " + when
	case v.Channel == ChannelCancelled:
		s = ":no_entry_sign: *Cancelled*: the agent stopped waiting; the call was denied " + when
	case who != "":
		s = fmt.Sprintf(":x: *Denied* by %s via %s %s", who, v.Channel, when)
	default:
		s = fmt.Sprintf(":x: *Denied* (%s) %s", v.Channel, when)
	}
	if v.Reason != "" && v.Channel != ChannelExpired {
		s += "\n*Reason:* " + escape(truncate(v.Reason, 500))
	}
	return s
}

func peer(p tools.Peer) string {
	if p.Version == "" {
		return p.Name
	}
	return p.Name + " " + p.Version
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// slackDate renders t in each reader's time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>", t.Unix(), t.UTC().Format(time.RFC3339))
}

// escape makes s safe inside Slack mrkdwn.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "```", "`\u200b``").Replace(s)
}

// argsPreview pretty-prints args (already redacted), truncated, for mrkdwn;
// escaping can grow the text, so it is cut again to fit a section.
func argsPreview(args any) string { return truncate(escape(argsPreviewPlain(args)), 2800) }

// argsPreviewPlain pretty-prints args (already redacted) and truncates them.
func argsPreviewPlain(args any) string {
	b, err := json.MarshalIndent(args, "", "  ")
	if err != nil {
		return "(arguments could not be shown)"
	}
	s := string(b)
	if len(s) > argsPreviewLimit {
		s = truncate(s, argsPreviewLimit) + fmt.Sprintf("\n… (%d bytes in all)", len(b))
	}
	return s
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// approver reports whether Slack user id may answer reviews.
func (sc *slackChannel) approver(ctx context.Context, user string) bool {
	if user == "" {
		return false
	}
	if slices.Contains(sc.o.Approvers, user) {
		return true
	}
	for _, g := range sc.o.ApproverGroups {
		if slices.Contains(sc.groupMembers(ctx, g), user) {
			return true
		}
	}
	return false
}

// groupMembers returns user group g's members, cached for GroupCacheTTL.
// On an API failure it keeps using the last known members (none if never
// fetched: fail closed).
func (sc *slackChannel) groupMembers(ctx context.Context, g string) []string {
	now := sc.s.o.Now()
	sc.mu.Lock()
	cached, ok := sc.groups[g]
	sc.mu.Unlock()
	if ok && now.Sub(cached.fetched) < sc.o.GroupCacheTTL {
		return cached.users
	}
	ctx, cancel := context.WithTimeout(ctx, sc.o.APITimeout)
	defer cancel()
	users, err := sc.api.GetUserGroupMembersContext(ctx, g)
	if err != nil {
		sc.log().Warn("reading slack user group failed; using last known members", "group", g, "err", slackHint(err))
		return cached.users
	}
	sc.mu.Lock()
	sc.groups[g] = groupMembers{users: users, fetched: now}
	sc.mu.Unlock()
	return users
}

// handleInteraction acts on a click. It never fails the caller: problems are
// logged and, where a person can act on them, told to the clicker
// ephemerally.
func (sc *slackChannel) handleInteraction(ctx context.Context, cb slack.InteractionCallback) {
	if cb.Type != slack.InteractionTypeBlockActions {
		return
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a.ActionID != ActionApprove && a.ActionID != ActionDeny {
			continue
		}
		sc.handleClick(ctx, cb, a)
		return
	}
}

func (sc *slackChannel) handleClick(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	id, user := a.Value, cb.User.ID
	log := sc.log().With("call_id", id, "reviewer", user, "action", a.ActionID)
	if id == "" {
		return
	}
	if !sc.approver(ctx, user) {
		log.Warn("review click refused: not an approver")
		sc.ephemeral(ctx, cb, "You are not on toolgate's approver list, so your click was not counted. The review is still waiting for an approver.")
		return
	}
	v := Verdict{Approved: a.ActionID == ActionApprove, Reviewer: user, Channel: ChannelSlack}
	if !v.Approved {
		v.Reason = denyReason(cb)
	}
	ok, err := sc.s.submit(ctx, id, v)
	if err != nil {
		if _, _, rerr := sc.s.o.Store.ReviewVerdict(ctx, id); rerr != nil {
			// Not in this toolgate's audit DB: another instance's message,
			// or a deleted DB.
			log.Warn("click on an unknown review", "err", err)
			sc.ephemeral(ctx, cb, "This review is not known to this toolgate (it may belong to another instance). Your click changed nothing.")
			return
		}
		log.Error("storing slack verdict failed", "err", err)
		sc.ephemeral(ctx, cb, "toolgate could not record your answer ("+err.Error()+"). Try again, or use `toolgate review` on the host.")
		return
	}
	if ok {
		log.Info("slack verdict stored", "approved", v.Approved)
		return
	}
	// Late click: already decided, expired, or unknown.
	msg := "This review is no longer waiting for an answer."
	if won, decided, err := sc.s.o.Store.ReviewVerdict(ctx, id); err == nil && decided {
		msg = "This review was already closed: " + plainOutcome(won) + "."
	}
	log.Info("late review click answered", "msg", msg)
	sc.ephemeral(ctx, cb, msg+" Your click changed nothing.")
}

func plainOutcome(v Verdict) string {
	s := outcomeWord(v)
	if v.Reviewer != "" {
		who := v.Reviewer
		if v.Channel == ChannelSlack {
			who = "<@" + who + ">"
		}
		s += " by " + who
	}
	return s + " via " + v.Channel
}

// denyReason reads the reason input from the click's message state.
func denyReason(cb slack.InteractionCallback) string {
	if cb.BlockActionState == nil {
		return ""
	}
	if in, ok := cb.BlockActionState.Values[BlockReason][ActionReason]; ok {
		return strings.TrimSpace(in.Value)
	}
	return ""
}

func (sc *slackChannel) ephemeral(ctx context.Context, cb slack.InteractionCallback, text string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sc.o.APITimeout)
	defer cancel()
	ch := cb.Channel.ID
	if ch == "" {
		ch = cb.Container.ChannelID
	}
	if _, err := sc.api.PostEphemeralContext(ctx, ch, cb.User.ID, slack.MsgOptionText(text, false)); err != nil {
		sc.log().Warn("ephemeral reply failed", "user", cb.User.ID, "err", slackHint(err))
	}
}

// InteractionHandler returns the HTTP endpoint for Slack's interactivity
// requests (http mode; mount it at the Request URL configured in the app).
// It verifies the request signature with the signing secret and rejects
// forged or stale (more than 5 minutes old) requests with 401. Without Slack
// or a signing secret every request gets 404.
func (s *Service) InteractionHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.slack == nil || s.slack.o.SigningSecret == "" {
			http.NotFound(w, r)
			return
		}
		s.slack.serveHTTP(w, r)
	})
}

const maxInteractionBody = 1 << 20

func (sc *slackChannel) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxInteractionBody+1))
	if err != nil || len(body) > maxInteractionBody {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	sv, err := slack.NewSecretsVerifier(r.Header, sc.o.SigningSecret)
	if err == nil {
		_, _ = sv.Write(body) // an hmac write cannot fail
		err = sv.Ensure()
	}
	if err != nil {
		sc.log().Warn("slack interaction rejected", "err", err, "remote", r.RemoteAddr)
		http.Error(w, "invalid or stale signature", http.StatusUnauthorized)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	cb, err := slack.InteractionCallbackParse(r)
	if err != nil {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	// Slack wants an answer within 3 s; the store write is local and the
	// API calls are bounded by APITimeout.
	sc.handleInteraction(r.Context(), cb)
	w.WriteHeader(http.StatusOK)
}

// runSocketMode keeps a Socket Mode connection open until ctx ends.
func (sc *slackChannel) runSocketMode(ctx context.Context) error {
	smc := socketmode.New(sc.api, socketmode.OptionLog(slogWriter{sc.log()}))
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-smc.Events:
				sc.socketEvent(ctx, smc, evt, &wg)
			}
		}
	})
	for {
		err := smc.RunContext(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && (strings.Contains(err.Error(), "invalid_auth") || strings.Contains(err.Error(), "not_authed") ||
			strings.Contains(err.Error(), "token_revoked") || strings.Contains(err.Error(), "404")) {
			return fmt.Errorf("review: slack socket mode: %w (check the app-level token and that Socket Mode is enabled)", err)
		}
		sc.log().Warn("slack socket mode stopped; reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}

func (sc *slackChannel) socketEvent(ctx context.Context, smc *socketmode.Client, evt socketmode.Event, wg *sync.WaitGroup) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		sc.log().Info("slack socket mode connected")
	case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth, socketmode.EventTypeIncomingError:
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
