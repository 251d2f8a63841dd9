// Package review asks a human about calls whose decision is review: Slack
// interactive messages, a terminal on the same machine, or MCP elicitation to
// the agent's own user. No answer in time means deny.
//
// A [Service] implements the gate's Reviewer. The gate's Recorder stores the
// pending review first; Review then asks the configured channels and waits
// for the first verdict, which lands in the [Store] (the audit DB) whichever
// channel or process it came from:
//
//	svc, err := review.New(review.Options{
//		Store:    auditStore, // *audit.Store
//		Slack:    &review.SlackOptions{BotToken: bot, AppToken: app, Channel: "#approvals", Approvers: []string{"U012ABC"}},
//		Channels: []string{"slack", "cli"},
//		Timeout:  5 * time.Minute,
//	})
//	_ = svc.Recover(ctx) // expire reviews a previous process left pending
//	go svc.Run(ctx)      // Socket Mode
//	http.Handle("/slack/interactions", svc.InteractionHandler()) // http mode
//
// Setup steps for the Slack app are in docs/review.md.
package review
