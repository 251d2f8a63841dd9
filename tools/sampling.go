package tools

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/mcp/agent"
)

// Upstreams may ask the agent's model for a completion while one of their
// tools runs (MCP sampling, sampling/createMessage). toolgate declares the
// capability to its upstreams and relays each request, like an
// elicitation, to the agent whose request is in flight on that connection
// (see elicit.go for how the agent is inferred and when it cannot be); the
// agent's client decides, usually with its user, whether and how to answer.
// Neither the request nor the completion is recorded (they may hold the
// user's data); the log says that one was asked, by whom, during which
// request, and the model that answered.
//
// Two changes are made on the way: includeContext becomes "none", and the
// system prompt starts with a line naming the upstream (labelSampling).
// Context from "this server" or "all servers" means, behind toolgate, the
// agent's context of every upstream; an upstream must not get other
// upstreams' results through the agent's model.

// samplingRelay is an upstream connection's sampling handler.
type samplingRelay struct {
	u *upstream
	c *conn
}

func (r samplingRelay) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	f, _, err := r.c.asker()
	if err == nil {
		err = agent.CanSample(f.ctx)
	}
	if err != nil {
		r.u.log.Warn("upstream sampling request refused", "err", err)
		return nil, fmt.Errorf("toolgate: %w", err)
	}
	log := r.u.log.With(f.logAttrs()...)
	if ic := req.CreateMessageParams.IncludeContext; ic != "" && ic != "none" {
		log.Info("upstream sampling request: includeContext set to none", "asked", ic)
		req.CreateMessageParams.IncludeContext = "none"
	}
	r.u.labelSampling(&req.CreateMessageParams)
	// The completion is the request's: it ends when the agent's request
	// does, or when the upstream withdraws it.
	ask, cancel := context.WithCancel(f.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	res, err := agent.Sample(ask, req)
	if err != nil {
		log.Warn("upstream sampling request failed", "err", err)
		return nil, fmt.Errorf("toolgate: asking the agent's model: %w", err)
	}
	log.Info("upstream sampling request answered", "model", res.Model)
	return res, nil
}
