package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// fakeStore is an in-memory Store with the audit store's first-answer-wins
// semantics.
type fakeStore struct {
	mu       sync.Mutex
	pending  map[string]*toolgate.Pending
	order    []string
	verdicts map[string]toolgate.Verdict
	closed   map[string]bool // expired by ExpireOrphanReviews
	failRead error
	grants   map[string]string // review id -> scope of the grant issued
	resolved map[string]toolgate.Verdict
}

func newFakeStore() *fakeStore {
	return &fakeStore{pending: map[string]*toolgate.Pending{}, verdicts: map[string]toolgate.Verdict{}, closed: map[string]bool{},
		grants: map[string]string{}, resolved: map[string]toolgate.Verdict{}}
}

var errNotFound = errors.New("not found")

func (f *fakeStore) add(c toolgate.Call, d toolgate.Decision) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending[c.ID] = &toolgate.Pending{Call: c, Decision: d, RequestedAt: c.Time}
	f.order = append(f.order, c.ID)
}

func (f *fakeStore) PendingReviews(ctx context.Context) ([]toolgate.Pending, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []toolgate.Pending
	for _, id := range f.order {
		if _, done := f.verdicts[id]; !done && !f.closed[id] {
			out = append(out, *f.pending[id])
		}
	}
	return out, nil
}

func (f *fakeStore) SubmitVerdict(ctx context.Context, id string, v toolgate.Verdict) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.pending[id]; !ok {
		return false, fmt.Errorf("%w: %s", errNotFound, id)
	}
	if _, done := f.verdicts[id]; done || f.closed[id] {
		return false, nil
	}
	f.verdicts[id] = v
	return true, nil
}

func (f *fakeStore) ReviewVerdict(ctx context.Context, id string) (toolgate.Verdict, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRead != nil {
		return toolgate.Verdict{}, false, f.failRead
	}
	if _, ok := f.pending[id]; !ok {
		return toolgate.Verdict{}, false, fmt.Errorf("%w: %s", errNotFound, id)
	}
	v, ok := f.verdicts[id]
	return v, ok, nil
}

func (f *fakeStore) SetReviewMessage(ctx context.Context, id, channel, ts string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pending[id]
	if !ok {
		return fmt.Errorf("%w: %s", errNotFound, id)
	}
	p.SlackChannel, p.SlackTS = channel, ts
	return nil
}

func (f *fakeStore) ExpireOrphanReviews(ctx context.Context, now time.Time) ([]toolgate.Pending, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []toolgate.Pending
	for _, id := range f.order {
		if f.closed[id] {
			continue
		}
		if _, done := f.verdicts[id]; !done {
			f.verdicts[id] = toolgate.Verdict{Channel: toolgate.ChannelExpired, Reason: "toolgate restarted", DecidedAt: now}
		}
		f.closed[id] = true
		out = append(out, *f.pending[id])
	}
	return out, nil
}

func (f *fakeStore) GrantReview(ctx context.Context, id, scope string, ttl time.Duration) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.verdicts[id]; !ok || !v.Approved {
		return "", fmt.Errorf("grant for %s: not approved", id)
	}
	f.grants[id] = scope
	return "G-" + id, nil
}

func (f *fakeStore) GrantSession(ctx context.Context, id string, ttl time.Duration) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.verdicts[id]; !ok || !v.Approved {
		return "", fmt.Errorf("session grant for %s: not approved", id)
	}
	f.grants[id+"/session"] = ttl.String()
	return "S-" + id, nil
}

func (f *fakeStore) Resolve(ctx context.Context, id string, v toolgate.Verdict) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolved[id] = v
	return nil
}

func (f *fakeStore) verdict(id string) (toolgate.Verdict, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.verdicts[id]
	return v, ok
}

func (f *fakeStore) message(id string) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pending[id]
	return p.SlackChannel, p.SlackTS
}

// messageTS waits until the location of call id's review message is
// stored (just after chat.postMessage answers) and returns its ts.
func (h *harness) messageTS(id string) string {
	h.t.Helper()
	var ts string
	toolgatetest.Eventually(h.t, "message location stored", func() bool { _, ts = h.store.message(id); return ts != "" })
	return ts
}

const signingSecret = "test-signing-secret"

// newFakeSlack starts a slackfake server with the approver group S0OPS.
func newFakeSlack(t *testing.T) *slackfake.Server {
	f := slackfake.New(t)
	f.SetUserGroup("S0OPS", "U0GROUPIE", "U0OTHER")
	return f
}

// click is user pressing button action (ActionApprove or ActionDeny) on
// callID's review message, with reason typed into the reason field.
func click(user, action, callID, reason string) slackfake.Action {
	return slackfake.Action{
		User: user, ActionID: action, Value: callID, BlockID: blockActionsPrefix + callID,
		Inputs: map[string]map[string]string{BlockReason: {ActionReason: reason}},
	}
}

// clickPayload is click's block_actions payload, for the HTTP endpoint.
func clickPayload(user, action, callID, reason string) map[string]any {
	return click(user, action, callID, reason).Payload()
}

// closedURL returns an API URL nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/"
}

// blocksOf decodes a posted message's blocks into generic JSON.
func blocksOf(t *testing.T, v url.Values) []map[string]any {
	t.Helper()
	var bs []map[string]any
	if err := json.Unmarshal([]byte(v.Get("blocks")), &bs); err != nil {
		t.Fatalf("blocks: %v in %q", err, v.Get("blocks"))
	}
	return bs
}

func hasBlockType(bs []map[string]any, typ string) bool {
	return slices.ContainsFunc(bs, func(b map[string]any) bool { return b["type"] == typ })
}
