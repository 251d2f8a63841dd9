package main

// End-to-end tests of human review (issue 5) through the real `toolgate
// serve` binary and an mcp-go client: the call blocks on a review rule, a
// reviewer answers on Slack (review/slackfake, over Socket Mode) or from a
// second `toolgate review` process, and the audit row records who, where
// and how long it took.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

const (
	rvApprover = "U0APPROVER"
	rvStranger = "U0STRANGER"
	// rvRules puts the test upstream's echo tool under review; everything
	// else is allowed.
	rvRules = `version: 1
label: review-e2e
default: allow
rules:
  - name: echo-needs-human
    match: 'tool.name == "echo"'
    action: review
    reason: echoing needs a human
`
)

// rvConfig writes a config serving the test upstream as "up", with echo
// under review, the audit log in a temp dir, and, when fs is not nil, Slack
// pointed at fs. It returns the config and audit DB paths.
func rvConfig(t *testing.T, fs *slackfake.Server, reviewYAML string) (cfgPath, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(rvRules), 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath = filepath.Join(dir, "audit.db")
	slack := ""
	if fs != nil {
		slack = fmt.Sprintf("  slack: {channel: '#approvals', approvers: [%s], api_url: %q}\n", rvApprover, fs.APIURL())
	}
	cfg := fmt.Sprintf("servers:\n  up:\n    command: %q\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\nreview:\n%s%s",
		upstreamBin, rulesFile, dbPath, reviewYAML, slack)
	return writeConfig(t, cfg), dbPath
}

// rvSlackEnv is the environment serve reads the fake's tokens from.
var rvSlackEnv = []string{"SLACK_BOT_TOKEN=" + slackfake.BotToken, "SLACK_APP_TOKEN=" + slackfake.AppToken}

// rvCall is a tools/call running in the background.
type rvCall struct {
	done chan struct{}
	res  *mcp.CallToolResult
	err  error
}

func rvStart(c *client.Client, ctx context.Context, text, progressToken string) *rvCall {
	return rvStartArgs(c, ctx, map[string]any{"text": text}, progressToken)
}

// rvStartArgs is rvStart with the call's arguments.
func rvStartArgs(c *client.Client, ctx context.Context, args map[string]any, progressToken string) *rvCall {
	rc := &rvCall{done: make(chan struct{})}
	go func() {
		defer close(rc.done)
		rc.res, rc.err = callTool(ctx, c, "up__echo", args, progressToken)
	}()
	return rc
}

// wait returns the call's result, failing if it errored or takes over 20 s.
func (rc *rvCall) wait(t *testing.T) *mcp.CallToolResult {
	t.Helper()
	select {
	case <-rc.done:
	case <-time.After(20 * time.Second):
		t.Fatal("call still blocked 20 s after the review was answered")
	}
	if rc.err != nil {
		t.Fatalf("call: %v", rc.err)
	}
	return rc.res
}

func (rc *rvCall) pending() bool {
	select {
	case <-rc.done:
		return false
	default:
		return true
	}
}

// rvPostedID returns the decision ID in a review message's Approve button.
func rvPostedID(t *testing.T, post url.Values) string {
	t.Helper()
	var blocks []struct {
		Type     string
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string
		}
	}
	if err := json.Unmarshal([]byte(post.Get("blocks")), &blocks); err != nil {
		t.Fatalf("review message blocks: %v", err)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if b.Type == "actions" && e.ActionID == review.ActionApprove && e.Value != "" {
				return e.Value
			}
		}
	}
	t.Fatalf("review message has no Approve button: %s", post.Get("blocks"))
	return ""
}

// rvClick is user pressing action on the review of call id, with reason
// typed into the reason field.
func rvClick(user, action, id, reason string) slackfake.Action {
	return slackfake.Action{User: user, ActionID: action, Value: id,
		Inputs: map[string]map[string]string{review.BlockReason: {review.ActionReason: reason}}}
}

