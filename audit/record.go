package audit

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/toolgate/toolgate"
)

// Record is one recorded call: what was asked, what was decided, what a
// reviewer said, and what happened. Keep the JSON field names stable: they
// are the format of `audit export`, `--output json`, Import and the hash
// chain's event bodies.
type Record struct {
	// Seq is the row's insertion number (for tailing); not part of the chain.
	Seq int64 `json:"seq,omitempty"`
	Entry
	// Status is one of the Status* constants.
	Status string `json:"status"`
	// Review is the reviewer's verdict, once there is one.
	Review *Review `json:"review,omitempty"`
	// Outcome is what happened after forwarding, once known.
	Outcome *toolgate.Outcome `json:"outcome,omitempty"`
	// SlackChannel and SlackTS locate a review's Slack message. They are
	// operational metadata, not covered by the hash chain.
	SlackChannel string `json:"slack_channel,omitempty"`
	SlackTS      string `json:"slack_ts,omitempty"`
}

// Entry is what is known when a call is decided. It never changes after
// Begin commits it.
type Entry struct {
	ID         string        `json:"id"`
	ReceivedAt time.Time     `json:"received_at"`
	DecidedAt  time.Time     `json:"decided_at"`
	Client     toolgate.Peer `json:"client"`
	Model      toolgate.Peer `json:"model"`
	// Principal is who made the call; zero for calls made without
	// per-caller credentials (and in logs written before it was recorded).
	Principal     toolgate.Principal `json:"principal,omitzero"`
	Session       string             `json:"session,omitempty"`
	Server        string             `json:"server"`
	ServerVersion string             `json:"server_version,omitempty"`
	Tool          string             `json:"tool"`
	Name          string             `json:"name,omitempty"`
	// Kind is the call's kind (toolgate.Call.Kind): "" for a tool call,
	// else resource, prompt or completion. The kind column holds "tool"
	// for "".
	Kind        string               `json:"kind,omitempty"`
	SchemaHash  string               `json:"schema_hash,omitempty"`
	Annotations toolgate.Annotations `json:"annotations"`
	// Args are the call's arguments as stored: after Options.Redact; nil
	// when only their hash is stored (Options.ArgsHashOnly).
	Args json.RawMessage `json:"args"`
	// ArgsHash is the hex sha256 of Args (the redacted arguments, so it
	// cannot be used to guess a secret), stored even when Args are not.
	ArgsHash string `json:"args_hash"`
	// Meta is the call's _meta that went upstream with the arguments
	// (toolgate.Call.Meta), after Options.Redact like them; nil when the
	// call had none, and when only the arguments' hash is stored.
	Meta json.RawMessage `json:"meta,omitempty"`
	// Confidence is the agent's stated confidence; nil when unknown.
	Confidence   *float64        `json:"confidence,omitempty"`
	RulesVersion string          `json:"rules_version"`
	RulesLabel   string          `json:"rules_label,omitempty"`
	Rule         string          `json:"rule,omitempty"`
	Action       toolgate.Action `json:"action"`
	Reason       string          `json:"reason,omitempty"`
	AutoApproved bool            `json:"auto_approved,omitempty"`
	// ConfidenceEffect is how the agent's stated confidence changed the
	// action (rules.Confidence*: "none", "tightened_to_review",
	// "tightened_to_deny", "auto_approved"); "" in calls recorded before
	// it was kept.
	ConfidenceEffect string                  `json:"confidence_effect,omitempty"`
	Shadow           []toolgate.ShadowResult `json:"shadow,omitempty"`
	EvalError        string                  `json:"eval_error,omitempty"`
	// Sandbox is the sandbox profile the call runs in, if it runs.
	Sandbox string `json:"sandbox,omitempty"`
	// ToolgateVersion is the version of toolgate that recorded the call.
	ToolgateVersion string `json:"toolgate_version,omitempty"`
}

