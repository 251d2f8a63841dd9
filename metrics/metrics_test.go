package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/gate"
	"github.com/toolgate/toolgate/tools"
)

// sample finds one series of a metric family and returns its value: the
// counter or gauge value, or a histogram's sample count and sum. ok is false
// when there is no such series.
func sample(t *testing.T, g prometheus.Gatherer, name string, labels ...string) (v, sum float64, ok bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			if len(have) != len(want) {
				continue
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), 0, true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), 0, true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum(), true
			}
		}
	}
	return 0, 0, false
}

func value(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, _, ok := sample(t, g, name, labels...)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}

func series(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(t *testing.T) (*Metrics, *prometheus.Registry, *clock) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := New(reg)
	clk := &clock{t: time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)}
	m.now = clk.Now
	return m, reg, clk
}

func TestObserve(t *testing.T) {
	m, reg, clk := newTest(t)
	c := toolgate.Call{Server: "fs", Tool: "read_file", Name: "fs__read_file", Time: clk.Now(), Args: map[string]any{"path": "/secret"}}
	clk.Add(3 * time.Millisecond)
	m.Observe(c, toolgate.Decision{Action: toolgate.Allow, Rule: "reads"}, toolgate.Outcome{Status: toolgate.StatusOK, Duration: 2 * time.Millisecond})
	m.Observe(c, toolgate.Decision{Action: toolgate.Allow}, toolgate.Outcome{Status: toolgate.StatusToolError, Duration: time.Millisecond})
	m.Observe(c, toolgate.Decision{Action: toolgate.Deny, Rule: "no-ssh", Error: "no such key",
		Shadow: []toolgate.ShadowResult{{Rule: "new-ssh", Action: toolgate.Review}}}, toolgate.Outcome{Status: toolgate.StatusRefused})
	m.Observe(c, toolgate.Decision{Action: toolgate.Allow, Rule: "reads"}, toolgate.Outcome{})

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"toolgate_calls_total", []string{"server", "fs", "tool", "read_file", "status", "ok"}, 1},
		{"toolgate_calls_total", []string{"server", "fs", "tool", "read_file", "status", "tool_error"}, 1},
		{"toolgate_calls_total", []string{"server", "fs", "tool", "read_file", "status", "refused"}, 1},
		{"toolgate_calls_total", []string{"server", "fs", "tool", "read_file", "status", "unknown"}, 1},
		{"toolgate_decisions_total", []string{"action", "allow", "rule", "reads"}, 2},
		{"toolgate_decisions_total", []string{"action", "allow", "rule", DefaultRuleLabel}, 1},
		{"toolgate_decisions_total", []string{"action", "deny", "rule", "no-ssh"}, 1},
		{"toolgate_rule_errors_total", []string{"rule", "no-ssh"}, 1},
		{"toolgate_shadow_decisions_total", []string{"rule", "new-ssh", "action", "review"}, 1},
		{"toolgate_call_duration_seconds", []string{"server", "fs", "status", "ok"}, 1},
		// Refused and unknown outcomes were never forwarded.
		{"toolgate_upstream_call_duration_seconds", []string{"server", "fs"}, 2},
	} {
		if got := value(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if _, sum, _ := sample(t, reg, "toolgate_call_duration_seconds", "server", "fs", "status", "ok"); sum != 0.003 {
		t.Errorf("call duration sum = %v, want 0.003 (receipt to Observe)", sum)
	}
	if _, sum, _ := sample(t, reg, "toolgate_upstream_call_duration_seconds", "server", "fs"); sum != 0.003 {
		t.Errorf("upstream duration sum = %v, want 0.003 (2ms + 1ms)", sum)
	}

	// Nothing about arguments, sessions or call ids leaks into labels.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if body := rec.Body.String(); strings.Contains(body, "/secret") || strings.Contains(body, "fs__read_file") {
		t.Errorf("metrics expose arguments or exposed names:\n%s", body)
	}
}

// fakeRecorder is a gate.Recorder whose writes take `delay` on the clock
// and fail with err.
type fakeRecorder struct {
	clk   *clock
	delay time.Duration
	err   error
	calls []string
}

