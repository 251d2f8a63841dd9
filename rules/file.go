package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/tools/sandbox"
)

// FileVersion is the only rules file format version this package reads.
const FileVersion = 1

// Error is one problem in a rules file, with its position. Parse and Load
// return every Error they find, joined with errors.Join and sorted by
// position; errors.As finds the first one. Errors stop at the caller that
// loads the file (the CLI prints them, hot reload logs them); they never
// reach a Decision.
type Error struct {
	// File is the name given to Parse, or the path given to Load.
	File string
	// Line and Column are 1-based; Column counts characters.
	Line, Column int
	// Rule is the rule's name ("" for file-level problems, "#N" for an unnamed rule).
	Rule string
	// Field is the rule's key the problem is in ("match", "reason_expr", ...), if any.
	Field string
	// Msg says what is wrong.
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// errorList collects Errors and joins them sorted by position.
type errorList []*Error

func (l *errorList) add(file string, n *yaml.Node, rule, field, format string, args ...any) {
	e := &Error{File: file, Rule: rule, Field: field, Msg: fmt.Sprintf(format, args...), Line: 1, Column: 1}
	if n != nil && n.Line > 0 {
		e.Line, e.Column = n.Line, n.Column
	}
	*l = append(*l, e)
}

func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	slices.SortStableFunc(l, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// fileSpec is a rules file as written, before its expressions are compiled.
type fileSpec struct {
	label   string
	def     toolgate.Action
	onError toolgate.Action
	rules   []ruleSpec
	// denyBelow and reviewBelow are the file-level confidence thresholds,
	// which apply to every call; nil when not set.
	denyBelow, reviewBelow *float64
}

// ruleSpec is one rule as written; nodes are kept for error positions.
type ruleSpec struct {
	name          string
	node          *yaml.Node
	match         *yaml.Node
	action        toolgate.Action
	reason        string
	reasonExpr    *yaml.Node
	autoApproveAt *float64
	denyBelow     *float64
	reviewBelow   *float64
	shadow        bool
	sandbox       string
	sessionGrant  time.Duration
	review        toolgate.ReviewPolicy
}

var (
	fileKeys = []string{"version", "label", "default", "on_error", "deny_below", "review_below", "rules"}
	ruleKeys = []string{"name", "match", "action", "reason", "reason_expr", "auto_approve_at", "deny_below", "review_below", "mode", "sandbox", "session_grant", "approvals",
		"review_channels", "escalate_after", "escalate_to"}
)

// maxSessionGrant bounds a rule's session_grant: an approval for a session
// should not outlive a working day.
const maxSessionGrant = 12 * time.Hour

var yamlLineRE = regexp.MustCompile(`line (\d+)(?:, column (\d+))?`)

// decodeFile reads a rules file strictly: unknown keys, duplicate keys,
// wrong types and missing required fields are all reported, each with its
// position.
func decodeFile(name string, data []byte, errs *errorList) *fileSpec {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			errs.add(name, nil, "", "", "empty rules file (want at least \"version: %d\")", FileVersion)
			return nil
		}
		e := &Error{File: name, Line: 1, Column: 1, Msg: err.Error()}
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			if m[2] != "" {
				e.Column, _ = strconv.Atoi(m[2])
			}
		}
		*errs = append(*errs, e)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		errs.add(name, &extra, "", "", "a rules file holds one YAML document; found another")
	} else if !errors.Is(err, io.EOF) {
		errs.add(name, nil, "", "", "after the first document: %v", err)
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if root.Kind != yaml.MappingNode {
		errs.add(name, root, "", "", "the top level must be a mapping with version, default, on_error and rules")
		return nil
	}
	f := &fileSpec{def: toolgate.Review, onError: toolgate.Review}
	seen := map[string]bool{}
	var version *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		if seen[k.Value] {
			errs.add(name, k, "", "", "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "version":
			version = v
			if n, ok := scalarInt(v); !ok || n != FileVersion {
				errs.add(name, v, "", "version", "must be %d, got %q", FileVersion, v.Value)
			}
		case "label":
			if s, ok := scalarString(v); ok {
				f.label = s
			} else {
				errs.add(name, v, "", "label", "must be a string")
			}
		case "default":
			if a, ok := parseAction(v); ok {
				f.def = a
			} else {
				errs.add(name, v, "", "default", "must be allow, deny or review, got %q", v.Value)
			}
		case "on_error":
			a, ok := parseAction(v)
			switch {
			case !ok:
				errs.add(name, v, "", "on_error", "must be review or deny, got %q", v.Value)
			case a == toolgate.Allow:
				errs.add(name, v, "", "on_error", "must be review or deny: an evaluation error never allows a call")
			default:
				f.onError = a
			}
		case "deny_below", "review_below":
			t, ok := threshold(v)
			if !ok {
				errs.add(name, v, "", k.Value, "must be a number from 0 to 1, got %q", v.Value)
				continue
			}
			if k.Value == "deny_below" {
				f.denyBelow = t
			} else {
				f.reviewBelow = t
			}
		case "auto_approve_at":
			// The agent supplies the number: a file-wide waiver would let
			// any call skip its review by claiming it.
			errs.add(name, k, "", "auto_approve_at", "is not a file-level setting: the agent states its own confidence, so it waives a review only where a rule says so. "+
				"Put auto_approve_at on each review rule that may skip the human; such a rule must name a sandbox profile that keeps the call in (see docs/rules.md, Confidence thresholds)")
		case "rules":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.SequenceNode {
				errs.add(name, v, "", "rules", "must be a list of rules")
				continue
			}
			for idx, rn := range v.Content {
				if r, ok := decodeRule(name, idx, resolve(rn), errs); ok {
					f.rules = append(f.rules, r)
				}
			}
		default:
			errs.add(name, k, "", "", "unknown key %q (known keys: %s)", k.Value, strings.Join(fileKeys, ", "))
		}
	}
	if version == nil {
		errs.add(name, root, "", "", "missing \"version: %d\"", FileVersion)
	}
	names := map[string]*yaml.Node{}
	for _, r := range f.rules {
		if r.name == "" {
			continue
		}
		if first, dup := names[r.name]; dup {
			errs.add(name, r.node, r.name, "name", "duplicate rule name (first used at line %d)", first.Line)
			continue
		}
		names[r.name] = r.node
	}
	// A rule's auto_approve_at at or below a file-level threshold could
	// never apply (tightening wins); say so rather than keep a dead key.
	for _, r := range f.rules {
		if r.autoApproveAt == nil {
			continue
		}
		for _, th := range []struct {
			key string
			v   *float64
		}{{"deny_below", f.denyBelow}, {"review_below", f.reviewBelow}} {
			if th.v != nil && *r.autoApproveAt <= *th.v {
				errs.add(name, r.node, r.name, "auto_approve_at", "%g is not above the file's %s %g, so it could never apply", *r.autoApproveAt, th.key, *th.v)
			}
		}
	}
	return f
}

