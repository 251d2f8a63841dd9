// Package tools holds the catalog of tools toolgate re-exposes: the upstream
// MCP servers and the built-in workspace tools. It forwards each
// toolgate.Call the gate lets through to the tool that runs it.
package tools
