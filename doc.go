// Package toolgate holds the domain types every part of toolgate shares: a
// Call as the gate sees it, the rules' Decision on it, a reviewer's
// Verdict, the Outcome the audit log records, and the Result that goes
// back to the agent. It does no I/O and imports only the standard
// library, so the pipeline (package gate) and its tests compile without
// the MCP library, SQLite or Slack; the packages that do I/O (audit,
// review, rules, tools, mcp) depend on it, never the other way round.
package toolgate