// rvCLI runs the toolgate binary as a separate process.
func rvCLI(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, toolgateBin, args...)
	cmd.Env = append(cmd.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("toolgate %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// rvAuditRow reads call id's audit row with `toolgate audit show --output json`.
//
// A forwarded call's outcome is committed just after the agent has its
// result, so a row still "started" is read again for a while.
func rvAuditRow(t *testing.T, db, id string) audit.Record {
	t.Helper()
	var r audit.Record
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r = audit.Record{}
		out := rvCLI(t, nil, "audit", "show", id, "--db", db, "--output", "json")
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("audit show --output json: %v\n%s", err, out)
		}
		if r.ID != id {
			t.Fatalf("audit show %s returned row %q", id, r.ID)
		}
		if r.Status != toolgate.StatusStarted || time.Now().After(deadline) {
			return r
		}
	}
}

// rvWaitPending waits until `toolgate review list` shows n pending reviews
// and returns their IDs.
func rvWaitPending(t *testing.T, db string, n int) []string {
	t.Helper()
	var ids []string
	toolgatetest.EventuallyWithin(t, fmt.Sprintf("%d pending reviews in `toolgate review list`", n), 20*time.Second, func() bool {
		var ps []toolgate.Pending
		if err := json.Unmarshal([]byte(rvCLI(t, nil, "review", "list", "--db", db, "--output", "json")), &ps); err != nil {
			t.Fatalf("review list --output json: %v", err)
		}
		ids = ids[:0]
		for _, p := range ps {
			ids = append(ids, p.Call.ID)
		}
		return len(ps) == n
	})
	return ids
}

var rvDecisionID = regexp.MustCompile(`\(decision ([0-9A-Z]{26})\)`)

