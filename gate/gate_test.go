package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// fixed decides every call the same way.
type fixed toolgate.Decision

func (f fixed) Decide(context.Context, toolgate.Call) toolgate.Decision { return toolgate.Decision(f) }

// journal records the order of everything the gate does, across its parts.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(e string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, e)
}

func (j *journal) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.events, " ")
}

type recorder struct {
	j                    *journal
	beginErr, resolveErr error
	finishErr            error
	resolved             toolgate.Verdict
	finished             toolgate.Outcome
}

func (r *recorder) Begin(_ context.Context, c toolgate.Call, d toolgate.Decision) error {
	r.j.add("begin:" + string(d.Action))
	return r.beginErr
}

func (r *recorder) Resolve(_ context.Context, id string, v toolgate.Verdict) error {
	r.j.add("resolve")
	r.resolved = v
	return r.resolveErr
}

func (r *recorder) Finish(_ context.Context, id string, o toolgate.Outcome) error {
	r.j.add("finish:" + o.Status)
	r.finished = o
	return r.finishErr
}

type forwarder struct {
	j   *journal
	res toolgate.Result
	err error
	// cancel, when set, is called while the call is forwarded: the agent
	// cancels it then.
	cancel context.CancelFunc
}

func (f *forwarder) ForwardResult(context.Context, toolgate.Call) (toolgate.Result, error) {
	f.j.add("forward")
	if f.cancel != nil {
		f.cancel()
	}
	return f.res, f.err
}

type reviewer struct {
	j   *journal
	v   toolgate.Verdict
	err error
}

func (r *reviewer) Review(context.Context, toolgate.Call, toolgate.Decision) (toolgate.Verdict, error) {
	r.j.add("review")
	return r.v, r.err
}

