package review

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"
)

// escalate mentions who (Slack user IDs U..., user group IDs S...) in the
// thread of a review message still waiting: the rule's escalate_to, once
// escalate_after has passed.
func (sc *slackChannel) escalate(ctx context.Context, channel, ts string, who []string, what string) error {
	var mentions []string
	for _, id := range who {
		switch {
		case strings.HasPrefix(id, "S"):
			mentions = append(mentions, "<!subteam^"+escape(id)+">")
		default:
			mentions = append(mentions, "<@"+escape(id)+">")
		}
	}
	text := fmt.Sprintf("%s: this review is still waiting for an answer (%s).", strings.Join(mentions, " "), code(sc.s.o.Redactor.String(what)))
	return sc.call(ctx, "chat.postMessage", 0, func(ctx context.Context) error {
		_, _, err := sc.api.PostMessageContext(ctx, channel, slack.MsgOptionTS(ts), slack.MsgOptionText(text, false),
			slack.MsgOptionDisableLinkUnfurl())
		return err
	})
}
