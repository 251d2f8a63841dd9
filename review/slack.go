package review

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/toolgate/toolgate"
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
	// ActionApproveSession approves the call and, for as long as its rule's
	// session_grant allows, the same tool for the rest of the session. Its
	// button's value is "<call id>|<seconds>".
	ActionApproveSession = "approve_session"
	// ActionViewArgs posts the call's full (redacted) arguments in the
	// message's thread; anyone who can see the message may press it.
	ActionViewArgs = "view_args"
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
	// Users maps Slack user IDs to principal users (tools.Principal.User):
	// who each approver is when they call tools themselves. An approval
	// of a call made with personal credentials, by a Slack user not
	// mapped here or mapped to the caller, is refused.
	Users map[string]string
	// APIURL overrides Slack's API base URL (tests); it must end in "/".
	APIURL string
	// HTTPClient is used for API calls; nil means http.DefaultClient.
	HTTPClient *http.Client
	// APITimeout bounds each API call, its retries included (a 429 is
	// tried again after its Retry-After, a 5xx or network error after a
	// backoff); posting a review is also bounded by the review's time
	// left. Zero means DefaultSlackAPITimeout.
	APITimeout time.Duration
	// GroupCacheTTL is how long user group members are cached; zero means
	// DefaultGroupCacheTTL.
	GroupCacheTTL time.Duration
	// Requester says who asks, for reviewers: the OS user and host the
	// agent runs as and on, its workspace. Shown in the message when set.
	Requester string
	// OnRefusedClick, when set, is called for every click that changed
	// nothing: why is "not_approver", "already_decided", "expired" (the
	// review timed out, was cancelled or expired at a restart),
	// "unknown_review" (not in this toolgate's store), "bad_signature" or
	// "stale_request" (http mode; callID and user are then what the
	// unverified request claimed, possibly empty). The same is logged at
	// Warn with the keys call_id, slack_user and why. It is called from
	// the goroutine handling the click and must not block for long.
	OnRefusedClick func(callID, user, why string)
}

type slackChannel struct {
	s   *Service
	o   SlackOptions
	api *slack.Client

	health socketHealth
	// reconnectGrace is how long a review waits for a lost Socket Mode
	// connection before it skips Slack; retryFirstWait is the first
	// backoff of a failed API call. Tests shorten them.
	reconnectGrace time.Duration
	retryFirstWait time.Duration

	mu     sync.Mutex
	groups map[string]groupMembers
	// live are the reviews this process posted and has not closed, by
	// call id, for "View full arguments".
	live map[string]*liveReview
}

// liveReview is a review message this process posted.
type liveReview struct {
	c toolgate.Call
	d toolgate.Decision
	// argsPosted is set once its full arguments are in its thread.
	argsPosted bool
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
	return &slackChannel{s: s, o: o, api: slack.New(o.BotToken, opts...),
		reconnectGrace: defaultReconnectGrace, retryFirstWait: defaultRetryFirstWait,
		groups: map[string]groupMembers{}, live: map[string]*liveReview{}}, nil
}

func (sc *slackChannel) socketMode() bool { return sc.o.Mode == SlackModeSocket }

func (sc *slackChannel) log() *slog.Logger { return sc.s.o.Logger }

