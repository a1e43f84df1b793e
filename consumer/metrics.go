package consumer

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// outcome is what became of one delivery.
type outcome int

const (
	// applied: every handler succeeded.
	applied outcome = iota
	duplicate
	busy
	unhandled
	retried
	deadLettered
	outcomeCount
)

func (o outcome) String() string {
	switch o {
	case applied:
		return "applied"
	case duplicate:
		return "duplicate"
	case busy:
		return "busy"
	case unhandled:
		return "unhandled"
	case retried:
		return "retried"
	}
	return "dead_lettered"
}

// Stats are the consumer's totals since New, by outcome of each delivery.
type Stats struct {
	Applied, Duplicates, Busy, Unhandled, Retried, DeadLettered int64
}

type metrics struct {
	received      *prometheus.CounterVec
	outcomes      *prometheus.CounterVec
	failures      *prometheus.CounterVec
	handleSeconds prometheus.Histogram
	redisSeconds  prometheus.Histogram
	endToEnd      prometheus.Histogram
	redisDown     prometheus.Gauge
	// batchSize: messages a worker took at once (Config.MaxBatch > 1).
	batchSize prometheus.Histogram
	// totals mirrors outcomes summed over event types, for Stats.
	totals [outcomeCount]atomic.Int64
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_consumer_received_total",
			Help: "Messages received, by event type (\"unknown\" when unreadable)."}, []string{"event_type"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_consumer_outcomes_total",
			Help: "What became of each delivery: applied, duplicate, busy, unhandled, retried, dead_lettered."}, []string{"event_type", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_consumer_failures_total",
			Help: "Failures by kind (decode, metadata, unknown_type, handler_permanent, handler_transient, redis, schema_fetch, dlq_publish, panic)."}, []string{"kind"}),
		handleSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_consumer_handler_seconds",
			Help: "Time spent in the signal's handlers per event.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		redisSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_consumer_redis_seconds",
			Help: "Latency of dedupe calls (claim, mark).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_consumer_event_to_applied_seconds",
			Help: "From the event's time (ce_time) to the end of its handling.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 20)}),
		redisDown: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edxbus_consumer_redis_unavailable",
			Help: "1 while the dedupe Redis cannot be reached."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_consumer_batch_messages",
			Help:    "Messages a worker took through the steps together (one dedupe call for their claims, one for their marks; --max-batch).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.outcomes, m.failures, m.handleSeconds, m.redisSeconds, m.endToEnd, m.redisDown, m.batchSize)
	}
	return m
}

// count records one delivery's outcome; eventType is a metric label
// already (see eventLabel).
func (m *metrics) count(eventType string, o outcome) {
	m.outcomes.WithLabelValues(eventType, o.String()).Inc()
	m.totals[o].Add(1)
}

func (m *metrics) stats() Stats {
	return Stats{Applied: m.totals[applied].Load(), Duplicates: m.totals[duplicate].Load(), Busy: m.totals[busy].Load(),
		Unhandled: m.totals[unhandled].Load(), Retried: m.totals[retried].Load(), DeadLettered: m.totals[deadLettered].Load()}
}
