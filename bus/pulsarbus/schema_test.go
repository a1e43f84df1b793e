package pulsarbus_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/schema"
)

func mustLookup(t testing.TB, eventType string) *schema.Event {
	t.Helper()
	ev, err := schema.Lookup(eventType)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func catalogSample() *schema.CourseCatalogInfoChanged {
	end := schema.NewDateTime(time.Date(2024, 6, 30, 23, 59, 59, 123456000, time.UTC))
	return &schema.CourseCatalogInfoChanged{CatalogInfo: schema.CourseCatalogData{
		CourseKey: "course-v1:edX+DemoX+Demo_Course",
		Name:      "Demonstration Course",
		ScheduleData: schema.CourseScheduleData{
			Start:  schema.NewDateTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
			Pacing: "instructor",
			End:    &end,
		},
		Hidden: true,
	}}
}

func TestSchema(t *testing.T) {
	if pulsarbus.Schema(nil) != nil {
		t.Fatal("Schema(nil) is not a nil pulsar.Schema")
	}
	ev := mustLookup(t, schema.EventCourseCatalogInfoChanged)
	ps := pulsarbus.Schema(ev)
	info := ps.GetSchemaInfo()
	if info.Type != pulsar.AVRO || info.Name != ev.Type || info.Schema != ev.SchemaJSON {
		t.Fatalf("SchemaInfo = %+v", info)
	}
	data, err := ps.Encode(catalogSample())
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.Validate(data); err != nil {
		t.Fatal(err)
	}
	if err := ps.Validate(data[:3]); err == nil {
		t.Fatal("Validate accepted truncated data")
	}
	var typed schema.CourseCatalogInfoChanged
	if err := ps.Decode(data, &typed); err != nil || !reflect.DeepEqual(&typed, catalogSample()) {
		t.Fatalf("Decode(&struct) = %+v, %v", typed, err)
	}
	var anyV any
	if err := ps.Decode(data, &anyV); err != nil || !reflect.DeepEqual(anyV, catalogSample()) {
		t.Fatalf("Decode(&any) = %+v, %v", anyV, err)
	}
	var wrong map[string]any
	if err := ps.Decode(data, &wrong); !errors.As(err, new(*schema.DecodeError)) {
		t.Fatalf("Decode(&map) error = %v, want *DecodeError", err)
	}
	if err := ps.Decode(data, typed); err == nil {
		t.Fatal("Decode into a non-pointer succeeded")
	}
	if err := ps.Decode(data[:3], &typed); err == nil {
		t.Fatal("Decode of truncated data succeeded")
	}
	if _, err := ps.Encode(&schema.CertificateEvent{}); err == nil {
		t.Fatal("Encode of another event's type succeeded")
	}

	generic := pulsarbus.Schema(mustLookup(t, "org.openedx.content_authoring.course.created.v1"))
	data, err = generic.Encode(map[string]any{"course": map[string]any{"course_key": "course-v1:a+b+c"}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := generic.Decode(data, &m); err != nil || m["course"].(map[string]any)["course_key"] != "course-v1:a+b+c" {
		t.Fatalf("generic Decode = %v, %v", m, err)
	}
}

// The adapter against the client's own Avro schema (the sub-benchmarks
// that were in package schema): encode and decode of one catalog event.
func BenchmarkCatalogEncode(b *testing.B) {
	ev := mustLookup(b, schema.EventCourseCatalogInfoChanged)
	v := catalogSample()
	b.Run("edxbus", func(b *testing.B) {
		ps := pulsarbus.Schema(ev)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ps.Encode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pulsar.AvroSchema", func(b *testing.B) {
		ps := pulsar.NewAvroSchema(ev.SchemaJSON, nil)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ps.Encode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCatalogDecode(b *testing.B) {
	ev := mustLookup(b, schema.EventCourseCatalogInfoChanged)
	data, err := ev.Encode(catalogSample())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("edxbus", func(b *testing.B) {
		ps := pulsarbus.Schema(ev)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var v schema.CourseCatalogInfoChanged
			if err := ps.Decode(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pulsar.AvroSchema", func(b *testing.B) {
		ps := pulsar.NewAvroSchema(ev.SchemaJSON, nil)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var v schema.CourseCatalogInfoChanged
			if err := ps.Decode(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