func TestServeReviewSlack(t *testing.T) {
	fs := slackfake.New(t)
	cfg, db := rvConfig(t, fs, "  timeout: 60s\n  channels: [slack, cli]\n")
	c, n, _ := startStdio(t, cfg, rvSlackEnv...)
	fs.WaitConnected()

	t.Run("approve", func(t *testing.T) {
		call := rvStart(c, t.Context(), "approved by a human", "rv-progress")
		post := fs.WaitPosts(1)
		posted := time.Now() // the review was decided before this
		id := rvPostedID(t, post)
		for _, want := range []string{"up__echo", "echo-needs-human", "echoing needs a human", "serve-test 1.0", "approved by a human"} {
			if !slackfake.ContainsText(post, want) {
				t.Errorf("review message lacks %q", want)
			}
		}
		toolgatetest.EventuallyWithin(t, "a progress notification while the review waits", 10*time.Second, func() bool {
			return len(n.progress("rv-progress")) > 0
		})

		// Someone not on the approver list is told so and changes nothing.
		fs.Click(rvClick(rvStranger, review.ActionApprove, id, ""))
		if eph := fs.WaitEphemerals(1); eph.Get("user") != rvStranger || !strings.Contains(eph.Get("text"), "not on toolgate's approver list") {
			t.Errorf("ephemeral reply = %v", eph)
		}
		// The refused click is chained in the audit log; by then it has
		// had its chance to (wrongly) land.
		toolgatetest.EventuallyWithin(t, "the refused click in the audit log", 10*time.Second, func() bool {
			return rvClickEvents(t, db, rvStranger) > 0
		})
		if !call.pending() {
			t.Fatal("a click from someone not on the approver list ended the review")
		}

		waited := time.Since(posted)
		fs.Click(rvClick(rvApprover, review.ActionApprove, id, ""))
		res := call.wait(t)
		if res.IsError || resultText(res) != "approved by a human" {
			t.Fatalf("approved call: isError=%v %q; want the upstream's echo", res.IsError, resultText(res))
		}
		up := fs.WaitUpdates(1)
		if up.Get("ts") != slackfake.FirstTS || !slackfake.ContainsText(up, "Approved") || !slackfake.ContainsText(up, "<@"+rvApprover+">") {
			t.Errorf("message not updated in place to show the approval: %v", up)
		}

		r := rvAuditRow(t, db, id)
		if r.Status != toolgate.StatusOK || r.Outcome == nil || r.Outcome.ResultSize == 0 {
			t.Errorf("audit row: status %q, outcome %+v; want ok with the result recorded", r.Status, r.Outcome)
		}
		if r.Action != "review" || r.Rule != "echo-needs-human" || r.Client.Name != "serve-test" {
			t.Errorf("audit row: action %q rule %q client %+v", r.Action, r.Rule, r.Client)
		}
		rv := r.Review
		if rv == nil || !rv.Approved || rv.Reviewer != rvApprover || rv.Channel != toolgate.ChannelSlack {
			t.Fatalf("audit review = %+v; want approved by %s via slack", rv, rvApprover)
		}
		// At least what the test waited before approving; less than the
		// whole test.
		if rv.TimeToDecision < waited || rv.TimeToDecision > time.Minute {
			t.Errorf("time to approval = %v", rv.TimeToDecision)
		}
		if got := rv.DecidedAt.Sub(r.DecidedAt); (got - rv.TimeToDecision).Abs() > time.Millisecond {
			t.Errorf("time to approval %v != verdict time - decision time %v", rv.TimeToDecision, got)
		}
	})

	t.Run("deny", func(t *testing.T) {
		call := rvStart(c, t.Context(), "please", "")
		id := rvPostedID(t, fs.WaitPosts(2))
		fs.Click(rvClick(rvApprover, review.ActionDeny, id, "not on a Friday"))
		res := call.wait(t)
		msg := resultText(res)
		if !res.IsError || !strings.Contains(msg, rvApprover+" denied it via slack") || !strings.Contains(msg, "not on a Friday") || !strings.Contains(msg, id) {
			t.Fatalf("denied call: isError=%v %q; want a refusal naming the reviewer, the reason and the decision", res.IsError, msg)
		}
		r := rvAuditRow(t, db, id)
		if r.Status != toolgate.StatusRefused || r.Outcome != nil {
			t.Errorf("audit row: status %q, outcome %+v; want refused and never run", r.Status, r.Outcome)
		}
		if rv := r.Review; rv == nil || rv.Approved || rv.Reviewer != rvApprover || rv.Channel != toolgate.ChannelSlack || rv.Reason != "not on a Friday" {
			t.Errorf("audit review = %+v", r.Review)
		}
		if up := fs.WaitUpdates(2); !slackfake.ContainsText(up, "Denied") || !slackfake.ContainsText(up, "not on a Friday") {
			t.Errorf("message update = %v", up)
		}
	})

	t.Run("cli approve from another process", func(t *testing.T) {
		call := rvStart(c, t.Context(), "approved from a terminal", "")
		fs.WaitPosts(3)
		ids := rvWaitPending(t, db, 1)
		if !call.pending() {
			t.Fatal("call returned before anyone answered")
		}
		// The reviewer is the account running the command, whatever
		// $USER says.
		out := rvCLI(t, []string{"USER=mallory", "LOGNAME=mallory"}, "review", "approve", ids[0], "--db", db)
		if !strings.Contains(out, ids[0]) {
			t.Errorf("review approve printed %q", out)
		}
		res := call.wait(t)
		if res.IsError || resultText(res) != "approved from a terminal" {
			t.Fatalf("call approved from the CLI: isError=%v %q", res.IsError, resultText(res))
		}
		r := rvAuditRow(t, db, ids[0])
		me := "cli:" + reviewAccount(os.Getuid())
		if rv := r.Review; r.Status != toolgate.StatusOK || rv == nil || !rv.Approved || rv.Channel != toolgate.ChannelCLI || rv.Reviewer != me {
			t.Errorf("audit row: status %q, review %+v; want ok, approved by %s via cli", r.Status, r.Review, me)
		}
		// The Slack message says who answered, and where.
		if up := fs.WaitUpdates(3); !slackfake.ContainsText(up, "Approved") || !slackfake.ContainsText(up, "via cli") {
			t.Errorf("message update = %v", up)
		}
	})

	t.Run("disconnect", func(t *testing.T) {
		// The agent goes away mid-review: closing the client ends
		// toolgate's stdin, which cancels the waiting call.
		call := rvStart(c, context.Background(), "never mind", "")
		id := rvPostedID(t, fs.WaitPosts(4))
		closeErr := c.Close()
		<-call.done
		if call.err == nil {
			t.Errorf("call after disconnect returned %+v, want a transport error", call.res)
		}
		r := rvAuditRow(t, db, id)
		if rv := r.Review; rv == nil || rv.Approved || rv.Channel != toolgate.ChannelCancelled {
			t.Fatalf("audit review after disconnect = %+v, want cancelled", r.Review)
		}
		rvCLI(t, nil, "audit", "verify", "--db", db)
		// Closing the client also closes toolgate's stderr; toolgate
		// ignores SIGPIPE, so it lives on to finalize the row.
		if closeErr != nil && strings.Contains(closeErr.Error(), "broken pipe") {
			t.Errorf("toolgate died on the disconnect (SIGPIPE?): %v", closeErr)
		}
		deadline := time.Now().Add(5 * time.Second)
		for r.Status == toolgate.StatusPending && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			r = rvAuditRow(t, db, id)
		}
		if r.Status != toolgate.StatusRefused {
			t.Errorf("audit row after disconnect: status %q, want refused", r.Status)
		}
		if up := fs.WaitUpdates(4); !slackfake.ContainsText(up, "Cancelled") {
			t.Errorf("message update = %v", up)
		}
	})
}

