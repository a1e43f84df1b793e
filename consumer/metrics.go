package consumer

import "github.com/prometheus/client_golang/prometheus"

// Outcomes counted per event type. "applied" means every handler succeeded.
const (
	outcomeApplied      = "applied"
	outcomeDuplicate    = "duplicate"
	outcomeBusy         = "busy"
	outcomeUnhandled    = "unhandled"
	outcomeRetried      = "retried"
	outcomeDeadLettered = "dead_lettered"
)

type metrics struct {
	received      *prometheus.CounterVec
	outcomes      *prometheus.CounterVec
	failures      *prometheus.CounterVec
	handleSeconds prometheus.Histogram
	redisSeconds  prometheus.Histogram
	endToEnd      prometheus.Histogram
	redisDown     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_consumer_received_total",
			Help: "Messages received, by event type (\"unknown\" when unreadable)."}, []string{"event_type"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_consumer_outcomes_total",
			Help: "What became of each delivery: applied, duplicate, busy, unhandled, retried, dead_lettered."}, []string{"event_type", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_consumer_failures_total",
			Help: "Failures by kind (decode, metadata, unknown_type, handler_permanent, handler_transient, redis, schema_fetch, dlq_publish)."}, []string{"kind"}),
		handleSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_consumer_handler_seconds",
			Help: "Time spent in the signal's handlers per event.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		redisSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_consumer_redis_seconds",
			Help: "Latency of dedupe calls (claim, mark).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_consumer_event_to_applied_seconds",
			Help: "From the event's time (ce_time) to the end of its handling.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 20)}),
		redisDown: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edxbus_consumer_redis_unavailable",
			Help: "1 while the dedupe Redis cannot be reached."}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.outcomes, m.failures, m.handleSeconds, m.redisSeconds, m.endToEnd, m.redisDown)
	}
	return m
}
