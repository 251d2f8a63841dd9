// Package review asks a human about calls whose decision is review: Slack
// interactive messages, a terminal on the same machine, or MCP elicitation to
// the agent's own user. No answer in time means deny.
package review
