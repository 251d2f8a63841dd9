// Package toolgatetest holds what the tests of several toolgate packages
// share: a log sink safe for concurrent use, a wait for a condition that
// another goroutine or process brings about, a free port, whether a
// process is gone, reading a call's result, and an HTTP upstream that
// splits its SSE events into many lines. It is imported by tests only.
package toolgatetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

// SyncBuffer is a bytes.Buffer safe for a writer goroutine (a logger, a
// child process's output) and a test reading it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Eventually is EventuallyWithin 10 seconds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, what, 10*time.Second, cond)
}

// EventuallyWithin polls cond until it holds, failing t when timeout
// passes first. It is for a state another goroutine or process changes
// with no event to wait on; what says what was awaited.
func EventuallyWithin(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FreeAddr is a loopback TCP address no listener holds right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Alive reports whether pid is a running process (not a zombie).
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// WaitDead waits until every pid is gone or a zombie, failing t after
// within: a kill takes effect only once the kernel has delivered it.
func WaitDead(t testing.TB, within time.Duration, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		EventuallyWithin(t, fmt.Sprintf("process %d to end", pid), within, func() bool { return !Alive(pid) })
	}
}

// Text is a result's text for the agent: a refusal's, or the text blocks
// of a result's JSON, joined; a result that is not MCP JSON says so.
func Text(r toolgate.Result) string {
	if r.Refusal != "" {
		return r.Refusal
	}
	b := []byte(r.Raw)
	if r.Value != nil {
		var err error
		if b, err = r.Value.MarshalJSON(); err != nil {
			return "unencodable result: " + err.Error()
		}
	}
	var res struct {
		Content []struct{ Text string }
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return "undecodable result: " + err.Error()
	}
	var s strings.Builder
	for _, c := range res.Content {
		s.WriteString(c.Text)
	}
	return s.String()
}

// TextResult is an upstream's result with one text block, as its JSON.
func TextResult(text string, isError bool) toolgate.Result {
	b, err := json.Marshal(map[string]any{"content": []any{map[string]string{"type": "text", "text": text}}, "isError": isError})
	if err != nil {
		panic(err) // unreachable: strings and a bool encode
	}
	return toolgate.Result{Raw: b, IsError: isError}
}

// NopRecorder is an audit log that records nothing and never fails: the
// gate's Recorder for tests and benchmarks about everything else.
type NopRecorder struct{}

func (NopRecorder) Begin(context.Context, toolgate.Call, toolgate.Decision) error { return nil }
func (NopRecorder) Resolve(context.Context, string, toolgate.Verdict) error       { return nil }
func (NopRecorder) Finish(context.Context, string, toolgate.Outcome) error        { return nil }

// PendingLister lists the reviews waiting for an answer (audit.Store).
type PendingLister interface {
	PendingReviews(context.Context) ([]toolgate.Pending, error)
}

// PendingIDs returns the ids of the calls l lists for review, in its order.
func PendingIDs(t testing.TB, l PendingLister) []string {
	t.Helper()
	ps, err := l.PendingReviews(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.Call.ID)
	}
	return ids
}
