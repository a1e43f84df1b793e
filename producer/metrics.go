package producer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edxbus/edxbus/producer/outbox"
)

type metrics struct {
	reg        prometheus.Registerer
	accepted   *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	published  *prometheus.CounterVec
	failures   *prometheus.CounterVec
	// resendsDropped: records the broker's dedup dropped as already stored.
	resendsDropped *prometheus.CounterVec
	latency        prometheus.Histogram
	receipt        prometheus.Histogram
	// groupRecords: records per group the relay sends as one unit.
	groupRecords prometheus.Histogram
}

// newMetrics creates the producer's collectors and registers them on reg
// (nil: kept unregistered, still counting).
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg: reg,
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_producer_accepted_total",
			Help: "Events accepted into the outbox."}, []string{"event_type"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_producer_duplicates_total",
			Help: "Events accepted again with an id already in the outbox (stored once)."}, []string{"event_type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_producer_rejected_total",
			Help: "Events refused at accept time, by reason (schema, invalid, time, key, too_large, outbox_full, outbox)."}, []string{"event_type", "reason"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_producer_published_total",
			Help: "Records receipted by the broker and deleted from the outbox."}, []string{"topic"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_producer_publish_failures_total",
			Help: "Failed sends (each followed by a backoff and a resend)."}, []string{"topic"}),
		resendsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edxbus_producer_resends_deduplicated_total",
			Help: "Records sent again after a restart or failure that the broker had stored already and dropped (its dedup at work; each is also in published_total)."}, []string{"topic"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_producer_accept_to_receipt_seconds",
			Help: "Time from outbox accept to broker receipt.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		receipt: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_producer_send_to_receipt_seconds",
			Help:    "Time from handing a record's group to the Pulsar client to the broker's receipt (the broker's persist, fsync included, and the round trip).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}),
		groupRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edxbus_producer_relay_group_records",
			Help:    "Records per group the relay sends as one Pulsar batch (one broker write and receipt): as many as were waiting on the route, up to the group limits.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000}}),
	}
	if reg != nil {
		reg.MustRegister(m.accepted, m.duplicates, m.rejected, m.published, m.failures, m.resendsDropped, m.latency, m.receipt, m.groupRecords)
	}
	return m
}

// watchOutbox exports the outbox's depth and oldest-record age as gauges.
func (m *metrics) watchOutbox(box *outbox.Outbox) {
	if m.reg == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edxbus_producer_outbox_depth",
			Help: "Records waiting in the outbox."}, func() float64 { return float64(box.Stats().Depth) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edxbus_producer_outbox_oldest_age_seconds",
			Help: "Age of the oldest record waiting in the outbox (0 when empty)."}, func() float64 {
			s := box.Stats()
			if s.OldestAcceptedAt.IsZero() {
				return 0
			}
			return time.Since(s.OldestAcceptedAt).Seconds()
		}),
	)
}
