package broker_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/config"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"

	"github.com/edxbus/edxbus/broker/brokertest"
)

const adminSchemaV0 = `{"type":"record","name":"Thing","fields":[{"name":"a","type":"string"}]}`
const adminSchemaV1 = `{"type":"record","name":"Thing","fields":[{"name":"a","type":"string"},{"name":"b","type":["null","long"],"default":null}]}`

func TestAdminSchemasByVersion(t *testing.T) {
	b := brokertest.Start(t)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	topic := "persistent://public/default/admin-schemas"
	for _, def := range []string{adminSchemaV0, adminSchemaV1} {
		p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: pulsar.NewAvroSchema(def, nil)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Send(context.Background(), &pulsar.ProducerMessage{Value: map[string]any{"a": "x"}}); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	// The schema version a consumer sees on a message names the writer's
	// schema, which the admin API returns.
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var versions []int64
	for i := 0; i < 2; i++ {
		msg, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, int64(binary.BigEndian.Uint64(msg.SchemaVersion())))
	}
	if versions[0] != 0 || versions[1] != 1 {
		t.Fatalf("message schema versions %v, want [0 1]", versions)
	}
	adm, err := pulsaradmin.NewClient(&config.Config{WebServiceURL: b.AdminURL()})
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[int64]string{0: "Thing", 1: "b"} {
		info, err := adm.Schemas().GetSchemaInfoByVersion(topic, v)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if info.Type != "AVRO" || !json.Valid(info.Schema) || !strings.Contains(string(info.Schema), want) {
			t.Fatalf("version %d: %+v", v, info)
		}
	}
	latest, err := adm.Schemas().GetSchemaInfo(topic)
	if err != nil || !strings.Contains(string(latest.Schema), `"b"`) {
		t.Fatalf("latest: %+v %v", latest, err)
	}
	if _, err := adm.Schemas().GetSchemaInfoByVersion(topic, 7); err == nil {
		t.Fatal("a missing version was found")
	}
	name, _ := utils.GetTopicName(topic)
	if _, err := adm.Topics().GetStats(*name); err != nil {
		t.Fatalf("stats: %v", err)
	}
	for path, want := range map[string]int{
		"/admin/v2/brokers/health":                                200,
		"/admin/v2/schemas/public/default/admin-schemas/schema/x": 400,
		"/admin/v2/schemas/public/default/nope/schema":            404,
		"/admin/v2/persistent/public/default":                     200,
	} {
		resp, err := http.Get(b.AdminURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// An admin connection that never sends a request (an HTTP client's spare
// dial) does not hold Close up: it is closed with the server, not left to
// Shutdown's grace period and the header timeout.
func TestCloseDropsAdminConnectionsWithoutRequests(t *testing.T) {
	b := brokertest.Start(t)
	nc, err := net.Dial("tcp", strings.TrimPrefix(b.AdminURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A served request on another connection first, so the server is up.
	resp, err := http.Get(b.AdminURL() + "/admin/v2/brokers/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second)) // far below Shutdown's 5 s grace
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read on the unused admin connection after Close: %v, want EOF", err)
	}
}
