package review

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"
)

// ErrSlackAuth is wrapped by CheckSlack's error when Slack refused the bot
// token (invalid_auth, not_authed, token_revoked, ...), so that the caller
// can name where the token came from.
var ErrSlackAuth = errors.New("Slack refused the bot token")

// CheckSlack checks, at start-up, that Slack review can work: the bot token
// is valid (auth.test), the review channel exists and the bot is a member
// of it (conversations.info, or conversations.list for a "#name"), and each
// approver group's members can be read. It returns nil without Slack. An
// error wraps what Slack said; one from a refused token also wraps
// ErrSlackAuth. When the app lacks the scope to look at the channel
// (channels:read, or groups:read for a private channel), the membership
// check is skipped with a warning: the first review's post tells instead.
// Each call is retried like the others (see SlackOptions.APITimeout).
func (s *Service) CheckSlack(ctx context.Context) error {
	sc := s.slack
	if sc == nil {
		return nil
	}
	var who *slack.AuthTestResponse
	err := sc.call(ctx, "auth.test", 0, func(ctx context.Context) (err error) {
		who, err = sc.api.AuthTestContext(ctx)
		return err
	})
	if err != nil {
		if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok && authErrorCode(se.Err) {
			return fmt.Errorf("review: slack: auth.test: %w: %w", ErrSlackAuth, err)
		}
		return fmt.Errorf("review: slack: auth.test: %w", slackHint(err))
	}
	bot := who.User
	if bot == "" {
		bot = "toolgate"
	}
	if err := sc.checkChannel(ctx, bot); err != nil {
		return err
	}
	for _, g := range sc.o.ApproverGroups {
		if _, err := sc.fetchGroup(ctx, g); err != nil {
			return fmt.Errorf("review: slack: approver group %s: %w", g, err)
		}
	}
	s.o.Logger.Info("slack checked", "bot", bot, "bot_user", who.UserID, "team", who.Team, "channel", sc.o.Channel)
	return nil
}

func authErrorCode(code string) bool {
	switch code {
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "not_allowed_token_type":
		return true
	}
	return false
}

// checkChannel checks that the review channel exists and the bot, named
// bot, is in it.
func (sc *slackChannel) checkChannel(ctx context.Context, bot string) error {
	name := sc.o.Channel
	var ch *slack.Channel
	var err error
	if n, ok := strings.CutPrefix(name, "#"); ok {
		ch, err = sc.channelByName(ctx, n)
	} else {
		err = sc.call(ctx, "conversations.info", 0, func(ctx context.Context) (err error) {
			ch, err = sc.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: name})
			return err
		})
	}
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok && se.Err == "missing_scope" {
		sc.log().Warn("cannot check that the bot is in the review channel: the app lacks a scope (add channels:read, and groups:read for a private channel, to have it checked at start)",
			"channel", name, "needed", se.Needed)
		return nil
	}
	if err != nil {
		return fmt.Errorf("review: slack: channel %s: %w", name, slackHint(err))
	}
	if ch == nil {
		return fmt.Errorf("review: slack: channel %s: the bot sees no such channel (check review.slack.channel; a private channel needs the bot invited: /invite @%s)", name, bot)
	}
	if !ch.IsMember {
		shown := name
		if ch.Name != "" {
			shown = "#" + ch.Name
		}
		return fmt.Errorf("review: slack: the bot is not a member of %s: /invite @%s in that channel", shown, bot)
	}
	return nil
}

// channelByName pages through the channels the bot can see for name; nil
// when there is none.
func (sc *slackChannel) channelByName(ctx context.Context, name string) (*slack.Channel, error) {
	params := &slack.GetConversationsParameters{ExcludeArchived: true, Limit: 200,
		Types: []string{"public_channel", "private_channel"}}
	for {
		var page []slack.Channel
		var next string
		err := sc.call(ctx, "conversations.list", 0, func(ctx context.Context) (err error) {
			page, next, err = sc.api.GetConversationsContext(ctx, params)
			return err
		})
		if err != nil {
			return nil, err
		}
		params.Cursor = next
		for i := range page {
			if page[i].Name == name {
				return &page[i], nil
			}
		}
		if params.Cursor == "" {
			return nil, nil
		}
	}
}
