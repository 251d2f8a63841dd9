// Package redact masks secrets (tokens, keys, passwords) in tool arguments,
// messages and logs before they leave toolgate.
// (Placeholder API: the review task replaces this file.)
package redact

// Mask replaces a secret.
const Mask = "[REDACTED]"

// Redactor masks values under secret-looking keys and secret-looking strings.
type Redactor struct{ keys []string }

// New returns a Redactor that also masks values under the given extra keys.
func New(extraKeys []string) *Redactor { return &Redactor{keys: extraKeys} }

// Value returns a deep copy of v (JSON-like: maps, slices, strings, numbers)
// with secrets masked. v is not modified.
func (r *Redactor) Value(v any) any { return v }

// String returns s with secret-looking substrings masked.
func (r *Redactor) String(s string) string { return s }