// Review is a recorded verdict.
type Review struct {
	Approved  bool      `json:"approved"`
	Reviewer  string    `json:"reviewer,omitempty"`
	Channel   string    `json:"channel"`
	Reason    string    `json:"reason,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
	// TimeToDecision is from the decision (DecidedAt of the Entry) to the verdict.
	TimeToDecision time.Duration `json:"time_to_decision"`
}

// Verdict returns the review as a review.Verdict.
func (r Review) Verdict() toolgate.Verdict {
	return toolgate.Verdict{Approved: r.Approved, Reviewer: r.Reviewer, Channel: r.Channel, Reason: r.Reason, DecidedAt: r.DecidedAt}
}

// Call rebuilds the toolgate.Call as the rules saw it, except that Args
// and Meta are the stored (redacted) ones.
func (r *Record) Call() (toolgate.Call, error) {
	c := toolgate.Call{
		ID: r.ID, Server: r.Server, Tool: r.Tool, Name: r.Name, Kind: r.Kind,
		Annotations: r.Annotations, SchemaHash: r.SchemaHash, ServerVersion: r.ServerVersion,
		Client: r.Client, Model: r.Model, Confidence: r.Confidence, SessionID: r.Session,
		Principal: r.Principal, Time: r.ReceivedAt,
	}
	if len(r.Args) > 0 && !bytes.Equal(r.Args, []byte("null")) {
		if err := json.Unmarshal(r.Args, &c.Args); err != nil {
			return c, fmt.Errorf("audit: call %s: args: %w", r.ID, err)
		}
	}
	if argsStored(r.Meta) {
		if err := json.Unmarshal(r.Meta, &c.Meta); err != nil {
			return c, fmt.Errorf("audit: call %s: _meta: %w", r.ID, err)
		}
	}
	return c, nil
}

// Decision returns the recorded decision.
func (r *Record) Decision() toolgate.Decision {
	return toolgate.Decision{
		Action: r.Action, Rule: r.Rule, Reason: r.Reason, Version: r.RulesVersion, Label: r.RulesLabel,
		AutoApproved: r.AutoApproved, Shadow: r.Shadow, Error: r.EvalError, Sandbox: r.Sandbox,
		ConfidenceEffect: decisionEffect(r.ConfidenceEffect),
	}
}

// decisionEffect is a recorded confidence effect as a rules.Decision says
// it: "" for none.
func decisionEffect(e string) string {
	if e == toolgate.ConfidenceNone {
		return ""
	}
	return e
}

// Event kinds in the hash chain.
const (
	kindDecision = "decision" // Begin: the Entry and the initial status
	kindVerdict  = "verdict"  // a review verdict (and the status it leads to)
	kindStatus   = "status"   // a status change alone (finalizing a submitted verdict, expiry)
	kindOutcome  = "outcome"  // Finish
	kindClick    = "click"    // a reviewer's click that changed nothing (RecordRefusedClick)
	kindContext  = "context"  // what decisions have in common (chain.go's ctx2); call_id ""
)

// event is one chained event of a call, decoded (decodeEvent) from either
// format (chain.go). Its JSON is the format-1 body.
type event struct {
	Kind     string            `json:"kind"`
	ID       string            `json:"id"`
	At       int64             `json:"at"`
	Status   string            `json:"status"`
	Decision *Entry            `json:"decision,omitempty"`
	Verdict  *Review           `json:"verdict,omitempty"`
	Outcome  *toolgate.Outcome `json:"outcome,omitempty"`
	// cx is the seq of the context event a format-2 decision's context
	// fields are in (0: in its own body); resolve fills them in. Encoding
	// a decision with cx < 0 leaves them out and cx too, for the writer to
	// splice in (withCx).
	cx int64
	// context is a context event's fields.
	context *ctx2
}

// argsHash is Entry.ArgsHash of the stored arguments b: their hex sha256.
func argsHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// fold applies an event to the record it describes (used by Verify to
// rebuild what each row must contain).
func (r *Record) fold(e *event) {
	r.Status = e.Status
	switch e.Kind {
	case kindDecision:
		if e.Decision != nil {
			r.Entry = *e.Decision
		}
	case kindVerdict:
		r.Review = e.Verdict
	case kindOutcome:
		r.Outcome = e.Outcome
	}
}

// utc normalises t as stored: UTC, nanosecond unix time, no monotonic clock.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(0, t.UnixNano()).UTC()
}

func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// encodeGroups is the principal_groups column of groups: a JSON array, ""
// for none.
func encodeGroups(groups []string) string {
	if len(groups) == 0 {
		return ""
	}
	b, _ := json.Marshal(groups) // a []string always encodes
	return string(b)
}

func decodeGroups(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var g []string
	if err := json.Unmarshal([]byte(s), &g); err != nil {
		return nil, err
	}
	return g, nil
}

// entryKind is Entry.Kind of a call of kind k: "" for a tool call, whose
// recorded events predate kinds.
func entryKind(k string) string {
	if k == toolgate.KindTool {
		return ""
	}
	return k
}

// KindName is the call's kind, "tool" for a tool call.
func (e *Entry) KindName() string { return kindColumn(e.Kind) }

// kindColumn is the kind column's value for Entry.Kind k.
func kindColumn(k string) string {
	if k == "" {
		return toolgate.KindTool
	}
	return k
}