func (f *fakeRecorder) Begin(_ context.Context, c toolgate.Call, d toolgate.Decision) error {
	f.clk.Add(f.delay)
	f.calls = append(f.calls, "begin "+c.ID)
	return f.err
}

func (f *fakeRecorder) Resolve(_ context.Context, id string, v toolgate.Verdict) error {
	f.clk.Add(f.delay)
	f.calls = append(f.calls, "resolve "+id)
	return f.err
}

func (f *fakeRecorder) Finish(_ context.Context, id string, o toolgate.Outcome) error {
	f.clk.Add(f.delay)
	f.calls = append(f.calls, "finish "+id)
	return f.err
}

func TestWrapRecorder(t *testing.T) {
	m, reg, clk := newTest(t)
	fr := &fakeRecorder{clk: clk, delay: 200 * time.Microsecond}
	r := m.WrapRecorder(fr)
	ctx := context.Background()

	if err := r.Begin(ctx, toolgate.Call{ID: "A"}, toolgate.Decision{Action: toolgate.Allow}); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(ctx, "A", toolgate.Outcome{Status: toolgate.StatusOK}); err != nil {
		t.Fatal(err)
	}
	if err := r.Begin(ctx, toolgate.Call{ID: "R1"}, toolgate.Decision{Action: toolgate.Review}); err != nil {
		t.Fatal(err)
	}
	if err := r.Begin(ctx, toolgate.Call{ID: "R2"}, toolgate.Decision{Action: toolgate.Review}); err != nil {
		t.Fatal(err)
	}
	if got := value(t, reg, "toolgate_pending_reviews"); got != 2 {
		t.Errorf("pending after two review decisions = %v", got)
	}
	clk.Add(90 * time.Second)
	if err := r.Resolve(ctx, "R1", toolgate.Verdict{Approved: true, Channel: toolgate.ChannelSlack, Reviewer: "U1"}); err != nil {
		t.Fatal(err)
	}
	if got := value(t, reg, "toolgate_pending_reviews"); got != 1 {
		t.Errorf("pending after one verdict = %v", got)
	}
	n, sum, _ := sample(t, reg, "toolgate_review_latency_seconds", "channel", "slack")
	if n != 1 || sum < 90 || sum > 90.001 {
		t.Errorf("review latency: %v samples, sum %v; want 1, ~90s", n, sum)
	}
	if err := r.Resolve(ctx, "R2", toolgate.Verdict{Channel: toolgate.ChannelTimeout}); err != nil {
		t.Fatal(err)
	}
	if got := value(t, reg, "toolgate_reviews_total", "channel", "slack", "verdict", "approved"); got != 1 {
		t.Errorf("approved via slack = %v", got)
	}
	if got := value(t, reg, "toolgate_reviews_total", "channel", "timeout", "verdict", "denied"); got != 1 {
		t.Errorf("denied by timeout = %v", got)
	}
	if got := value(t, reg, "toolgate_pending_reviews"); got != 0 {
		t.Errorf("pending at the end = %v", got)
	}

	// Every write was passed through in order; begins and resolves were
	// timed by the wrapper, the outcome (written behind) by the audit
	// log's report.
	if want := "begin A,finish A,begin R1,begin R2,resolve R1,resolve R2"; strings.Join(fr.calls, ",") != want {
		t.Errorf("writes = %v, want %s", fr.calls, want)
	}
	if n, _, _ := sample(t, reg, "toolgate_audit_write_seconds", "op", OpFinish); n != 0 {
		t.Errorf("finish timed by the wrapper (%v samples); it only queues", n)
	}
	m.OutcomeWritten(200*time.Microsecond, nil)
	for op, want := range map[string]float64{OpBegin: 3, OpFinish: 1, OpResolve: 2} {
		n, sum, _ := sample(t, reg, "toolgate_audit_write_seconds", "op", op)
		if n != want || fmt.Sprintf("%.4f", sum) != fmt.Sprintf("%.4f", want*0.0002) {
			t.Errorf("audit %s: %v samples sum %v, want %v of 200µs", op, n, sum, want)
		}
	}

	// A failed write is returned unchanged and counted; a review whose
	// decision was not recorded is not pending.
	fr.err = errors.New("disk full")
	if err := r.Begin(ctx, toolgate.Call{ID: "R3"}, toolgate.Decision{Action: toolgate.Review}); !errors.Is(err, fr.err) {
		t.Fatalf("Begin error = %v", err)
	}
	if got := value(t, reg, "toolgate_audit_write_errors_total", "op", OpBegin); got != 1 {
		t.Errorf("begin errors = %v", got)
	}
	if got := value(t, reg, "toolgate_pending_reviews"); got != 0 {
		t.Errorf("pending after a failed review Begin = %v", got)
	}
	m.OutcomeWritten(time.Millisecond, errors.New("disk full"))
	if got := value(t, reg, "toolgate_audit_write_errors_total", "op", OpFinish); got != 1 {
		t.Errorf("finish errors = %v", got)
	}
}