func TestNewRefusesMissingParts(t *testing.T) {
	j := &journal{}
	full := Options{Decider: fixed{Action: toolgate.Allow}, Recorder: &recorder{j: j}, Forwarder: &forwarder{j: j}}
	for name, o := range map[string]Options{
		"no decider":   {Recorder: full.Recorder, Forwarder: full.Forwarder},
		"no recorder":  {Decider: full.Decider, Forwarder: full.Forwarder},
		"no forwarder": {Decider: full.Decider, Recorder: full.Recorder},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := New(full); err != nil {
		t.Errorf("complete options: %v", err)
	}
}

func TestHandle(t *testing.T) {
	ok := toolgatetest.TextResult("done", false)
	boom := errors.New("disk full")
	cases := []struct {
		name       string
		decision   toolgate.Decision
		rec        recorder
		fwd        forwarder
		rev        *reviewer // nil: no reviewer configured
		wantEvents string
		wantError  bool
		wantText   []string
		wantStatus string // recorded outcome, when finished
		// agentCancels: the agent cancels the call while it is forwarded.
		agentCancels bool
	}{
		{name: "allow forwards after the decision is recorded",
			decision: toolgate.Decision{Action: toolgate.Allow, Rule: "reads"}, fwd: forwarder{res: ok},
			wantEvents: "begin:allow forward finish:ok", wantText: []string{"done"}, wantStatus: toolgate.StatusOK},
		{name: "deny never forwards and says why",
			decision:   toolgate.Decision{Action: toolgate.Deny, Rule: "no-rm", Reason: "rm -rf is not allowed"},
			wantEvents: "begin:deny", wantError: true, wantText: []string{`rule "no-rm"`, "rm -rf is not allowed", "Do not retry"}},
		{name: "an invalid action is a deny",
			decision:   toolgate.Decision{Action: "maybe"},
			wantEvents: "begin:deny", wantError: true, wantText: []string{`invalid action "maybe"`}},
		{name: "audit failure denies before anything runs",
			decision: toolgate.Decision{Action: toolgate.Allow}, rec: recorder{beginErr: boom},
			wantEvents: "begin:allow", wantError: true, wantText: []string{"fail closed", "disk full"}},
		{name: "review without a reviewer is denied",
			decision:   toolgate.Decision{Action: toolgate.Review, Rule: "writes", Reason: "writes need a human"},
			wantEvents: "begin:review resolve", wantError: true, wantText: []string{"not approved", "no review channel"}},
		{name: "approved review forwards after the verdict is recorded",
			decision: toolgate.Decision{Action: toolgate.Review, Rule: "writes"}, fwd: forwarder{res: ok},
			rev:        &reviewer{v: toolgate.Verdict{Approved: true, Reviewer: "U1", Channel: "slack"}},
			wantEvents: "begin:review review resolve forward finish:ok", wantText: []string{"done"}, wantStatus: toolgate.StatusOK},
		{name: "denied review names the reviewer",
			decision:   toolgate.Decision{Action: toolgate.Review, Rule: "writes", Reason: "writes need a human"},
			rev:        &reviewer{v: toolgate.Verdict{Reviewer: "U1", Channel: "slack", Reason: "not on main"}},
			wantEvents: "begin:review review resolve", wantError: true, wantText: []string{"U1 denied it via slack", "not on main"}},
		{name: "review timeout says nobody answered",
			decision:   toolgate.Decision{Action: toolgate.Review},
			rev:        &reviewer{v: toolgate.Verdict{Channel: "timeout"}},
			wantEvents: "begin:review review resolve", wantError: true, wantText: []string{"no reviewer answered in time"}},
		{name: "a failing reviewer denies",
			decision:   toolgate.Decision{Action: toolgate.Review},
			rev:        &reviewer{err: errors.New("slack unreachable")},
			wantEvents: "begin:review review resolve", wantError: true, wantText: []string{"slack unreachable"}},
		{name: "an unrecorded approval is not acted on",
			decision: toolgate.Decision{Action: toolgate.Review}, rec: recorder{resolveErr: boom},
			rev:        &reviewer{v: toolgate.Verdict{Approved: true, Reviewer: "U1", Channel: "slack"}},
			wantEvents: "begin:review review resolve", wantError: true, wantText: []string{"review verdict", "fail closed"}},
		{name: "an approval of a review another process took over is not acted on, and the agent is told to retry",
			decision: toolgate.Decision{Action: toolgate.Review}, rec: recorder{resolveErr: fmt.Errorf("audit: %w", toolgate.ErrTakenOver)},
			rev:        &reviewer{v: toolgate.Verdict{Approved: true, Reviewer: "U1", Channel: "slack"}},
			wantEvents: "begin:review review resolve", wantError: true, wantText: []string{"took over the review", "did not run", "grant", "retry the same call"}},
		{name: "upstream failure is a tool error and recorded",
			decision: toolgate.Decision{Action: toolgate.Allow}, fwd: forwarder{err: errors.New("connection reset")},
			wantEvents: "begin:allow forward finish:failed", wantError: true, wantText: []string{"connection reset"}, wantStatus: toolgate.StatusFailed},
		{name: "a call the agent cancels once forwarded is recorded cancelled, not failed",
			decision: toolgate.Decision{Action: toolgate.Allow}, fwd: forwarder{err: context.Canceled}, agentCancels: true,
			wantEvents: "begin:allow forward finish:cancelled", wantError: true, wantText: []string{"context canceled"}, wantStatus: toolgate.StatusCancelled},
		{name: "an upstream failing with context canceled while the agent waits is failed",
			decision: toolgate.Decision{Action: toolgate.Allow}, fwd: forwarder{err: context.Canceled},
			wantEvents: "begin:allow forward finish:failed", wantError: true, wantText: []string{"context canceled"}, wantStatus: toolgate.StatusFailed},
		{name: "upstream tool error passes through and is recorded",
			decision: toolgate.Decision{Action: toolgate.Allow}, fwd: forwarder{res: toolgatetest.TextResult("no such file", true)},
			wantEvents: "begin:allow forward finish:tool_error", wantError: true, wantText: []string{"no such file"}, wantStatus: toolgate.StatusToolError},
		{name: "an outcome that cannot be recorded still returns the result",
			decision: toolgate.Decision{Action: toolgate.Allow}, rec: recorder{finishErr: boom}, fwd: forwarder{res: ok},
			wantEvents: "begin:allow forward finish:ok", wantText: []string{"done"}, wantStatus: toolgate.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := &journal{}
			rec, fwd := tc.rec, tc.fwd
			rec.j, fwd.j = j, j
			o := Options{Decider: fixed(tc.decision), Recorder: &rec, Forwarder: &fwd,
				Now: func() time.Time { return time.Unix(1700000000, 0) }}
			if tc.rev != nil {
				tc.rev.j = j
				o.Reviewer = tc.rev
			}
			g, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.agentCancels {
				fwd.cancel = cancel
			}
			res := g.Handle(ctx, toolgate.Call{Server: "ws", Tool: "write_file", Name: "ws__write_file"})
			if got := j.String(); got != tc.wantEvents {
				t.Errorf("events = %q, want %q", got, tc.wantEvents)
			}
			if res.Empty() {
				t.Fatal("no result")
			}
			if res.IsError != tc.wantError {
				t.Errorf("isError = %v, want %v (%q)", res.IsError, tc.wantError, toolgatetest.Text(res))
			}
			for _, w := range tc.wantText {
				if !strings.Contains(toolgatetest.Text(res), w) {
					t.Errorf("result %q lacks %q", toolgatetest.Text(res), w)
				}
			}
			if tc.wantStatus != "" && rec.finished.Status != tc.wantStatus {
				t.Errorf("recorded status %q, want %q", rec.finished.Status, tc.wantStatus)
			}
			if tc.wantStatus == toolgate.StatusCancelled && !strings.HasPrefix(rec.finished.Error, "outcome unknown: the agent cancelled") {
				t.Errorf("cancelled outcome's error %q does not say the outcome is unknown", rec.finished.Error)
			}
			if tc.wantStatus == toolgate.StatusOK && (rec.finished.ResultHash == "" || rec.finished.ResultSize == 0) {
				t.Errorf("outcome lacks the result's size and hash: %+v", rec.finished)
			}
			if strings.Contains(tc.wantEvents, "resolve") && rec.resolved.DecidedAt.IsZero() {
				t.Errorf("verdict recorded without a decision time: %+v", rec.resolved)
			}
		})
	}
}

