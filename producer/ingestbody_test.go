package producer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/edxbus/edxbus/schema"
)

// catalogAvro is catalogJSON as openedx-events' serializer writes it.
func catalogAvro(t testing.TB) []byte {
	t.Helper()
	ev, err := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ev.ParseJSON([]byte(catalogJSON))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ev.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// queued is what the outbox holds, in order (Next blocks on an empty
// outbox, so it is asked only when there is something).
func queued(t testing.TB, p *Producer) []string {
	t.Helper()
	if p.box.Stats().Depth == 0 {
		return nil
	}
	recs, err := p.box.Next(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Topic + " " + r.Key + " " + r.EventID
	}
	return out
}

// An Avro body with ce-* headers goes on exactly like the same event as
// JSON: the outbox holds the same bytes.
func TestIngestTakesAvro(t *testing.T) {
	p, _, _ := newTestProducer(t, catalogConfig("avro"))
	h := NewIngestHandler(p)
	avro := catalogAvro(t)
	id := "6d2c8e0a-1f3b-11ef-9b1c-0242ac120003"
	rec := post(t, h, catalogPath, string(avro), map[string]string{"Content-Type": "application/avro", "ce-id": id, "ce-source": "openedx/cms/web"})
	if rec.Code != 202 {
		t.Fatalf("avro post: %d %s", rec.Code, rec.Body)
	}
	recs, err := p.box.Next(context.Background(), 0, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("outbox %v (%v)", recs, err)
	}
	if string(recs[0].Payload) != string(avro) || recs[0].EventID != id || recs[0].Properties[schema.PropSource] != "openedx/cms/web" {
		t.Fatalf("stored %+v", recs[0])
	}
	for _, tc := range []struct{ name, body string }{
		{"truncated", string(avro[:len(avro)/2])},
		{"JSON labelled Avro", catalogJSON},
	} {
		rec := post(t, h, catalogPath, tc.body, map[string]string{"Content-Type": "application/avro; charset=binary"})
		var resp errorResponse
		_ = json.Unmarshal(rec.Body.Bytes(), &resp)
		if rec.Code != 400 || !strings.Contains(resp.Error, "not a "+schema.EventCourseCatalogInfoChanged+" Avro binary") {
			t.Errorf("%s: %d %s", tc.name, rec.Code, rec.Body)
		}
	}
	if n := len(queued(t, p)); n != 1 {
		t.Fatalf("refused bodies stored: %d records", n)
	}
}

// The topic and key field a producing service chose are honoured, even for
// an event type the ingest's own configuration does not enable; a topic
// that cannot be one is refused.
func TestIngestHonoursTheServicesTopic(t *testing.T) {
	p, _, _ := newTestProducer(t, catalogConfig("configured"))
	h := NewIngestHandler(p)
	hdr := map[string]string{HeaderTopic: "dev-course-catalog-info-changed", HeaderKeyField: "catalog_info.name"}
	if rec := post(t, h, catalogPath, catalogJSON, hdr); rec.Code != 202 {
		t.Fatalf("post: %d %s", rec.Code, rec.Body)
	}
	got := queued(t, p)
	if len(got) != 1 || !strings.HasPrefix(got[0], "persistent://public/default/dev-course-catalog-info-changed Demo ") {
		t.Fatalf("outbox %v", got)
	}
	for _, tc := range []struct {
		topic, keyField, field string
	}{
		{"a/b", "", "topic"},
		{"has space", "", "topic"},
		{"fine", "catalog_info.colour", "event_key_field"},
	} {
		rec := post(t, h, catalogPath, catalogJSON, map[string]string{HeaderTopic: tc.topic, HeaderKeyField: tc.keyField})
		var resp errorResponse
		_ = json.Unmarshal(rec.Body.Bytes(), &resp)
		if rec.Code != 400 || resp.Field != tc.field {
			t.Errorf("topic %q key field %q: %d %s", tc.topic, tc.keyField, rec.Code, rec.Body)
		}
	}
	cert := "/v1/events/" + schema.EventCertificateCreated
	if rec := post(t, h, cert, certJSON, map[string]string{HeaderTopic: "learning-certificate-lifecycle"}); rec.Code != 202 {
		t.Fatalf("an event type the ingest does not enable, on the service's topic: %d %s", rec.Code, rec.Body)
	}
}

const certJSON = `{"certificate": {"user": {"id": 7, "is_active": true, "pii": {"username": "ada", "email": "a@example.org", "name": "Ada"}},
 "course": {"course_key": "course-v1:edX+C+1", "display_name": "C", "start": null, "end": null}, "mode": "verified", "grade": "0.9",
 "current_status": "downloadable", "previous_status": "notpassing", "download_url": "", "name": ""}}`

func ndjsonLine(i int, extra string) string {
	data := strings.ReplaceAll(strings.ReplaceAll(catalogJSON, "\n", " "), "DemoX+2026", fmt.Sprintf("DemoX+%d", i))
	return fmt.Sprintf(`{"event_type": %q, "data": %s, "id": "6d2c8e0a-1f3b-11ef-9b1c-0242ac12%04d"%s}`, schema.EventCourseCatalogInfoChanged, data, i, extra)
}

// A batch is accepted as a whole, in order, or refused as a whole with the
// offending line named.
func TestIngestBatchNDJSON(t *testing.T) {
	p, _, _ := newTestProducer(t, catalogConfig("batch"))
	h := NewIngestHandler(p)
	lines := []string{ndjsonLine(1, ""), "", ndjsonLine(2, `, "time": "2026-01-31T00:00:00Z"`), ndjsonLine(3, "")}
	rec := post(t, h, "/v1/events", strings.Join(lines, "\n"), map[string]string{"Content-Type": ContentTypeNDJSON})
	if rec.Code != 202 {
		t.Fatalf("batch: %d %s", rec.Code, rec.Body)
	}
	var resp batchResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Accepted != 3 || resp.Results[1].ID != "6d2c8e0a-1f3b-11ef-9b1c-0242ac120002" {
		t.Fatalf("answer %s (%v)", rec.Body, err)
	}
	if got := queued(t, p); len(got) != 3 || !strings.Contains(got[2], "DemoX+3") {
		t.Fatalf("outbox %v", got)
	}
	for _, tc := range []struct {
		name, body, want string
		line             int
	}{
		{"bad data on line 4", strings.Join([]string{ndjsonLine(4, ""), "", ndjsonLine(5, ""), strings.Replace(ndjsonLine(6, ""), `"hidden": false`, `"hidden": "no"`, 1)}, "\n"), "catalog_info.hidden", 4},
		{"not JSON on line 2", ndjsonLine(7, "") + "\n{nope\n", "line 2", 2},
		{"unknown type on line 1", `{"event_type": "org.openedx.nope.v1", "data": {}}`, "event_type", 1},
		{"not enabled on line 2", ndjsonLine(8, "") + "\n" + `{"event_type": "` + schema.EventCertificateCreated + `", "data": ` + strings.ReplaceAll(certJSON, "\n", " ") + `}`, "not enabled", 2},
		{"bad time on line 1", ndjsonLine(9, `, "time": "soon"`), "time", 1},
		{"not UTF-8 on line 2", ndjsonLine(11, "") + "\n" + strings.Replace(ndjsonLine(12, ""), "DemoX", "Demo\xffX", 1), "not valid UTF-8", 2},
		{"far ahead on line 1", ndjsonLine(13, `, "time": "9999-01-01T00:00:00Z"`), "in the future", 1},
	} {
		rec := post(t, h, "/v1/events", tc.body, map[string]string{"Content-Type": ContentTypeNDJSON})
		var er errorResponse
		_ = json.Unmarshal(rec.Body.Bytes(), &er)
		if rec.Code != 400 || er.Line != tc.line || !strings.Contains(er.Error+er.Field, tc.want) || !strings.HasPrefix(er.Error, fmt.Sprintf("line %d: ", tc.line)) {
			t.Errorf("%s: %d %s", tc.name, rec.Code, rec.Body)
		}
	}
	if got := queued(t, p); len(got) != 3 {
		t.Fatalf("a refused batch stored something: %v", got)
	}
	for _, tc := range []struct {
		contentType, body string
		status            int
	}{
		{"application/json", ndjsonLine(10, ""), 415},
		{ContentTypeNDJSON, "\n\n", 400},
	} {
		if rec := post(t, h, "/v1/events", tc.body, map[string]string{"Content-Type": tc.contentType}); rec.Code != tc.status {
			t.Errorf("%s %q: %d %s, want %d", tc.contentType, tc.body, rec.Code, rec.Body, tc.status)
		}
	}
}

// CloudEvents' JSON batch format: data as JSON or as base64 Avro, the
// openedx-events metadata as attributes and extensions.
func TestIngestBatchCloudEvents(t *testing.T) {
	p, _, _ := newTestProducer(t, catalogConfig("ce-batch"))
	h := NewIngestHandler(p)
	avro := base64.StdEncoding.EncodeToString(catalogAvro(t))
	body := fmt.Sprintf(`[
 {"specversion": "1.0", "id": "6d2c8e0a-1f3b-11ef-9b1c-0242ac120101", "type": %[1]q, "source": "openedx/cms/web",
  "time": "2026-02-01T10:00:00Z", "minorversion": 0, "sourcehost": "studio-1", "datacontenttype": "application/json", "data": %[2]s},
 {"specversion": "1.0", "id": "6d2c8e0a-1f3b-11ef-9b1c-0242ac120102", "type": %[1]q, "source": "openedx/cms/web",
  "datacontenttype": "application/avro", "data_base64": %[3]q, "edxbustopic": "dev-catalog"}
]`, schema.EventCourseCatalogInfoChanged, strings.ReplaceAll(catalogJSON, "\n", " "), avro)
	rec := post(t, h, "/v1/events", body, map[string]string{"Content-Type": ContentTypeCloudEventsBatch})
	if rec.Code != 202 {
		t.Fatalf("batch: %d %s", rec.Code, rec.Body)
	}
	recs, err := p.box.Next(context.Background(), 0, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("outbox %v (%v)", recs, err)
	}
	if recs[0].Properties[schema.PropSourceHost] != "studio-1" || recs[0].Properties[schema.PropTime] != "2026-02-01T10:00:00+00:00" ||
		recs[1].Topic != "persistent://public/default/dev-catalog" || string(recs[0].Payload) != string(recs[1].Payload) {
		t.Fatalf("stored %+v", recs)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"not an array", `{"specversion": "1.0"}`, "JSON array"},
		{"wrong specversion", `[{"specversion": "0.3", "type": "x"}]`, "line 1: specversion"},
		{"no data", fmt.Sprintf(`[{"specversion": "1.0", "type": %q}]`, schema.EventCourseCatalogInfoChanged), "line 1: no data"},
		{"bad base64", fmt.Sprintf(`[{"specversion": "1.0", "type": %q, "data_base64": "!!"}]`, schema.EventCourseCatalogInfoChanged), "line 1: illegal base64"},
		{"bad id", fmt.Sprintf(`[{"specversion": "1.0", "type": %q, "id": "x", "data": {}}]`, schema.EventCourseCatalogInfoChanged), "UUID"},
	} {
		rec := post(t, h, "/v1/events", tc.body, map[string]string{"Content-Type": ContentTypeCloudEventsBatch})
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %s", tc.name, rec.Code, rec.Body)
		}
	}
}

