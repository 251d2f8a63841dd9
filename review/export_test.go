package review

// Test helpers for the external review_test package.

// FakeSlack is the fake Slack server of fakes_test.go.
type FakeSlack = fakeSlack

var (
	NewFakeSlack  = newFakeSlack
	ClickPayload  = clickPayload
	Eventually    = eventually
	ContainsText  = containsText
	TestBotToken  = botToken
	TestAppToken  = appToken
	TestApprover  = approver
	TestChannelID = fakeChannelID
)

// Snapshot returns what the fake Slack has received.
func (f *fakeSlack) Snapshot() (posts, updates, ephemerals int) {
	p, u, e, _ := f.snapshot()
	return len(p), len(u), len(e)
}

// APIURL is the fake's API base URL.
func (f *fakeSlack) APIURL() string { return f.apiURL() }

// Click sends a block_actions payload over Socket Mode and waits for its ack.
func (f *fakeSlack) Click(payload map[string]any) { f.click(payload) }

// WaitConnected waits for the Socket Mode client to connect.
func (f *fakeSlack) WaitConnected() { f.waitConnected() }

// LastUpdate returns the last chat.update's blocks and text.
func (f *fakeSlack) LastUpdate() string {
	_, u, _, _ := f.snapshot()
	if len(u) == 0 {
		return ""
	}
	return u[len(u)-1].Get("text") + "\n" + u[len(u)-1].Get("blocks")
}
