// Package config reads toolgate's configuration file.
//
// The file is YAML; JSON is accepted too (it is YAML), so the "mcpServers"
// block of a Cursor .cursor/mcp.json or a Claude config can be pasted as is:
//
//	servers:            # alias: mcpServers
//	  fs:
//	    command: npx
//	    args: ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]
//	    env: {FOO: bar}
//	  remote:
//	    url: https://example.com/mcp   # streamable HTTP; type: sse for legacy SSE
//	    headers: {Authorization: "Bearer ${TOKEN}"}
//	    timeout: 60s
//	    max_message_bytes: 8MiB        # a larger answer fails its call
//	    max_requests: 8                # sent at once (default: no limit); the rest wait their turn
//	    max_requests_per_principal: 4  # of those, one user's at most (default: all)
//	    prefix: false                  # expose its tools under their own names
//	naming: {separator: "__", prefix: true}
//	workspace: {enabled: true, root: ".", command_timeout: 30s}
//	model: {name: "", version: ""}
//	http: {auth_token_env: TOOLGATE_AUTH_TOKEN, allowed_origins: ["http://localhost"], max_request_bytes: 4194304, session_idle: 30m,
//	       max_sessions: 4096, max_sessions_per_principal: 64, max_requests_per_principal: 32, max_request_values: 20000,
//	       conn_idle: 2m, body_timeout: 1m, max_connections: 0}
//	rules: {file: "", label: ""}
//	audit: {path: "", redact_keys: [], checkpoint: {key_file: "", interval: 10m, publish: []}}
//	# or, shared by replicas: audit: {driver: postgres, dsn: "postgres://toolgate@db:5432/toolgate", password_env: PGPASSWORD, lease_ttl: 30s}
//	# or, shared by replicas: audit: {driver: postgres, dsn: "postgres://toolgate@db:5432/toolgate", password_env: PGPASSWORD}
//	review:
//	  timeout: 5m
//	  channels: [slack, cli, elicitation]
//	  slack: {channel: "#approvals", mode: socket}
//
// Decoding is strict: unknown keys, wrong types and bad values are all
// reported at once, each as "FILE:LINE:COL: message" (see [Error]). The
// package is pure data: it reads no environment variables; "${VAR}"
// references are left for the caller to expand.
package config
