package broker_test

import (
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/golang-jwt/jwt/v5"

	"github.com/edxbus/edxbus/broker/brokertest"
)

// The official client given the admin http:// URL as its service URL looks
// topics up over HTTP, then talks the binary protocol to the broker it was
// sent to; with authentication on, the lookups carry the token too.
func TestHTTPServiceURL(t *testing.T) {
	t.Run("open", func(t *testing.T) {
		b := brokertest.Start(t)
		c := authClient(t, b.AdminURL(), nil)
		topic := topicName(t)
		cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s"})
		if err != nil {
			t.Fatalf("subscribe through HTTP lookup: %v", err)
		}
		defer cons.Close()
		produceN(t, c, topic, 3)
		if got := receiveN(t, cons, 3, 10*time.Second); len(got) != 3 {
			t.Fatalf("received %d of 3", len(got))
		}
	})
	t.Run("token", func(t *testing.T) {
		b := securedBroker(t)
		studio := authClient(t, b.AdminURL(), pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, secret, "studio", time.Hour)))
		produceN(t, studio, topicName(t), 1)
		anonymous := authClient(t, b.AdminURL(), nil)
		if _, err := anonymous.CreateProducer(pulsar.ProducerOptions{Topic: topicName(t)}); err == nil {
			t.Fatal("anonymous HTTP lookup accepted")
		}
	})
}