func TestWatchUpstreams(t *testing.T) {
	m, reg, _ := newTest(t)
	if n := series(t, reg, "toolgate_upstream_up"); n != 0 {
		t.Fatalf("upstream_up has %d series before WatchUpstreams", n)
	}
	state := []tools.UpstreamStatus{
		{Name: "fs", Up: true, Tools: 14},
		{Name: "github", Up: false, Tools: 30, Restarts: 4, LastError: "process exited", Places: 4, Busy: 4, Waiting: 7},
	}
	m.WatchUpstreams(func() []tools.UpstreamStatus { return state })
	for _, tc := range []struct {
		name, server string
		want         float64
	}{
		{"toolgate_upstream_up", "fs", 1},
		{"toolgate_upstream_up", "github", 0},
		{"toolgate_upstream_tools", "github", 30},
		{"toolgate_upstream_restarts_total", "github", 4},
		{"toolgate_upstream_places", "github", 4},
		{"toolgate_upstream_places_busy", "github", 4},
		{"toolgate_upstream_requests_waiting", "github", 7},
	} {
		if got := value(t, reg, tc.name, "server", tc.server); got != tc.want {
			t.Errorf("%s{server=%s} = %v, want %v", tc.name, tc.server, got, tc.want)
		}
	}
	if n := series(t, reg, "toolgate_upstream_places_busy"); n != 1 {
		t.Errorf("upstream_places_busy has %d series, want 1 (fs has no limit)", n)
	}
	state[1].Up = true // read at scrape time
	if got := value(t, reg, "toolgate_upstream_up", "server", "github"); got != 1 {
		t.Errorf("upstream_up after recovery = %v", got)
	}
	m.WatchUpstreams(nil)
	if n := series(t, reg, "toolgate_upstream_up"); n != 0 {
		t.Errorf("upstream_up has %d series after WatchUpstreams(nil)", n)
	}
}

func TestLabelCardinalityBounded(t *testing.T) {
	m, reg, clk := newTest(t)
	for i := range MaxLabelValues + 50 {
		c := toolgate.Call{Server: "noisy", Tool: fmt.Sprintf("tool_%d", i), Time: clk.Now()}
		m.Observe(c, toolgate.Decision{Action: toolgate.Allow, Rule: fmt.Sprintf("r%d", i)}, toolgate.Outcome{Status: toolgate.StatusOK})
	}
	if n := series(t, reg, "toolgate_calls_total"); n != MaxLabelValues+1 {
		t.Errorf("calls_total has %d series, want %d", n, MaxLabelValues+1)
	}
	if got := value(t, reg, "toolgate_calls_total", "server", "noisy", "tool", OverflowLabel, "status", "ok"); got != 50 {
		t.Errorf("overflow tool series = %v, want 50", got)
	}
	if got := value(t, reg, "toolgate_decisions_total", "action", "allow", "rule", OverflowLabel); got != 50 {
		t.Errorf("overflow rule series = %v, want 50", got)
	}
	// An admitted value keeps its own series.
	m.Observe(toolgate.Call{Server: "noisy", Tool: "tool_7"}, toolgate.Decision{Action: toolgate.Allow}, toolgate.Outcome{Status: toolgate.StatusOK})
	if got := value(t, reg, "toolgate_calls_total", "server", "noisy", "tool", "tool_7", "status", "ok"); got != 2 {
		t.Errorf("tool_7 = %v, want 2", got)
	}
}

