// Package rules decides every tool call: it compiles ordered CEL rules from a
// YAML file into a Set and evaluates calls against it, failing closed.
// It knows nothing of MCP transports, Slack or SQLite.
package rules
