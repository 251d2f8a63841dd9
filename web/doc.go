// Package web is toolgate's web UI for reviewers and the governance
// dashboard, served under /ui/ by `toolgate serve --http` (on the MCP
// listener) and read-only by `toolgate ui --db FILE`.
//
// Pages: the pending review queue (live over server-sent events; Approve
// once, Approve for this session, Deny with a reason), the KPI dashboard
// (audit.Store.Report, the numbers `toolgate audit stats --output json`
// prints), the audit browser (the filters of `audit list`, one call's
// decision, review, grants, outcome and chain position) and the rule
// versions over time.
//
// Security: a reviewer signs in with a credential the MCP edge accepts
// (per-user token, OIDC access token, or the shared token); the browser
// gets only a random session id in an HttpOnly, SameSite=Strict cookie
// (Secure over TLS), and the credential is checked again on every
// request. Every POST carries the session's CSRF token and passes
// net/http's cross-origin check (Sec-Fetch-Site / Origin). Verdicts go
// through audit.Store.SubmitVerdict like a Slack click, so the review
// policy and the refusal of self-approval apply unchanged. Every response
// carries a CSP allowing only this origin's scripts and styles (no inline
// script) and frame-ancestors 'none'. The charting library (uPlot) is
// vendored in assets/vendor (see VENDORED.md) and embedded.
package web
