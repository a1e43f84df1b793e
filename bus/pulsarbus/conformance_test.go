package pulsarbus_test

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/bus/bustest"
	"github.com/edxbus/edxbus/bus/pulsarbus"
)

// newTransport is a transport on an embedded broker of its own, with
// broker-side deduplication on (Pulsar's is per namespace; edxbus turns it
// on wherever the relay publishes).
func newTransport(t *testing.T) *pulsarbus.Transport {
	t.Helper()
	b := brokertest.Start(t, broker.WithDeduplication(true))
	return newTransportOn(t, b.URL(), b.AdminURL())
}

// newTransportOn is a transport on a running broker, closed with the test.
func newTransportOn(t testing.TB, url, adminURL string) *pulsarbus.Transport {
	t.Helper()
	cfg := pulsarbus.DefaultConfig()
	cfg.URL, cfg.AdminURL, cfg.OperationTimeout = url, adminURL, 10*time.Second
	tr, err := pulsarbus.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

// The Go client names the writer schema of batched messages only (see the
// package doc).
func TestConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bus.Transport { return newTransport(t) }, bustest.WithoutWriterSchemaUnbatched())
}