func TestHandleAssignsSortableIDs(t *testing.T) {
	j := &journal{}
	var ids []string
	g, err := New(Options{Decider: fixed{Action: toolgate.Deny}, Recorder: &recorder{j: j}, Forwarder: &forwarder{j: j}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		res := g.Handle(t.Context(), toolgate.Call{Name: "x"})
		_, after, _ := strings.Cut(toolgatetest.Text(res), "(decision ")
		id, _, _ := strings.Cut(after, ")")
		if len(id) != 26 {
			t.Fatalf("refusal %q carries no ULID", toolgatetest.Text(res))
		}
		ids = append(ids, id)
		time.Sleep(2 * time.Millisecond)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Errorf("ids not increasing: %v", ids)
		}
	}
}

// TestHandleLogsTheCall: a call's log records name it (call_id, server,
// tool) before their own attributes.
func TestHandleLogsTheCall(t *testing.T) {
	var buf bytes.Buffer
	j := &journal{}
	g, err := New(Options{Decider: fixed{Action: toolgate.Allow, Rule: "ok"}, Recorder: &recorder{j: j}, Forwarder: &forwarder{j: j},
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	g.Handle(t.Context(), toolgate.Call{ID: "01LOG", Server: "fs", Tool: "read", Name: "fs__read"})
	if want := `msg="call forwarded" call_id=01LOG server=fs tool=read rule=ok effect=allow`; !strings.Contains(buf.String(), want) {
		t.Errorf("log:\n%s\nwant a line with %s", buf.String(), want)
	}
}

// TestHandleRawResult: an upstream's bytes reach the caller undecoded;
// a failed forward or a refusal comes back as toolgate's own tool error,
// with the upstream's JSON-RPC error kept.
func TestHandleRawResult(t *testing.T) {
	const raw = `{"content":[{"type":"text","text":"raw"}],"isError":true}`
	j := &journal{}
	rec := &recorder{j: j}
	fwd := &forwarder{j: j, res: toolgate.Result{Raw: []byte(raw), IsError: true}}
	g, err := New(Options{Decider: fixed{Action: toolgate.Allow}, Recorder: rec, Forwarder: fwd})
	if err != nil {
		t.Fatal(err)
	}
	res := g.Handle(context.Background(), toolgate.Call{Server: "s", Tool: "t"})
	if string(res.Raw) != raw || !res.IsError || res.Value != nil || res.Refusal != "" {
		t.Errorf("Handle = %+v", res)
	}
	if got := j.String(); got != "begin:allow forward finish:tool_error" {
		t.Errorf("steps: %s", got)
	}
	if rec.finished.ResultSize != len(raw) {
		t.Errorf("recorded size %d, want %d", rec.finished.ResultSize, len(raw))
	}

	rpc := &toolgate.RPCError{Code: -32602, Message: "bad params"}
	fwd.res, fwd.err = toolgate.Result{}, fmt.Errorf("pipe closed: %w", rpc)
	res = g.Handle(context.Background(), toolgate.Call{Server: "s", Tool: "t"})
	if res.Raw != nil || !res.IsError || !strings.Contains(res.Refusal, "pipe closed") || res.RPCError != rpc {
		t.Errorf("failed forward: %+v", res)
	}

	deny, err := New(Options{Decider: fixed{Action: toolgate.Deny, Rule: "r"}, Recorder: rec, Forwarder: fwd})
	if err != nil {
		t.Fatal(err)
	}
	res = deny.Handle(context.Background(), toolgate.Call{Server: "s", Tool: "t"})
	if !res.IsError || !strings.Contains(res.Refusal, `rule "r"`) {
		t.Errorf("refusal: %+v", res)
	}
}
