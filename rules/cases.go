package rules

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/toolgate/toolgate"
)

// Case is one test case for a rule set: a call and the decision it should
// get. `toolgate rules test` runs a file of them; see docs/rules.md.
type Case struct {
	// Name identifies the case in PASS/FAIL output.
	Name string
	// Line is where the case starts in its file.
	Line int
	// Call is the call to decide.
	Call toolgate.Call
	// Expect is what the decision must say.
	Expect Expect
	// Workspace is where the call runs (the file's top-level workspace:
	// root, home, own); the zero value leaves the set's own.
	Workspace Workspace
}

// Decide decides the case's call with s, in the case's workspace if its
// file names one.
func (c Case) Decide(ctx context.Context, s *Set) toolgate.Decision {
	if c.Workspace.Root != "" || c.Workspace.Home != "" || len(c.Workspace.Own) > 0 {
		s = s.WithWorkspace(c.Workspace)
	}
	return s.Evaluate(ctx, c.Call)
}

// WorkspaceSpec is a workspace as a cases file writes it.
type WorkspaceSpec struct {
	Root string   `yaml:"root"`
	Home string   `yaml:"home"`
	Own  []string `yaml:"own"`
}

// Expect is the part of a Decision a Case checks. Zero fields are not checked.
type Expect struct {
	// Action is required.
	Action toolgate.Action `yaml:"action"`
	// Rule, when set, is the rule that must decide; "" (written `rule: ""`)
	// means the file's default must apply.
	Rule *string `yaml:"rule"`
	// AutoApproved, when set, must equal Decision.AutoApproved.
	AutoApproved *bool `yaml:"auto_approved"`
	// ConfidenceEffect, when set, must equal Decision.ConfidenceEffect
	// ("none" matches "").
	ConfidenceEffect string `yaml:"confidence_effect"`
	// ReasonContains, when set, must be a substring of Decision.Reason.
	ReasonContains string `yaml:"reason_contains"`
	// ErrorContains, when set, must be a substring of Decision.Error; when
	// empty, the decision must carry no error.
	ErrorContains string `yaml:"error_contains"`
	// Shadow, when set, lists the shadow rules that must have matched, in order.
	Shadow *[]string `yaml:"shadow"`
}

// CallSpec is a call as written in a cases file or given to
// `toolgate rules eval --call`. JSON is accepted too (it is YAML).
type CallSpec struct {
	ID      string         `yaml:"id"`
	Tool    string         `yaml:"tool"`
	Server  string         `yaml:"server"`
	Exposed string         `yaml:"exposed"`
	Args    map[string]any `yaml:"args"`
	// Meta is the request's _meta that goes upstream with the arguments.
	Meta map[string]any `yaml:"meta"`
	// Description and InputSchema are the tool's definition, from which
	// tool.kind is inferred.
	Description string         `yaml:"description"`
	InputSchema map[string]any `yaml:"input_schema"`
	// Sandbox is the tool's default sandbox profile (tool.sandbox).
	Sandbox     string               `yaml:"sandbox"`
	Annotations toolgate.Annotations `yaml:"annotations"`
	Client      toolgate.Peer        `yaml:"client"`
	Model       toolgate.Peer        `yaml:"model"`
	Confidence  *float64             `yaml:"confidence"`
	Session     string               `yaml:"session"`
	// Principal is who makes the call: {user, groups, auth}.
	Principal struct {
		User   string   `yaml:"user"`
		Groups []string `yaml:"groups"`
		Auth   string   `yaml:"auth"`
	} `yaml:"principal"`
	// Kind is the call's kind (call.kind): "tool" (the default),
	// "resource", "prompt" or "completion".
	Kind string `yaml:"kind"`
	// URI is a resource read's URI (resource.uri); it sets kind
	// "resource" and args.uri.
	URI string `yaml:"uri"`
	// Time is RFC 3339; empty leaves `now` unset (rules that use it then fail closed).
	Time string `yaml:"time"`
}

// ToCall converts the spec into the Call the gate would see.
func (cs CallSpec) ToCall() (toolgate.Call, error) {
	c := toolgate.Call{
		ID: cs.ID, Tool: cs.Tool, Server: cs.Server, Name: cs.Exposed, Args: cs.Args, Meta: cs.Meta,
		Annotations: cs.Annotations, Client: cs.Client, Model: cs.Model,
		Confidence: cs.Confidence,
		SessionID:  cs.Session,
		Principal: toolgate.Principal{User: cs.Principal.User, Groups: toolgate.NormalGroups(cs.Principal.Groups),
			Auth: cs.Principal.Auth},
		Description: cs.Description,
		Sandbox:     cs.Sandbox,
	}
	if cs.InputSchema != nil {
		raw, err := json.Marshal(cs.InputSchema)
		if err != nil {
			return c, fmt.Errorf("input_schema: %w", err)
		}
		c.InputSchema = raw
	}
	if c.Args == nil {
		c.Args = map[string]any{}
	}
	switch cs.Kind {
	case "", toolgate.KindTool, toolgate.KindResource, toolgate.KindPrompt, toolgate.KindCompletion:
	default:
		return c, fmt.Errorf("kind %q: want tool, resource, prompt or completion", cs.Kind)
	}
	c.Kind = cs.Kind
	if cs.URI != "" {
		if c.Kind == "" {
			c.Kind = toolgate.KindResource
		}
		c.Args["uri"] = cs.URI
		if c.Tool == "" {
			c.Tool = cs.URI
		}
	}
	if c.Kind == toolgate.KindTool {
		c.Kind = ""
	}
	if c.Name == "" {
		c.Name = c.Tool
	}
	if cs.Time != "" {
		t, err := time.Parse(time.RFC3339, cs.Time)
		if err != nil {
			return c, fmt.Errorf("time: %w", err)
		}
		c.Time = t
	}
	return c, nil
}

