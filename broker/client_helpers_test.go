package broker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/sirupsen/logrus"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
)

// newClient starts a broker (unless b is given) and returns a client for it.
func newClient(t testing.TB, b *broker.Broker) pulsar.Client {
	t.Helper()
	if b == nil {
		b = brokertest.Start(t)
	}
	lg := logrus.New()
	lg.SetLevel(logrus.WarnLevel)
	c, err := pulsar.NewClient(pulsar.ClientOptions{
		URL:               b.URL(),
		OperationTimeout:  10 * time.Second,
		ConnectionTimeout: 5 * time.Second,
		Logger:            plog.NewLoggerWithLogrus(lg),
	})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func topicName(t testing.TB) string {
	return fmt.Sprintf("persistent://public/default/t-%d", rand.Uint64())
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const userSchema = `{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}`

type user struct {
	Name string `avro:"name"`
	Age  int    `avro:"age"`
}

func receiveN(t testing.TB, c pulsar.Consumer, n int, timeout time.Duration) []pulsar.Message {
	t.Helper()
	var out []pulsar.Message
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for len(out) < n {
		m, err := c.Receive(ctx)
		if err != nil {
			t.Fatalf("received %d of %d: %v", len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}
