package metrics

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/gate"
	"github.com/toolgate/toolgate/tools"
)

// Namespace prefixes every metric name.
const Namespace = "toolgate"

// MaxLabelValues bounds the distinct values of each open-ended label (tool,
// rule, server, channel); OverflowLabel replaces the values past it.
const (
	MaxLabelValues = 2000
	OverflowLabel  = "_other"
)

// DefaultRuleLabel is the rule label of a decision made by the rule set's
// default (no rule matched).
const DefaultRuleLabel = "(default)"

// Audit write operations, the values of the op label.
const (
	OpBegin   = "begin"
	OpResolve = "resolve"
	OpFinish  = "finish"
)

// Metrics holds toolgate's collectors. It implements gate.Observer; its
// methods are safe for concurrent use.
type Metrics struct {
	now      func() time.Time
	gatherer prometheus.Gatherer

	calls        *prometheus.CounterVec
	decisions    *prometheus.CounterVec
	ruleErrors   *prometheus.CounterVec
	shadow       *prometheus.CounterVec
	callDuration *prometheus.HistogramVec
	upstreamDur  *prometheus.HistogramVec
	reviews      *prometheus.CounterVec
	reviewLat    *prometheus.HistogramVec
	pending      prometheus.Gauge
	auditWrite   *prometheus.HistogramVec
	auditErrors  *prometheus.CounterVec

	upstreams atomic.Pointer[func() []tools.UpstreamStatus]

	tools, rules, servers, channels labelSet

	mu          sync.Mutex
	reviewStart map[string]time.Time // call id -> when its review began
}

var _ gate.Observer = (*Metrics)(nil)

// New registers toolgate's collectors, plus the Go runtime and process
// collectors (goroutines, heap, RSS, open fds) unless reg already has them,
// on reg; nil means a fresh registry. Handler serves reg when it is also a
// prometheus.Gatherer (a *prometheus.Registry is). New panics if reg already
// holds toolgate's own metrics: that is a wiring mistake.
func New(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{now: time.Now, reviewStart: map[string]time.Time{}}
	m.gatherer, _ = reg.(prometheus.Gatherer)

	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "calls_total",
		Help: "Tool calls handled, by upstream server, upstream tool name and final status (ok, tool_error, failed, cancelled, refused).",
	}, []string{"server", "tool", "status"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "decisions_total",
		Help: "Rule decisions, by action (allow, deny, review) and matching rule (" + DefaultRuleLabel + " when none matched).",
	}, []string{"action", "rule"})
	m.ruleErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rule_errors_total",
		Help: "Decisions forced by a rule evaluation error (fail closed), by rule.",
	}, []string{"rule"})
	m.shadow = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "shadow_decisions_total",
		Help: "What shadow-mode rules would have decided, by rule and action; not enforced.",
	}, []string{"rule", "action"})
	m.callDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "call_duration_seconds",
		Help:    "Time from receiving a tool call to its result, human review included, by server and final status.",
		Buckets: prometheus.ExponentialBuckets(100e-6, 4, 10), // 100µs .. 26s
	}, []string{"server", "status"})
	m.upstreamDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "upstream_call_duration_seconds",
		Help:    "Time the upstream took for a forwarded call, by server.",
		Buckets: prometheus.ExponentialBuckets(100e-6, 4, 10),
	}, []string{"server"})
	m.reviews = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "reviews_total",
		Help: "Reviews answered, by channel (slack, cli, elicitation, timeout, cancelled, ...) and verdict (approved, denied).",
	}, []string{"channel", "verdict"})
	m.reviewLat = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "review_latency_seconds",
		Help:    "Time from a review decision being recorded to its verdict reaching the gate, by channel.",
		Buckets: []float64{0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600},
	}, []string{"channel"})
	m.pending = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "pending_reviews",
		Help: "Calls of this process waiting for a human verdict.",
	})
	m.auditWrite = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "audit_write_seconds",
		Help:    "Time for an audit write to become durable, by operation (begin, resolve: the call waits for it; finish: written behind, after the agent has its result).",
		Buckets: prometheus.ExponentialBuckets(50e-6, 3, 10), // 50µs .. ~1s
	}, []string{"op"})
	m.auditErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "audit_write_errors_total",
		Help: "Audit writes that failed, by operation; a failed begin or resolve denies the call.",
	}, []string{"op"})

	reg.MustRegister(m.calls, m.decisions, m.ruleErrors, m.shadow, m.callDuration, m.upstreamDur,
		m.reviews, m.reviewLat, m.pending, m.auditWrite, m.auditErrors, upstreamCollector{m})
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			panic(err)
		}
	}
	return m
}

