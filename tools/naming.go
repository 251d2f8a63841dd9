package tools

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Exposed names.
//
// Every name toolgate exposes for an upstream's tool (and, through the same
// function, for its prompts and resources) is valid for the clients agents
// run in: Claude accepts tool names matching ^[a-zA-Z0-9_-]{1,64}$, and
// Cursor warns past 60 characters (its own server key included).
// ExposedName builds it:
//
//  1. The candidate is "<server><separator><name>" when the server is
//     prefixed (the default), else the upstream's name alone.
//  2. A candidate that is already valid (only A-Z a-z 0-9 _ -, at most
//     MaxNameLen bytes) is exposed as it is.
//  3. Any other candidate has every other character (one per UTF-8
//     character: . / space, accents...) replaced by "_", is cut to
//     MaxNameLen-1-NameHashLen bytes, and gets "_" and the first
//     NameHashLen hex digits of the sha256 of the unchanged candidate
//     appended: "fs__files.read" becomes "fs__files_read_3b9c…" (8 digits).
//
// The name depends only on the server, separator, prefix setting and
// upstream name, so it is the same after a restart and whatever else the
// upstreams list. Two candidates that differ get different exposed names
// unless their hashes agree on 32 bits; the catalog refuses any collision
// that remains (see Catalog), naming both servers, rather than shadow a tool.
//
// Engineer D (resources, prompts): expose prompt names and resource names
// with ExposedName too, so one server's tools, prompts and resources are
// renamed alike; resource URIs are not names and stay as they are.

// MaxNameLen is the longest exposed name, in bytes (Claude's limit).
const MaxNameLen = 64

// NameHashLen is how many hex digits of the candidate's sha256 a shortened
// or sanitized name ends with.
const NameHashLen = 8

// ExposedName returns the name under which server's tool (prompt, resource)
// called name is exposed: see the scheme above. sep is the separator
// between server and name, used only when prefix is set.
func ExposedName(server, sep, name string, prefix bool) string {
	candidate := name
	if prefix {
		candidate = server + sep + name
	}
	if ValidName(candidate) {
		return candidate
	}
	var b strings.Builder
	for _, r := range candidate {
		if r < utf8.RuneSelf && nameByte(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	readable := b.String()
	if keep := MaxNameLen - 1 - NameHashLen; len(readable) > keep {
		readable = readable[:keep]
	}
	sum := sha256.Sum256([]byte(candidate))
	return readable + "_" + hex.EncodeToString(sum[:])[:NameHashLen]
}

// ValidName reports whether s can be exposed unchanged: 1 to MaxNameLen
// bytes of A-Z a-z 0-9 _ -.
func ValidName(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return false
		}
	}
	return true
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// NameCollisionError is a name two upstreams' tools (or prompts) would
// both be exposed under. The catalog exposes neither: which one an agent
// meant cannot be told, and exposing either would let a server take
// calls meant for the other's.
type NameCollisionError struct {
	// Kind is "tool" or "prompt".
	Kind string
	// Name is the exposed name.
	Name string
	// Server and Tool are one server and its upstream name for Name,
	// OtherServer and OtherTool another.
	Server, Tool           string
	OtherServer, OtherTool string
}

// Error names both servers and tools, and the way out.
func (e *NameCollisionError) Error() string {
	return fmt.Sprintf("%s name %q is listed by server %q (%s %q) and by server %q (%s %q): neither is exposed; "+
		"set prefix: true on one of the servers to expose its %ss under its name",
		e.Kind, e.Name, e.Server, e.Kind, e.Tool, e.OtherServer, e.Kind, e.OtherTool, e.Kind)
}

// nameClaim is one server's tool or prompt listed under an exposed name.
type nameClaim struct{ exposed, server, name string }

// contested returns the exposed names that more than one server claims,
// and one error for each server claiming a name after the first (in the
// order of claims). A server claiming a name twice is not a collision.
func contested(kind string, claims []nameClaim) (map[string]bool, []*NameCollisionError) {
	first := map[string]nameClaim{}
	out := map[string]bool{}
	var errs []*NameCollisionError
	for _, cl := range claims {
		f, dup := first[cl.exposed]
		switch {
		case !dup:
			first[cl.exposed] = cl
		case f.server != cl.server:
			out[cl.exposed] = true
			errs = append(errs, &NameCollisionError{Kind: kind, Name: cl.exposed, Server: f.server, Tool: f.name, OtherServer: cl.server, OtherTool: cl.name})
		}
	}
	return out, errs
}
