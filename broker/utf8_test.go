package broker

import (
	"io"
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

// Names that are not UTF-8 are refused: Pulsar's are Java strings, and the
// broker's /metrics labels every topic and subscription by name (Prometheus
// panics on a label that is not UTF-8).
func TestNamesMustBeUTF8(t *testing.T) {
	b, rc := startRaw(t)
	rc.connect()
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_PRODUCER.Enum(), Producer: &wire.CommandProducer{
		Topic: proto.String("persistent://public/default/bad-\xff"), ProducerId: proto.Uint64(1), RequestId: proto.Uint64(1)}}, nil)
	if cmd := rc.read(); cmd.GetType() != wire.BaseCommand_ERROR || cmd.GetError().GetError() != wire.ServerError_InvalidTopicName {
		t.Fatalf("producer on a topic that is not UTF-8: %v, want InvalidTopicName", cmd)
	}
	rc.write(&wire.BaseCommand{Type: wire.BaseCommand_SUBSCRIBE.Enum(), Subscribe: &wire.CommandSubscribe{
		Topic: proto.String("persistent://public/default/good"), Subscription: proto.String("sub-\xfe"),
		SubType: wire.CommandSubscribe_Shared.Enum(), ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(2)}}, nil)
	if cmd := rc.read(); cmd.GetType() != wire.BaseCommand_ERROR {
		t.Fatalf("subscription name that is not UTF-8: %v, want an ERROR", cmd)
	}
	if err := b.CreateSubscription("persistent://public/default/good", "admin-\xfe", MessageID{}); ErrorCode(err) != "InvalidTopicName" {
		t.Fatalf("admin subscription name that is not UTF-8: %v, want InvalidTopicName", err)
	}
	resp, err := http.Get(b.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
}