// Handler serves the registry in the Prometheus text format, for /metrics.
// If the registry New was given cannot be gathered, it answers 500.
func (m *Metrics) Handler() http.Handler {
	if m.gatherer == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "metrics: the registry given to metrics.New is not a prometheus.Gatherer", http.StatusInternalServerError)
		})
	}
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Observe records one finished call: its decision, its final status and how
// long it took. It implements gate.Observer.
func (m *Metrics) Observe(c toolgate.Call, d toolgate.Decision, o toolgate.Outcome) {
	server := m.servers.label(c.Server, c.Server)
	status := o.Status
	if status == "" {
		status = "unknown"
	}
	m.calls.WithLabelValues(server, m.tools.label(c.Server+"\x00"+c.Tool, c.Tool), status).Inc()

	rule := DefaultRuleLabel
	if d.Rule != "" {
		rule = m.rules.label(d.Rule, d.Rule)
	}
	m.decisions.WithLabelValues(string(d.Action), rule).Inc()
	if d.Error != "" {
		m.ruleErrors.WithLabelValues(rule).Inc()
	}
	for _, s := range d.Shadow {
		m.shadow.WithLabelValues(m.rules.label(s.Rule, s.Rule), string(s.Action)).Inc()
	}

	if !c.Time.IsZero() {
		if dur := m.now().Sub(c.Time); dur >= 0 {
			m.callDuration.WithLabelValues(server, status).Observe(dur.Seconds())
		}
	}
	switch o.Status {
	case toolgate.StatusOK, toolgate.StatusToolError, toolgate.StatusFailed, toolgate.StatusCancelled:
		m.upstreamDur.WithLabelValues(server).Observe(o.Duration.Seconds())
	}
}

// WatchUpstreams makes each scrape report toolgate_upstream_up,
// toolgate_upstream_tools and toolgate_upstream_restarts_total from status,
// and for a server with max_requests toolgate_upstream_places,
// toolgate_upstream_places_busy and toolgate_upstream_requests_waiting,
// typically (*tools.Catalog).Status. status must be cheap and safe for
// concurrent use; nil stops the reporting.
func (m *Metrics) WatchUpstreams(status func() []tools.UpstreamStatus) {
	if status == nil {
		m.upstreams.Store(nil)
		return
	}
	m.upstreams.Store(&status)
}

// WrapRecorder returns r with every write timed into
// toolgate_audit_write_seconds (failures counted in
// toolgate_audit_write_errors_total), and with reviews tracked: a committed
// review decision raises toolgate_pending_reviews until its verdict is
// resolved, which observes toolgate_review_latency_seconds and counts
// toolgate_reviews_total.
func (m *Metrics) WrapRecorder(r gate.Recorder) gate.Recorder {
	return &recorder{m: m, r: r}
}

type recorder struct {
	m *Metrics
	r gate.Recorder
}

func (w *recorder) Begin(ctx context.Context, c toolgate.Call, d toolgate.Decision) error {
	start := w.m.now()
	err := w.r.Begin(ctx, c, d)
	end := w.m.now()
	w.m.auditDone(OpBegin, end.Sub(start), err)
	if err == nil && d.Action == toolgate.Review {
		w.m.mu.Lock()
		if _, dup := w.m.reviewStart[c.ID]; !dup {
			w.m.reviewStart[c.ID] = end
			w.m.pending.Inc()
		}
		w.m.mu.Unlock()
	}
	return err
}

func (w *recorder) Resolve(ctx context.Context, id string, v toolgate.Verdict) error {
	now := w.m.now()
	w.m.ReviewEnded(id, v)
	err := w.r.Resolve(ctx, id, v)
	w.m.auditDone(OpResolve, w.m.now().Sub(now), err)
	return err
}

