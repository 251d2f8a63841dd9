package main

import (
	"context"
	"log/slog"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/gate"
	"github.com/toolgate/toolgate/mcp"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/tools"
)

// policy is everything serve plugs into the gate besides the forwarder:
// what decides, who reviews, what records.
type policy struct {
	Decider  gate.Decider
	Recorder gate.Recorder
	Reviewer gate.Reviewer // nil denies every review
	Observer gate.Observer // nil: no metrics
	// attach, when set, is called with the agent-facing server once it
	// exists (e.g. to give an elicitation reviewer its MCPServer()).
	attach func(*mcp.Server)
	// close releases what buildPolicy opened (audit store, Slack socket...).
	close func() error
}

// buildPolicy constructs the gate's Decider, Recorder and Reviewer from cfg.
//
// TEMPORARY: rules, audit and review are not wired yet. This allows every
// call and records nothing; the lead replaces it with the real wiring
// (rules.Load/default pack, audit store at cfg.Audit.Path, review channels).
func buildPolicy(ctx context.Context, cfg *config.Config, env environ, logger *slog.Logger) (*policy, error) {
	logger.Warn("TEMPORARY policy: every call is allowed and nothing is audited (rules/audit/review not wired yet)")
	return &policy{
		Decider:  allowAll{},
		Recorder: nopRecorder{},
		close:    func() error { return nil },
	}, nil
}

// allowAll is the TEMPORARY decider: it allows everything. Remove with buildPolicy's stub.
type allowAll struct{}

func (allowAll) Decide(context.Context, tools.Call) rules.Decision {
	return rules.Decision{Action: rules.Allow, Reason: "temporary allow-all (rules not wired)", Version: "none"}
}

// nopRecorder is the TEMPORARY recorder: it writes nothing.
type nopRecorder struct{}

func (nopRecorder) Begin(context.Context, tools.Call, rules.Decision) error { return nil }
func (nopRecorder) Resolve(context.Context, string, review.Verdict) error   { return nil }
func (nopRecorder) Finish(context.Context, string, audit.Outcome) error     { return nil }