// FuzzIngestBatch: no batch body panics the ingest or stores part of a
// batch it refused.
func FuzzIngestBatch(f *testing.F) {
	p, _, _ := newTestProducer(f, catalogConfig("fuzz-batch"))
	h := NewIngestHandler(p)
	f.Add(ContentTypeNDJSON, ndjsonLine(1, "")+"\n"+ndjsonLine(2, ""))
	f.Add(ContentTypeNDJSON, ndjsonLine(1, "")+"\n{")
	f.Add(ContentTypeCloudEventsBatch, `[{"specversion":"1.0","type":"`+schema.EventCourseCatalogInfoChanged+`","data_base64":"AAAA"}]`)
	f.Add(ContentTypeCloudEventsBatch, `[{"specversion":"1.0","type":"x","data":null}, 7]`)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		before := len(queued(t, p))
		rec := post(t, h, "/v1/events", body, map[string]string{"Content-Type": contentType})
		after := len(queued(t, p))
		if rec.Code != 202 && after != before {
			t.Fatalf("refused with %d but stored %d records", rec.Code, after-before)
		}
		if rec.Code >= 500 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// A producing service's key field header may not name a field under pii:
// it has no opt-in (only the operator's configuration has), so the ingest
// answers 400 for event_key_field. Without the header the registry's key,
// user.id, keys the message in decimal.
func TestIngestRefusesAServicesPIIKeyField(t *testing.T) {
	p, _, _ := newTestProducer(t, catalogConfig("configured"))
	h := NewIngestHandler(p)
	login := "/v1/events/org.openedx.learning.auth.session.login.completed.v1"
	body := `{"user": {"id": 7, "is_active": true, "pii": {"username": "ada", "email": "a@example.org", "name": "Ada"}}}`
	for _, keyField := range []string{"user.pii.username", "user.pii.email", "user.pii.name"} {
		rec := post(t, h, login, body, map[string]string{HeaderTopic: "learning-auth-lifecycle", HeaderKeyField: keyField})
		var resp errorResponse
		_ = json.Unmarshal(rec.Body.Bytes(), &resp)
		if rec.Code != 400 || resp.Field != "event_key_field" || !strings.Contains(resp.Error, "pii") {
			t.Errorf("key field %s: %d %s", keyField, rec.Code, rec.Body)
		}
	}
	if got := queued(t, p); len(got) != 0 {
		t.Fatalf("refused events reached the outbox: %v", got)
	}
	if rec := post(t, h, login, body, map[string]string{HeaderTopic: "learning-auth-lifecycle"}); rec.Code != 202 {
		t.Fatalf("post without a key field: %d %s", rec.Code, rec.Body)
	}
	got := queued(t, p)
	if len(got) != 1 || !strings.HasPrefix(got[0], "persistent://public/default/learning-auth-lifecycle 7 ") {
		t.Fatalf("outbox %v, want the event keyed by user.id", got)
	}
}

// A CloudEvents batch that is not UTF-8 is refused whole, not rewritten.
func TestIngestBatchCloudEventsNotUTF8(t *testing.T) {
	p, _, _ := newTestProducer(t, catalogConfig("batch-utf8"))
	h := NewIngestHandler(p)
	rec := post(t, h, "/v1/events", "[{\"specversion\": \"1.0\", \"data\": \"\xff\"}]", map[string]string{"Content-Type": ContentTypeCloudEventsBatch})
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "not valid UTF-8 (byte 33)") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if got := queued(t, p); len(got) != 0 {
		t.Fatalf("stored %v", got)
	}
}