func TestServeReviewTimeout(t *testing.T) {
	fs := slackfake.New(t)
	cfg, db := rvConfig(t, fs, "  timeout: 1s\n  channels: [slack]\n")
	c, _, _ := startStdio(t, cfg, rvSlackEnv...)
	fs.WaitConnected()

	start := time.Now()
	res := rvStart(c, t.Context(), "anyone?", "").wait(t)
	msg := resultText(res)
	if !res.IsError || !strings.Contains(msg, "no reviewer answered in time") || !strings.Contains(msg, "1s") {
		t.Fatalf("timed-out call: isError=%v %q; want a refusal saying no reviewer answered", res.IsError, msg)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("refused after %v, before the 1s review timeout", d)
	}
	m := rvDecisionID.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("refusal names no decision: %q", msg)
	}
	if id := rvPostedID(t, fs.WaitPosts(1)); id != m[1] {
		t.Errorf("slack message for %s, refusal for %s", id, m[1])
	}
	r := rvAuditRow(t, db, m[1])
	if rv := r.Review; r.Status != toolgate.StatusRefused || rv == nil || rv.Approved || rv.Channel != toolgate.ChannelTimeout || rv.Reviewer != "" {
		t.Errorf("audit row: status %q, review %+v; want refused by timeout", r.Status, r.Review)
	}
	if up := fs.WaitUpdates(1); !slackfake.ContainsText(up, "Expired") || slackfake.ContainsText(up, `"type":"actions"`) {
		t.Errorf("message update = %v", up)
	}
	// A click after the timeout is answered, and changes nothing.
	fs.Click(rvClick(rvApprover, review.ActionApprove, m[1], ""))
	if eph := fs.WaitEphemerals(1); !strings.Contains(eph.Get("text"), "already closed") {
		t.Errorf("late click reply = %v", eph)
	}
	if r := rvAuditRow(t, db, m[1]); r.Review == nil || r.Review.Approved {
		t.Errorf("late click changed the verdict: %+v", r.Review)
	}
}