// ParseCall reads one call (YAML or JSON, strict: unknown keys fail).
func ParseCall(data []byte) (toolgate.Call, error) {
	var cs CallSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cs); err != nil {
		if errors.Is(err, io.EOF) {
			return toolgate.Call{}, errors.New("call: empty")
		}
		return toolgate.Call{}, fmt.Errorf("call: %w", err)
	}
	c, err := cs.ToCall()
	if err != nil {
		return c, fmt.Errorf("call: %w", err)
	}
	return c, nil
}

type casesFile struct {
	Workspace WorkspaceSpec `yaml:"workspace"`
	Cases     []struct {
		Name   string   `yaml:"name"`
		Call   CallSpec `yaml:"call"`
		Expect Expect   `yaml:"expect"`
	} `yaml:"cases"`
}

// ParseCases reads a cases file strictly; name is used in error positions.
func ParseCases(name string, data []byte) ([]Case, error) {
	var f casesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no cases", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// A second pass over the node tree only to learn each case's line.
	var doc yaml.Node
	_ = yaml.Unmarshal(data, &doc) // it decoded above, so it parses
	var lines []int
	if len(doc.Content) == 1 {
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "cases" {
				for _, n := range root.Content[i+1].Content {
					lines = append(lines, n.Line)
				}
			}
		}
	}
	var (
		out  []Case
		errs errorList
	)
	for i, fc := range f.Cases {
		line := 0
		if i < len(lines) {
			line = lines[i]
		}
		pos := &yaml.Node{Line: line, Column: 5}
		c := Case{Name: fc.Name, Line: line, Expect: fc.Expect,
			Workspace: Workspace{Root: f.Workspace.Root, Home: f.Workspace.Home, Own: f.Workspace.Own}}
		if c.Name == "" {
			c.Name = fmt.Sprintf("case %d (line %d)", i+1, line)
		}
		switch fc.Expect.Action {
		case toolgate.Allow, toolgate.Deny, toolgate.Review:
		default:
			errs.add(name, pos, "", "", "case %q: expect.action must be allow, deny or review, got %q", c.Name, fc.Expect.Action)
		}
		call, err := fc.Call.ToCall()
		if err != nil {
			errs.add(name, pos, "", "", "case %q: %v", c.Name, err)
		}
		c.Call = call
		out = append(out, c)
	}
	if len(out) == 0 {
		errs.add(name, nil, "", "", "no cases (want a top-level \"cases:\" list)")
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Check reports how d differs from what c expects, or nil.
func (c Case) Check(d toolgate.Decision) error {
	var diffs []string
	e := c.Expect
	if d.Action != e.Action {
		diffs = append(diffs, fmt.Sprintf("action is %s, want %s", d.Action, e.Action))
	}
	if e.Rule != nil && d.Rule != *e.Rule {
		diffs = append(diffs, fmt.Sprintf("rule is %s, want %s", ruleOrDefault(d.Rule), ruleOrDefault(*e.Rule)))
	}
	if e.AutoApproved != nil && d.AutoApproved != *e.AutoApproved {
		diffs = append(diffs, fmt.Sprintf("auto_approved is %v, want %v", d.AutoApproved, *e.AutoApproved))
	}
	if got := cmp.Or(d.ConfidenceEffect, toolgate.ConfidenceNone); e.ConfidenceEffect != "" && got != e.ConfidenceEffect {
		diffs = append(diffs, fmt.Sprintf("confidence_effect is %s, want %s", got, e.ConfidenceEffect))
	}
	if e.ReasonContains != "" && !strings.Contains(d.Reason, e.ReasonContains) {
		diffs = append(diffs, fmt.Sprintf("reason %q does not contain %q", d.Reason, e.ReasonContains))
	}
	switch {
	case e.ErrorContains == "" && d.Error != "":
		diffs = append(diffs, fmt.Sprintf("unexpected evaluation error: %s", d.Error))
	case e.ErrorContains != "" && !strings.Contains(d.Error, e.ErrorContains):
		diffs = append(diffs, fmt.Sprintf("error %q does not contain %q", d.Error, e.ErrorContains))
	}
	if e.Shadow != nil {
		var got []string
		for _, s := range d.Shadow {
			got = append(got, s.Rule)
		}
		if strings.Join(got, ",") != strings.Join(*e.Shadow, ",") {
			diffs = append(diffs, fmt.Sprintf("shadow rules %v, want %v", got, *e.Shadow))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	s := strings.Join(diffs, "; ")
	if d.Rule != "" || d.Reason != "" {
		s += fmt.Sprintf(" (decided by %s: %q)", ruleOrDefault(d.Rule), d.Reason)
	}
	return errors.New(s)
}

func ruleOrDefault(r string) string {
	if r == "" {
		return "the default"
	}
	return fmt.Sprintf("rule %q", r)
}