// threshold reads a confidence threshold: a number from 0 to 1.
func threshold(v *yaml.Node) (*float64, bool) {
	f, ok := scalarFloat(v)
	if !ok || f < 0 || f > 1 || math.IsNaN(f) {
		return nil, false
	}
	return &f, true
}

func decodeRule(file string, idx int, n *yaml.Node, errs *errorList) (ruleSpec, bool) {
	r := ruleSpec{node: n, action: ""}
	label := fmt.Sprintf("#%d", idx+1)
	if n.Kind != yaml.MappingNode {
		errs.add(file, n, label, "", "a rule must be a mapping with name, match and action")
		return r, false
	}
	// The name first, so every other message can use it.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" {
			if s, ok := scalarString(resolve(n.Content[i+1])); ok && strings.TrimSpace(s) != "" {
				r.name, label = s, s
			}
		}
	}
	if r.name == "" {
		errs.add(file, n, label, "name", "missing (every rule needs a unique name)")
	}
	seen := map[string]bool{}
	var actionNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if seen[k.Value] {
			errs.add(file, k, label, "", "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "name":
			if _, ok := scalarString(v); !ok {
				errs.add(file, v, label, "name", "must be a string")
			}
		case "match":
			if v.Kind != yaml.ScalarNode {
				errs.add(file, v, label, "match", "must be a CEL expression (a string)")
				continue
			}
			r.match = v
		case "action":
			actionNode = v
			if a, ok := parseAction(v); ok {
				r.action = a
			} else {
				errs.add(file, v, label, "action", "must be allow, deny or review, got %q", v.Value)
			}
		case "reason":
			if s, ok := scalarString(v); ok {
				r.reason = s
			} else {
				errs.add(file, v, label, "reason", "must be a string")
			}
		case "reason_expr":
			if v.Kind != yaml.ScalarNode {
				errs.add(file, v, label, "reason_expr", "must be a CEL expression (a string)")
				continue
			}
			r.reasonExpr = v
		case "auto_approve_at", "deny_below", "review_below":
			t, ok := threshold(v)
			if !ok {
				errs.add(file, v, label, k.Value, "must be a number from 0 to 1, got %q", v.Value)
				continue
			}
			switch k.Value {
			case "auto_approve_at":
				r.autoApproveAt = t
			case "deny_below":
				r.denyBelow = t
			default:
				r.reviewBelow = t
			}
		case "approvals":
			n, ok := scalarInt(v)
			if !ok || n < 1 || n > 5 {
				errs.add(file, v, label, "approvals", "must be a number of distinct approvers from 1 to 5, got %q", v.Value)
				continue
			}
			r.review.Approvals = n
		case "review_channels":
			list, ok := stringList(v)
			for _, ch := range list {
				ok = ok && toolgate.IsReviewChannel(ch)
			}
			if !ok || len(list) == 0 {
				errs.add(file, v, label, "review_channels", "must be a list of "+toolgate.ReviewChannels)
				continue
			}
			r.review.Channels = list
		case "escalate_after":
			s, _ := scalarString(v)
			dur, err := time.ParseDuration(s)
			if err != nil || dur <= 0 {
				errs.add(file, v, label, "escalate_after", "must be a positive duration (e.g. 2m), got %q", v.Value)
				continue
			}
			r.review.EscalateAfter = dur
		case "escalate_to":
			list, ok := stringList(v)
			if !ok || len(list) == 0 {
				errs.add(file, v, label, "escalate_to", "must be a list of Slack user (U...) or user group (S...) IDs")
				continue
			}
			r.review.EscalateTo = list
		case "session_grant":
			s, _ := scalarString(v)
			dur, err := time.ParseDuration(s)
			if err != nil || dur <= 0 || dur > maxSessionGrant {
				errs.add(file, v, label, "session_grant", "must be a duration from 1s to %s (e.g. 30m), got %q", maxSessionGrant, v.Value)
				continue
			}
			r.sessionGrant = dur
		case "sandbox":
			sb, ok := scalarString(v)
			// The shape only: whether the profile exists is the
			// config's business (see Set.Sandboxes).
			if !ok || !sandbox.ValidName(sb) {
				errs.add(file, v, label, "sandbox", "must name a sandbox profile (read-only, workspace-write, or one the config defines), got %q", v.Value)
				continue
			}
			r.sandbox = sb
		case "mode":
			switch v.Value {
			case "shadow":
				r.shadow = true
			case "enforce":
			default:
				errs.add(file, v, label, "mode", "must be enforce or shadow, got %q", v.Value)
			}
		default:
			errs.add(file, k, label, "", "unknown key %q (known keys: %s)", k.Value, strings.Join(ruleKeys, ", "))
		}
	}
	if r.match == nil && !seen["match"] {
		errs.add(file, n, label, "match", "missing (use match: 'true' to match every call)")
	}
	if actionNode == nil {
		errs.add(file, n, label, "action", "missing (allow, deny or review)")
	}
	if seen["reason"] && seen["reason_expr"] {
		errs.add(file, n, label, "reason_expr", "give either reason (text) or reason_expr (CEL), not both")
	}
	if r.autoApproveAt != nil && r.action != "" && r.action != toolgate.Review {
		errs.add(file, n, label, "auto_approve_at", "only a review rule can auto-approve (this rule's action is %s)", r.action)
	}
	if !r.review.Zero() && r.action != "" && r.action != toolgate.Review {
		errs.add(file, n, label, "approvals", "approvals, review_channels and escalation only apply to review rules (this rule's action is %s)", r.action)
	}
	if (r.review.EscalateAfter > 0) != (len(r.review.EscalateTo) > 0) {
		errs.add(file, n, label, "escalate_to", "escalate_after and escalate_to go together")
	}
	if r.sessionGrant > 0 && r.action != "" && r.action != toolgate.Review {
		errs.add(file, n, label, "session_grant", "only a review rule lets a reviewer approve for the session (this rule's action is %s)", r.action)
	}
	if r.sandbox != "" && r.action == toolgate.Deny {
		errs.add(file, n, label, "sandbox", "a deny rule runs nothing, so it cannot name a sandbox profile")
	}
	if r.autoApproveAt != nil && r.denyBelow != nil && *r.denyBelow >= *r.autoApproveAt {
		errs.add(file, n, label, "deny_below", "%g must be below auto_approve_at %g", *r.denyBelow, *r.autoApproveAt)
	}
	if r.autoApproveAt != nil && r.reviewBelow != nil && *r.reviewBelow >= *r.autoApproveAt {
		errs.add(file, n, label, "review_below", "%g must be below auto_approve_at %g", *r.reviewBelow, *r.autoApproveAt)
	}
	// An auto-approved call runs with no human, on a number the agent
	// states: only a call that cannot leave the sandbox may. The rule must
	// name the profile its calls run in (without one a call runs in its
	// tool's default, which may be no sandbox at all); whether that
	// profile keeps the call in (no network, no writes outside the
	// workspace) is checked against the config at load (Set.AutoApproveSandboxes).
	if r.autoApproveAt != nil && r.action == toolgate.Review {
		switch r.sandbox {
		case "":
			errs.add(file, n, label, "auto_approve_at", "needs the rule to name the sandbox profile its calls run in (e.g. sandbox: workspace-write), "+
				"so that a call waved through on the agent's own confidence cannot leave the sandbox")
		case sandbox.None:
			errs.add(file, n, label, "auto_approve_at", "cannot go with sandbox: none: a call that runs unconfined always needs a human")
		}
	}
	return r, true
}

// resolve follows YAML aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func parseAction(n *yaml.Node) (toolgate.Action, bool) {
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	switch a := toolgate.Action(n.Value); a {
	case toolgate.Allow, toolgate.Deny, toolgate.Review:
		return a, true
	}
	return "", false
}

func scalarString(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", false
	}
	return n.Value, true
}

func scalarInt(n *yaml.Node) (int, bool) {
	if n.Kind != yaml.ScalarNode {
		return 0, false
	}
	i, err := strconv.Atoi(n.Value)
	return i, err == nil
}

func scalarFloat(n *yaml.Node) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!float" && n.Tag != "!!int") {
		return 0, false
	}
	f, err := strconv.ParseFloat(n.Value, 64)
	return f, err == nil
}

// stringList reads a YAML sequence of strings.
func stringList(n *yaml.Node) ([]string, bool) {
	if n.Kind != yaml.SequenceNode {
		return nil, false
	}
	var out []string
	for _, it := range n.Content {
		s, ok := scalarString(resolve(it))
		if !ok || s == "" {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