func TestHandler(t *testing.T) {
	m, _, _ := newTest(t)
	m.Observe(toolgate.Call{Server: "up", Tool: "echo"}, toolgate.Decision{Action: toolgate.Allow}, toolgate.Outcome{Status: toolgate.StatusOK})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`toolgate_calls_total{server="up",status="ok",tool="echo"} 1`,
		"# TYPE toolgate_pending_reviews gauge",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// A registerer that cannot be gathered answers 500 rather than lying.
	wrapped := New(prometheus.WrapRegistererWithPrefix("x_", prometheus.NewRegistry()))
	rec := httptest.NewRecorder()
	wrapped.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("non-gatherer: status %d", rec.Code)
	}
}

func TestNewTwiceOnOneRegistryPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	defer func() {
		if recover() == nil {
			t.Error("second New on the same registry did not panic")
		}
	}()
	New(reg)
}

// Through a real gate and a real audit log: a reviewed call, an allowed one
// and one refused because the audit log is closed.
type decider map[string]toolgate.Action

func (d decider) Decide(_ context.Context, c toolgate.Call) toolgate.Decision {
	return toolgate.Decision{Action: d[c.Tool], Rule: "r-" + c.Tool, Version: "v1"}
}

type approver struct{ release chan struct{} }

func (a approver) Review(ctx context.Context, c toolgate.Call, d toolgate.Decision) (toolgate.Verdict, error) {
	<-a.release
	return toolgate.Verdict{Approved: true, Channel: toolgate.ChannelCLI, Reviewer: "alice"}, nil
}

type echo struct{}

func (echo) ForwardResult(_ context.Context, c toolgate.Call) (toolgate.Result, error) {
	return toolgate.Result{Raw: []byte(`{"content":[{"type":"text","text":"ok"}]}`)}, nil
}

func TestThroughGate(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	st, err := audit.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"), audit.Options{OnBehind: m.OutcomeWritten})
	if err != nil {
		t.Fatal(err)
	}
	ap := approver{release: make(chan struct{})}
	g, err := gate.New(gate.Options{
		Decider: decider{"read": toolgate.Allow, "rm": toolgate.Review}, Reviewer: ap,
		Recorder: m.WrapRecorder(st), Forwarder: echo{}, Observer: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if res := g.Handle(ctx, toolgate.Call{Server: "ws", Tool: "read"}); res.IsError {
		t.Fatalf("read: %+v", res)
	}
	done := make(chan toolgate.Result)
	go func() { done <- g.Handle(ctx, toolgate.Call{Server: "ws", Tool: "rm"}) }()
	deadline := time.Now().Add(10 * time.Second)
	for value(t, reg, "toolgate_pending_reviews") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("pending_reviews never reached 1")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(ap.release)
	if res := <-done; res.IsError {
		t.Fatalf("rm: %+v", res)
	}
	if got := value(t, reg, "toolgate_pending_reviews"); got != 0 {
		t.Errorf("pending after verdict = %v", got)
	}
	if got := value(t, reg, "toolgate_reviews_total", "channel", "cli", "verdict", "approved"); got != 1 {
		t.Errorf("reviews approved via cli = %v", got)
	}

	// The audit log is gone: the call is refused, and the metrics say why.
	// (Close commits the outcomes still behind.)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if res := g.Handle(ctx, toolgate.Call{Server: "ws", Tool: "read"}); !res.IsError {
		t.Fatal("call ran without an audit log")
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"toolgate_calls_total", []string{"server", "ws", "tool", "read", "status", "ok"}, 1},
		{"toolgate_calls_total", []string{"server", "ws", "tool", "read", "status", "refused"}, 1},
		{"toolgate_calls_total", []string{"server", "ws", "tool", "rm", "status", "ok"}, 1},
		{"toolgate_decisions_total", []string{"action", "review", "rule", "r-rm"}, 1},
		{"toolgate_audit_write_errors_total", []string{"op", OpBegin}, 1},
		{"toolgate_audit_write_seconds", []string{"op", OpBegin}, 3},
		{"toolgate_audit_write_seconds", []string{"op", OpResolve}, 1},
		{"toolgate_audit_write_seconds", []string{"op", OpFinish}, 2},
	} {
		if got := value(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}
