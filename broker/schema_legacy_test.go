package broker_test

import (
	"strings"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/broker/internal/storage"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// Metadata records exactly as the interim schema registry
// (broker/schemastore.go until broker/internal/schemareg was wired in) wrote
// them: "live" has userSchema (with a property) then userSchemaV2, "gone"
// had a STRING schema at version 0 and was deleted (the interim delete
// emptied the list and kept the counter), "again" had userSchema at 0,
// deleted, then userSchemaV2 as JSON at version 1.
const (
	legacyLive  = `{"versions":[{"type":4,"name":"Avro","data":"eyJ0eXBlIjoicmVjb3JkIiwibmFtZSI6IlVzZXIiLCJuYW1lc3BhY2UiOiJjb20uZXhhbXBsZSIsImZpZWxkcyI6W3sibmFtZSI6Im5hbWUiLCJ0eXBlIjoic3RyaW5nIn0seyJuYW1lIjoiYWdlIiwidHlwZSI6ImludCJ9XX0=","properties":{"k":"v"},"version":0,"timestamp":1795357345813},{"type":4,"name":"Avro","data":"eyJ0eXBlIjoicmVjb3JkIiwibmFtZSI6IlVzZXIiLCJuYW1lc3BhY2UiOiJjb20uZXhhbXBsZSIsImZpZWxkcyI6W3sibmFtZSI6Im5hbWUiLCJ0eXBlIjoic3RyaW5nIn0seyJuYW1lIjoiYWdlIiwidHlwZSI6ImludCJ9LHsibmFtZSI6ImVtYWlsIiwidHlwZSI6WyJudWxsIiwic3RyaW5nIl0sImRlZmF1bHQiOm51bGx9XX0=","version":1,"timestamp":1795357345814}],"next":2}`
	legacyGone  = `{"versions":null,"next":1}`
	legacyAgain = `{"versions":[{"type":2,"name":"Json","data":"eyJ0eXBlIjoicmVjb3JkIiwibmFtZSI6IlVzZXIiLCJuYW1lc3BhY2UiOiJjb20uZXhhbXBsZSIsImZpZWxkcyI6W3sibmFtZSI6Im5hbWUiLCJ0eXBlIjoic3RyaW5nIn0seyJuYW1lIjoiYWdlIiwidHlwZSI6ImludCJ9LHsibmFtZSI6ImVtYWlsIiwidHlwZSI6WyJudWxsIiwic3RyaW5nIl0sImRlZmF1bHQiOm51bGx9XX0=","version":1,"timestamp":1795357345814}],"next":2}`
)

func writeMeta(t *testing.T, dir string, kv map[string]string) {
	t.Helper()
	st, err := storage.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range kv {
		if err := st.PutMeta(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func readMeta(t *testing.T, dir, key string) string {
	t.Helper()
	st, err := storage.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := st.GetMeta(key)
	if err != nil {
		t.Fatalf("GetMeta(%s): %v", key, err)
	}
	return string(v)
}

func TestLegacySchemaRecordsStillLoad(t *testing.T) {
	dir := t.TempDir()
	writeMeta(t, dir, map[string]string{
		"schemas/public/default/live":  legacyLive,
		"schemas/public/default/gone":  legacyGone,
		"schemas/public/default/again": legacyAgain,
	})
	const (
		live  = "persistent://public/default/live"
		gone  = "persistent://public/default/gone"
		again = "persistent://public/default/again"
	)
	check := func(t *testing.T, b *broker.Broker, goneLatest int64) {
		t.Helper()
		all, err := b.Schemas(live)
		if err != nil || len(all) != 2 || all[0].Version != 0 || all[1].Version != 1 {
			t.Fatalf("live schemas: %+v, %v", all, err)
		}
		if all[0].Type != wire.Schema_Avro || string(all[0].Data) != userSchema || all[0].Properties["k"] != "v" ||
			string(all[1].Data) != userSchemaV2 || all[0].Timestamp.UnixMilli() != 1795357345813 {
			t.Fatalf("live schemas changed in loading: %+v", all)
		}
		if s, err := b.Schema(again, -1); err != nil || s.Version != 1 || s.Type != wire.Schema_Json {
			t.Fatalf("again latest: %+v, %v", s, err)
		}
		if _, err := b.Schema(again, 0); broker.ErrorCode(err) != "TopicNotFound" {
			t.Fatalf("again version 0 (deleted): %v", err)
		}
		if _, err := b.Schema(gone, 0); broker.ErrorCode(err) != "TopicNotFound" {
			t.Fatalf("gone version 0 (deleted): %v", err)
		}
		s, err := b.Schema(gone, -1)
		if goneLatest < 0 {
			if broker.ErrorCode(err) != "TopicNotFound" {
				t.Fatalf("gone latest: %+v, %v; want none", s, err)
			}
		} else if err != nil || s.Version != goneLatest {
			t.Fatalf("gone latest: %+v, %v; want version %d", s, err, goneLatest)
		}
	}

	b := brokertest.Start(t, broker.WithDataDir(dir))
	check(t, b, -1)
	client := newClient(t, b)
	// The loaded history takes part in equality and compatibility.
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: live, Schema: pulsar.NewAvroSchema(userSchemaV2, nil)})
	if err != nil {
		t.Fatalf("producer with the stored latest schema: %v", err)
	}
	p.Close()
	if _, err := client.CreateProducer(pulsar.ProducerOptions{Topic: live, Schema: pulsar.NewAvroSchema(userSchemaAgeString, nil)}); err == nil ||
		!strings.Contains(err.Error(), "IncompatibleSchema") {
		t.Fatalf("incompatible producer on a loaded history: %v", err)
	}
	if _, err := client.CreateProducer(pulsar.ProducerOptions{Topic: live}); err == nil || !strings.Contains(err.Error(), "IncompatibleSchema") {
		t.Fatalf("schema-less producer on a loaded history: %v", err)
	}
	// A deleted legacy history admits anything and keeps counting.
	produceStrings(t, client, gone, 1, pulsar.ProducerOptions{}, nil)
	if v, err := b.PutSchema(gone, broker.SchemaInfo{Type: wire.Schema_Avro, Data: []byte(userSchemaAgeString)}); err != nil || v != 1 {
		t.Fatalf("schema on the deleted legacy history: %d, %v; want 1, as the interim registry would have numbered it", v, err)
	}
	check(t, b, 1)
	client.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// The changed history was rewritten in the current format, the others
	// were left as they were; both load.
	if rec := readMeta(t, dir, "schemas/public/default/gone"); !strings.Contains(rec, `"format":2`) || !strings.Contains(rec, `"deleted":true`) {
		t.Fatalf("rewritten record: %s", rec)
	}
	if rec := readMeta(t, dir, "schemas/public/default/live"); rec != legacyLive {
		t.Fatalf("unchanged record was rewritten: %s", rec)
	}
	check(t, brokertest.Start(t, broker.WithDataDir(dir)), 1)
}

func TestUnreadableSchemaRecordFailsStart(t *testing.T) {
	for name, rec := range map[string]string{
		"not JSON":              `{"versions":[`,
		"unknown format":        `{"format":9,"versions":[]}`,
		"unknown type":          `{"format":2,"versions":[{"version":0,"type":"MAYBE","timestamp":1}]}`,
		"versions out of order": `{"versions":[{"type":1,"version":3},{"type":1,"version":2}],"next":4}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeMeta(t, dir, map[string]string{"schemas/public/default/bad": rec})
			_, err := broker.New(broker.WithAddr("127.0.0.1:0"), broker.WithAdminAddr("127.0.0.1:0"), broker.WithDataDir(dir))
			if err == nil || !strings.Contains(err.Error(), "public/default/bad") {
				t.Fatalf("New: %v; want an error naming the record", err)
			}
		})
	}
}
