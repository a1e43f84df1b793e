package schema

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func catalogSample() *CourseCatalogInfoChanged {
	end := NewDateTime(time.Date(2024, 6, 30, 23, 59, 59, 123456000, time.UTC))
	return &CourseCatalogInfoChanged{CatalogInfo: CourseCatalogData{
		CourseKey: "course-v1:edX+DemoX+Demo_Course",
		Name:      "Demonstration Course",
		ScheduleData: CourseScheduleData{
			Start:  NewDateTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
			Pacing: "instructor",
			End:    &end,
		},
		Hidden: true,
	}}
}

func mustLookup(t testing.TB, eventType string) *Event {
	t.Helper()
	ev, err := Lookup(eventType)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestTypedCatalogRoundTrip(t *testing.T) {
	ev := mustLookup(t, EventCourseCatalogInfoChanged)
	in := catalogSample()
	for _, v := range []any{in, *in} {
		data, err := ev.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		out, err := ev.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := out.(*CourseCatalogInfoChanged)
		if !ok {
			t.Fatalf("Decode returned %T", out)
		}
		if !reflect.DeepEqual(got, in) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, in)
		}
		key, err := ev.KeyOf(got)
		if err != nil || key != "course-v1:edX+DemoX+Demo_Course" {
			t.Fatalf("KeyOf = %q, %v", key, err)
		}
	}
}

func TestEncodeRejectsWrongType(t *testing.T) {
	ev := mustLookup(t, EventCourseCatalogInfoChanged)
	var nilPtr *CourseCatalogInfoChanged
	var nilMap *map[string]any
	for _, v := range []any{nil, nilPtr, nilMap, &CertificateEvent{}, "text", 42} {
		_, err := ev.Encode(v)
		var ee *EncodeError
		if !errors.As(err, &ee) {
			t.Errorf("Encode(%T) error = %v, want *EncodeError", v, err)
		}
	}
	generic := mustLookup(t, "org.openedx.content_authoring.course.created.v1")
	if _, err := generic.Encode(catalogSample()); err == nil {
		t.Error("generic event accepted a typed struct")
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	ev := mustLookup(t, EventCourseCatalogInfoChanged)
	good, err := ev.Encode(catalogSample())
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string][]byte{
		"empty":          nil,
		"truncated":      good[:len(good)-3],
		"trailing bytes": append(append([]byte{}, good...), 0),
		"huge string":    {0xfe, 0xff, 0xff, 0xff, 0x0f},
		"negative len":   {0x01},
		"bad datetime":   mustEncodeGenericCatalog(t, ev, "not a date"),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ev.Decode(data)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error = %v, want *DecodeError", err)
			}
		})
	}
}

func mustEncodeGenericCatalog(t *testing.T, ev *Event, start string) []byte {
	t.Helper()
	data, err := ev.Encode(map[string]any{"catalog_info": map[string]any{
		"course_key": "course-v1:a+b+c", "name": "n",
		"schedule_data": map[string]any{"start": start, "pacing": "self", "end": nil, "enrollment_start": nil, "enrollment_end": nil},
		"hidden":        false, "invitation_only": false,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}