// TestServeReviewHTTPDisconnect drops the HTTP connection of a call waiting
// for review (no MCP cancellation, just a closed socket), and checks toolgate,
// which keeps running, records the review as cancelled.
func TestServeReviewHTTPDisconnect(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  channels: [cli]\n")
	base := startHTTP(t, cfg)
	mcpURL := base + "/mcp"

	resp, body := post(t, mcpURL, initBody, nil)
	session := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || session == "" {
		t.Fatalf("initialize: %d %s (session %q)", resp.StatusCode, body, session)
	}
	hdr := map[string]string{"Mcp-Session-Id": session}
	post(t, mcpURL, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, mcpURL,
		strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"hello?"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	callErr := make(chan error, 1)
	go func() {
		resp, err := hc.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body) // blocks until the result or the disconnect
			resp.Body.Close()
		}
		callErr <- err
	}()

	id := rvWaitPending(t, db, 1)[0]
	cancel() // the agent's connection drops
	if err := <-callErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("call after disconnect: %v", err)
	}
	toolgatetest.EventuallyWithin(t, "the review to be recorded as cancelled", 20*time.Second, func() bool {
		r := rvAuditRow(t, db, id)
		return r.Review != nil
	})
	r := rvAuditRow(t, db, id)
	if rv := r.Review; r.Status != toolgate.StatusRefused || rv.Approved || rv.Channel != toolgate.ChannelCancelled {
		t.Errorf("audit row after disconnect: status %q, review %+v; want refused, cancelled", r.Status, r.Review)
	}
	// A late answer from the terminal finds the review closed.
	if out := rvCLIFail(t, "review", "approve", id, "--db", db); !strings.Contains(out, "cancelled") {
		t.Errorf("late approve said %q", out)
	}
	if len(rvWaitPending(t, db, 0)) != 0 {
		t.Error("review still pending")
	}
}

// rvCLIFail runs toolgate expecting failure and returns its stdout+stderr.
func rvCLIFail(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(toolgateBin, args...).CombinedOutput()
	if err == nil {
		t.Errorf("toolgate %s succeeded; want an error\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// rvClickEvents counts the chained events of refused clicks by user.
func rvClickEvents(t *testing.T, db, user string) int {
	t.Helper()
	sdb, err := sql.Open("sqlite3", "file:"+db+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var n int
	if err := sdb.QueryRow(`SELECT count(*) FROM events WHERE kind = 'click' AND body LIKE ?`, "%"+user+"%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestServeReviewArgsNotStored: with audit store_args: hash the log keeps
// no arguments, so the terminal, which shows reviewers the call as stored,
// would show an approver nothing of what runs (`{}` for `rm -rf`). It says
// the arguments are not stored and refuses an approval; a denial is
// taken, and the call is refused.
func TestServeReviewArgsNotStored(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  channels: [cli]\n")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hashed := strings.Replace(string(b), "audit: {path: ", "audit: {store_args: hash, path: ", 1)
	if hashed == string(b) {
		t.Fatal("no audit section to change")
	}
	if err := os.WriteFile(cfg, []byte(hashed), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, _ := startStdio(t, cfg)
	call := rvStart(c, t.Context(), "rm -rf ~", "")
	id := rvWaitPending(t, db, 1)[0]
	if list := rvCLI(t, nil, "review", "list", "--db", db); !strings.Contains(list, "NOT STORED") || strings.Contains(list, "{}") {
		t.Fatalf("review list of a call whose arguments are not stored:\n%s", list)
	}
	if out := rvCLIFail(t, "review", "approve", id, "--db", db); !strings.Contains(out, "arguments are not stored") {
		t.Fatalf("review approve: %s", out)
	}
	if !call.pending() {
		t.Fatal("the call ended on an approval nobody could see")
	}
	rvCLI(t, nil, "review", "deny", id, "--db", db, "--reason", "cannot see it")
	if res := call.wait(t); !res.IsError || !strings.Contains(resultText(res), "cannot see it") {
		t.Fatalf("the denied call: %s", resultText(res))
	}
	if r := rvAuditRow(t, db, id); r.Status != toolgate.StatusRefused || r.Review == nil || r.Review.Approved {
		t.Fatalf("audit row: %s %+v", r.Status, r.Review)
	}
}
