package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Tasks (MCP 2025-11-25, execution.taskSupport). toolgate relays no tasks/*
// to agents: a gated call is decided, recorded and answered as one
// tools/call, and mcp-go's server would run a task-augmented call's
// handler itself, after the agent's request has been answered. So agents
// see every tool as a plain one (the mcp package lists it without
// execution), and a tool whose upstream runs it only as a task
// (taskSupport "required") is run by toolgate as a task: callAsTask sends
// the call with task augmentation, polls tasks/get until the task ends,
// and answers the agent with tasks/result, as one synchronous call. The
// call's timeout bounds it all, and a call that ends early cancels the
// task (tasks/cancel).

// Bounds of the interval between tasks/get polls; the upstream's
// pollInterval is used within them.
const (
	minTaskPoll     = 50 * time.Millisecond
	defaultTaskPoll = 250 * time.Millisecond
	maxTaskPoll     = 5 * time.Second
)

// NeedsTask reports whether def can only run as a task.
func NeedsTask(def mcp.Tool) bool {
	return def.Execution != nil && def.Execution.TaskSupport == mcp.TaskSupportRequired
}

// callAsTask runs params as a task on the upstream and returns its result.
func (c *conn) callAsTask(ctx context.Context, params mcp.CallToolParams, raw bool) (Result, error) {
	params.Task = &mcp.TaskParams{}
	b, err := c.sendCall(ctx, params)
	if err != nil {
		return Result{}, err
	}
	var created struct {
		Task mcp.Task `json:"task"`
	}
	if err := json.Unmarshal(b, &created); err != nil || created.Task.TaskId == "" {
		return Result{}, fmt.Errorf("%s runs only as a task, and the upstream answered with no task: %s", params.Name, b)
	}
	task := created.Task
	for !task.Status.IsTerminal() {
		wait := defaultTaskPoll
		if task.PollInterval != nil {
			wait = min(max(time.Duration(*task.PollInterval)*time.Millisecond, minTaskPoll), maxTaskPoll)
		}
		select {
		case <-ctx.Done():
			c.cancelTask(ctx, task.TaskId)
			return Result{}, transport.NewError(ctx.Err())
		case <-time.After(wait):
		}
		b, err := c.taskRequest(ctx, mcp.MethodTasksGet, task.TaskId)
		if err != nil {
			return Result{}, fmt.Errorf("tasks/get %s: %w", task.TaskId, err)
		}
		if err := json.Unmarshal(b, &task); err != nil {
			return Result{}, fmt.Errorf("tasks/get %s: %w", task.TaskId, err)
		}
	}
	b, err = c.taskRequest(ctx, mcp.MethodTasksResult, task.TaskId)
	if err != nil {
		return Result{}, err
	}
	if raw {
		if r, ok := passThrough(b); ok {
			return r, nil
		}
	}
	res, err := decodeCallToolResult(b)
	if err != nil {
		if task.Status != mcp.TaskStatusCompleted {
			// A failed or cancelled task may have no tool result.
			return Result{}, fmt.Errorf("task %s %s: %s", task.TaskId, task.Status, task.StatusMessage)
		}
		return Result{}, err
	}
	return Decoded(res), nil
}

// taskRequest sends one tasks/* request about task id.
func (c *conn) taskRequest(ctx context.Context, method mcp.MCPMethod, id string) (json.RawMessage, error) {
	resp, err := c.client.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
		JSONRPC: mcp.JSONRPC_VERSION,
		ID:      mcp.NewRequestId("toolgate-task-" + strconv.FormatInt(c.callSeq.Add(1), 10)),
		Method:  string(method),
		Params:  map[string]any{"taskId": id},
	})
	if err != nil {
		return nil, transport.NewError(err)
	}
	if resp.Error != nil {
		return nil, newRPCError(resp.Error)
	}
	return resp.Result, nil
}

// cancelTask asks the upstream to cancel a task whose call ended, best
// effort and off the caller's path.
func (c *conn) cancelTask(ctx context.Context, id string) {
	ctx = context.WithoutCancel(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, cancelNotificationTimeout)
		defer cancel()
		_, _ = c.taskRequest(ctx, mcp.MethodTasksCancel, id)
	}()
}

// needsTask reports whether u's tool called name runs only as a task.
func (u *upstream) needsTask(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, t := range u.tools {
		if t.Def.Name == name {
			return NeedsTask(t.Def)
		}
	}
	return false
}
