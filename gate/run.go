package gate

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/toolgate/toolgate"
)

// RefusedError is the error Run returns for a call it did not run: denied
// by a rule, not approved (or not yet) by a reviewer, or not recordable by
// the audit log. Text says why, for the agent; the edge (package mcp)
// answers the request with it as a JSON-RPC error.
type RefusedError struct {
	// ID is the call's decision id.
	ID   string
	Text string
}

func (e *RefusedError) Error() string { return e.Text }

// Run passes a call that is not a tool call (c.Kind is toolgate.KindResource,
// KindPrompt or KindCompletion) through the same pipeline as Handle, in
// the same order: decide, review, record the decision, run, record the
// outcome. run is called only when the call may go ahead, after the
// decision (and any verdict) is durable; the outcome's size and hash are
// those of its result's JSON. A call not run returns a *RefusedError;
// run's own error is returned as it is (and recorded as the outcome).
func (g *Gate) Run(ctx context.Context, c toolgate.Call, run func(context.Context) (any, error)) (any, error) {
	if c.Time.IsZero() {
		c.Time = g.o.Now()
	}
	if c.ID == "" {
		c.ID = NewID(c.Time)
	}
	var (
		out    any
		runErr error
		ran    bool
	)
	res := g.handle(ctx, c, func(ctx context.Context, c toolgate.Call) (toolgate.Result, error) {
		ran = true
		if out, runErr = run(ctx); runErr != nil {
			return toolgate.Result{}, runErr
		}
		b, err := json.Marshal(out)
		if err != nil {
			runErr = fmt.Errorf("encoding the result: %w", err)
			return toolgate.Result{}, runErr
		}
		return toolgate.Result{Raw: b}, nil
	})
	switch {
	case ran && runErr != nil:
		return nil, runErr
	case ran:
		return out, nil
	}
	e := &RefusedError{ID: c.ID, Text: res.Refusal}
	if e.Text == "" {
		e.Text = "toolgate refused the call"
	}
	return nil, e
}
