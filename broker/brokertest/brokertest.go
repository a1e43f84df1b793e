// Package brokertest starts embedded brokers for tests: on free ports of
// 127.0.0.1, in memory unless a data dir option says otherwise, closed when
// the test ends. It does not provide clients or fixtures.
package brokertest

import (
	"context"
	"testing"

	"github.com/edxbus/edxbus/broker"
)

// Start starts a broker listening on 127.0.0.1:0 (binary protocol) and
// 127.0.0.1:0 (admin), applies opts after those defaults, and closes it in
// t.Cleanup. It fails the test if the broker cannot start.
func Start(t testing.TB, opts ...broker.Option) *broker.Broker {
	t.Helper()
	all := append([]broker.Option{broker.WithAddr("127.0.0.1:0"), broker.WithAdminAddr("127.0.0.1:0")}, opts...)
	b, err := broker.New(all...)
	if err != nil {
		t.Fatalf("brokertest: new broker: %v", err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("brokertest: start broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("brokertest: close broker: %v", err)
		}
	})
	return b
}
