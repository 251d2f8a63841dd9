package config

import (
	"errors"
	"testing"
)

// FuzzLoad checks invariants of Parse on arbitrary input: it never panics,
// returns either a config or an error, and every error is a positioned *Error.
func FuzzLoad(f *testing.F) {
	seeds := []string{
		"",                               // empty file: defaults
		"servers:\n  fs: {command: npx}", // minimal stdio server
		`{"mcpServers": {"a": {"url": "https://h/mcp", "headers": {"A": "b"}}}}`, // pasted JSON
		"servers:\n  a: {comand: x}",              // unknown key
		"review: {timeout: 5 minutes}",            // bad duration
		"servers: [a, b]",                         // wrong kind
		"a: &x [*x]",                              // self-referencing alias
		"servers:\n  a: &s {command: x}\n  b: *s", // alias reuse
		"{{{",        // syntax error
		"---\n---\n", // two documents
		"http: {allowed_origins: [\"http://[::1\"]}", // bad origin
		"servers: {a: {command: x, env: {'1A': b}}}", // bad env name
		"\t- x", // tabs
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg %v, err %v: want exactly one", cfg, err)
		}
		if err != nil {
			for _, e := range flatten(err) {
				var ce *Error
				if !errors.As(e, &ce) {
					t.Fatalf("error without position: %v", e)
				}
				if ce.Pos.File != "f.yaml" || ce.Pos.Line < 1 {
					t.Fatalf("bad position in %q", ce.Error())
				}
			}
			return
		}
		if cfg.Naming.Separator == "" || cfg.HTTP.MaxRequestBytes <= 0 || cfg.Review.Timeout <= 0 {
			t.Fatalf("defaults missing: %+v", cfg)
		}
		for _, s := range cfg.Servers {
			if (s.Command == "") == (s.URL == "") || s.Timeout <= 0 {
				t.Fatalf("invalid server accepted: %+v", s)
			}
		}
	})
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