// ReviewEnded counts the end of review id with verdict v: it lowers
// toolgate_pending_reviews, counts toolgate_reviews_total and observes the
// latency. The wrapped Recorder's Resolve calls it; a review that ended
// after its call stopped waiting (review.Options.OnHeldEnd) is told here
// directly.
func (m *Metrics) ReviewEnded(id string, v toolgate.Verdict) {
	now := m.now()
	m.mu.Lock()
	start, ok := m.reviewStart[id]
	if ok {
		delete(m.reviewStart, id)
		m.pending.Dec()
	}
	m.mu.Unlock()
	channel := m.channels.label(v.Channel, v.Channel)
	if channel == "" {
		channel = "unknown"
	}
	verdict := "denied"
	if v.Approved {
		verdict = "approved"
	}
	m.reviews.WithLabelValues(channel, verdict).Inc()
	if ok {
		m.reviewLat.WithLabelValues(channel).Observe(now.Sub(start).Seconds())
	}
}

// Finish only counts an immediate failure: the audit log writes outcomes
// behind, and reports their commit through OutcomeWritten.
func (w *recorder) Finish(ctx context.Context, id string, o toolgate.Outcome) error {
	err := w.r.Finish(ctx, id, o)
	if err != nil {
		w.m.auditErrors.WithLabelValues(OpFinish).Inc()
	}
	return err
}

// OutcomeWritten observes an outcome the audit log wrote behind (see
// audit.Options.OnBehind): the time from Finish to its being durable into
// toolgate_audit_write_seconds{op="finish"}, and a failure into
// toolgate_audit_write_errors_total{op="finish"}.
func (m *Metrics) OutcomeWritten(wait time.Duration, err error) {
	m.auditDone(OpFinish, wait, err)
}

func (m *Metrics) auditDone(op string, d time.Duration, err error) {
	m.auditWrite.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.auditErrors.WithLabelValues(op).Inc()
	}
}

// upstreamCollector reads upstream state at scrape time.
type upstreamCollector struct{ m *Metrics }

var (
	descUp = prometheus.NewDesc(Namespace+"_upstream_up",
		"1 if the upstream server is connected and listed its tools, 0 if it is down or restarting.", []string{"server"}, nil)
	descTools = prometheus.NewDesc(Namespace+"_upstream_tools",
		"Tools the upstream server exposes (its last known list while it is down).", []string{"server"}, nil)
	descRestarts = prometheus.NewDesc(Namespace+"_upstream_restarts_total",
		"Connection attempts to the upstream server after the first.", []string{"server"}, nil)
	descPlaces = prometheus.NewDesc(Namespace+"_upstream_places",
		"The upstream server's max_requests: requests sent to it at once (only for a server with the limit).", []string{"server"}, nil)
	descBusy = prometheus.NewDesc(Namespace+"_upstream_places_busy",
		"Of the upstream server's max_requests places, those the agents' requests hold.", []string{"server"}, nil)
	descWaiting = prometheus.NewDesc(Namespace+"_upstream_requests_waiting",
		"The agents' requests waiting for a place at the upstream server (max_requests).", []string{"server"}, nil)
)

func (u upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descUp
	ch <- descTools
	ch <- descRestarts
	ch <- descPlaces
	ch <- descBusy
	ch <- descWaiting
}

func (u upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	fn := u.m.upstreams.Load()
	if fn == nil {
		return
	}
	seen := map[string]bool{}
	for _, s := range (*fn)() {
		if seen[s.Name] {
			continue
		}
		seen[s.Name] = true
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, s.Name)
		ch <- prometheus.MustNewConstMetric(descTools, prometheus.GaugeValue, float64(s.Tools), s.Name)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(s.Restarts), s.Name)
		if s.Places > 0 {
			ch <- prometheus.MustNewConstMetric(descPlaces, prometheus.GaugeValue, float64(s.Places), s.Name)
			ch <- prometheus.MustNewConstMetric(descBusy, prometheus.GaugeValue, float64(s.Busy), s.Name)
			ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(s.Waiting), s.Name)
		}
	}
}

// labelSet admits at most MaxLabelValues distinct values of one label.
type labelSet struct {
	seen sync.Map // key -> struct{}
	mu   sync.Mutex
	n    int // guarded by mu
}

// label returns value, or OverflowLabel when key is new and MaxLabelValues
// keys were already admitted. key identifies value within the label (for
// tools: server and tool together).
func (l *labelSet) label(key, value string) string {
	if _, ok := l.seen.Load(key); ok {
		return value
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen.Load(key); ok {
		return value
	}
	if l.n >= MaxLabelValues {
		return OverflowLabel
	}
	l.seen.Store(key, struct{}{})
	l.n++
	return value
}
