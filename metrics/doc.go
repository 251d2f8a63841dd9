// Package metrics exposes toolgate's Prometheus metrics: calls, decisions,
// reviews, upstream health and audit write latency.
//
// A Metrics registers its collectors on the registry it is given (never the
// global one) and feeds them from three hooks, none of which needs a change
// elsewhere in toolgate:
//
//	reg := prometheus.NewRegistry()
//	m := metrics.New(reg)
//	g, _ := gate.New(gate.Options{
//		Observer: m,                          // calls, decisions, durations
//		Recorder: m.WrapRecorder(auditStore), // audit write latency, reviews
//		...
//	})
//	m.WatchUpstreams(catalog.Status)         // upstream health, read at scrape time
//	mux.Handle("/metrics", m.Handler())
//
// Label values are bounded: server and tool names come from the upstreams'
// catalogs, rule names from the rule file, statuses, actions and channels from
// toolgate itself. Nothing is labelled by argument, session or call id. As a
// guard against an upstream that registers tools without end, at most
// [MaxLabelValues] distinct values are kept per label; later ones are
// counted under [OverflowLabel].
package metrics
