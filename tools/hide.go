package tools

import (
	"encoding/base64"
	"strings"

	"github.com/toolgate/toolgate/redact"
)

// hider hides a stdio server's secrets in what it prints to stderr and in
// its errors, before the text reaches the agent, the audit log or
// toolgate's log: the values toolgate gave it, wherever they appear, and
// whatever looks like a credential to the redactor (what it prints may
// hold secrets of its own). A remote server's are its URL's and headers'
// (remoteURL.scrub); its hider is the zero one, which hides nothing.
type hider struct {
	values []string
	r      *redact.Redactor // nil: the zero hider
}

// newHider is the hider of u's secrets (secretValues).
func newHider(u Upstream) hider {
	if u.Command == "" {
		return hider{}
	}
	r := redact.New(nil)
	return hider{values: secretValues(u, r), r: r}
}

// hide returns s with each value replaced by redactedValue, then redacted.
func (h hider) hide(s string) string {
	if h.r == nil {
		return s
	}
	for _, v := range h.values {
		s = strings.ReplaceAll(s, v, redactedValue)
	}
	return h.r.String(s)
}

// secretValues are the values given to stdio server u that a hider hides:
// its configured environment's (a token passed as GITHUB_TOKEN=${...},
// which a server may print when it fails), and its arguments that r reads
// as credentials (--token=ghp_..., and the value after such an option's =).
func secretValues(u Upstream, r *redact.Redactor) []string {
	var out []string
	hide := func(v string) {
		if len(v) >= minHeaderValue {
			out = append(out, v)
		}
	}
	for _, kv := range u.Env {
		_, v, _ := strings.Cut(kv, "=")
		hide(v)
	}
	for _, a := range u.Args {
		if r.String(a) == a {
			continue
		}
		hide(a)
		if _, v, ok := strings.Cut(a, "="); ok {
			hide(v)
		}
	}
	return out
}

// headerSecrets are the texts of a configured header value v that an
// error may quote apart from it: each word after the first ("Bearer
// sk-..." quoted as "the key sk-... has expired"), and a Basic
// credential's decoded user:password, and password.
func headerSecrets(v string) []string {
	out := []string{v}
	f := strings.Fields(v)
	if len(f) < 2 {
		return out
	}
	out = append(out, f[1:]...)
	if strings.EqualFold(f[0], "basic") {
		if d, err := base64.StdEncoding.DecodeString(f[1]); err == nil {
			out = append(out, string(d))
			if _, pw, ok := strings.Cut(string(d), ":"); ok {
				out = append(out, pw)
			}
		}
	}
	return out
}