// post sends the review message and returns where it landed. It fails at
// once, with an error wrapping errSlackDown, while clicks cannot reach
// toolgate (see reachable). A rate limit or a Slack or network failure is
// retried within APITimeout and the review's time left; a ctx that ends
// stops the retries, not an attempt under way (a message that reached
// Slack must be known, so that the review's end updates it).
func (sc *slackChannel) post(ctx context.Context, c toolgate.Call, d toolgate.Decision, expires time.Time) (channel, ts string, err error) {
	if err := sc.reachable(ctx); err != nil {
		return "", "", err
	}
	blocks := sc.reviewBlocks(c, d, expires, nil)
	err = sc.call(ctx, "chat.postMessage", expires.Sub(sc.s.o.Now()), func(ctx context.Context) (err error) {
		channel, ts, err = sc.api.PostMessageContext(ctx, sc.o.Channel,
			slack.MsgOptionText(sc.fallbackText(c, nil), false),
			slack.MsgOptionBlocks(blocks...),
			slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
		return err
	})
	if err != nil {
		return "", "", slackHint(fmt.Errorf("chat.postMessage to %s: %w", sc.o.Channel, err))
	}
	sc.mu.Lock()
	sc.live[c.ID] = &liveReview{c: c, d: d}
	sc.mu.Unlock()
	return channel, ts, nil
}

// update rewrites the review message in place to show verdict v, retrying
// as post does (ctx's end does not stop it). When it finally fails the
// message still offers Approve and Deny for a review that has ended: that
// is logged as an error, and a click on it is answered "already decided"
// (and the message closed then, see handleClick).
func (sc *slackChannel) update(ctx context.Context, channel, ts string, c toolgate.Call, d toolgate.Decision, expires time.Time, v *toolgate.Verdict) error {
	if v != nil {
		sc.mu.Lock()
		delete(sc.live, c.ID)
		sc.mu.Unlock()
	}
	err := sc.call(context.WithoutCancel(ctx), "chat.update", 0, func(ctx context.Context) error {
		_, _, _, err := sc.api.UpdateMessageContext(ctx, channel, ts,
			slack.MsgOptionText(sc.fallbackText(c, v), false),
			slack.MsgOptionBlocks(sc.reviewBlocks(c, d, expires, v)...))
		return err
	})
	if err != nil {
		err = slackHint(fmt.Errorf("chat.update: %w", err))
		sc.log().Error("the slack message of an ended review still shows its buttons: updating it failed", "call_id", c.ID,
			"slack_channel", channel, "slack_ts", ts, "err", err)
		return err
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
	users, err := sc.fetchGroup(ctx, g)
	if err != nil {
		sc.log().Warn("reading slack user group failed; using last known members", "group", g, "err", err)
		return cached.users
	}
	return users
}

// fetchGroup reads user group g's members from Slack and caches them.
func (sc *slackChannel) fetchGroup(ctx context.Context, g string) ([]string, error) {
	var users []string
	err := sc.call(ctx, "usergroups.users.list", 0, func(ctx context.Context) (err error) {
		users, err = sc.api.GetUserGroupMembersContext(ctx, g)
		return err
	})
	if err != nil {
		return nil, slackHint(fmt.Errorf("usergroups.users.list %s: %w", g, err))
	}
	sc.mu.Lock()
	sc.groups[g] = groupMembers{users: users, fetched: sc.s.o.Now()}
	sc.mu.Unlock()
	return users, nil
}

func (sc *slackChannel) ephemeral(ctx context.Context, cb slack.InteractionCallback, text string) {
	err := sc.call(context.WithoutCancel(ctx), "chat.postEphemeral", 0, func(ctx context.Context) error {
		_, err := sc.api.PostEphemeralContext(ctx, clickChannel(cb), cb.User.ID, slack.MsgOptionText(text, false))
		return err
	})
	if err != nil {
		sc.log().Warn("ephemeral reply failed", "user", cb.User.ID, "err", slackHint(err))
	}
}

// clickChannel is the channel of the message clicked.
func clickChannel(cb slack.InteractionCallback) string {
	if cb.Channel.ID != "" {
		return cb.Channel.ID
	}
	return cb.Container.ChannelID
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
		why := RefusedBadSignature
		if errors.Is(err, slack.ErrExpiredTimestamp) {
			why = RefusedStaleRequest
		}
		sc.log().Warn("slack interaction rejected", "err", err, "remote", r.RemoteAddr)
		id, user := claimedClick(r, body)
		sc.refused(id, user, why, "the request is not signed by Slack, or is too old")
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

// claimedClick returns the call id and user an unverified interaction
// request claims, for the record of a refused click; empty when it does not
// parse as a click.
func claimedClick(r *http.Request, body []byte) (id, user string) {
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	cb, err := slack.InteractionCallbackParse(req)
	if err != nil {
		return "", ""
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a.ActionID == ActionApprove || a.ActionID == ActionDeny || a.ActionID == ActionApproveSession {
			id, _ = sessionValue(a.Value)
		}
	}
	return truncate(id, 100), truncate(cb.User.ID, 100)
}
