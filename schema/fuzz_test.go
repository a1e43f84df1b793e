package schema

import (
	"errors"
	"testing"
)

var fuzzEventTypes = []string{
	EventCourseCatalogInfoChanged,
	EventCourseEnrollmentCreated,
	"org.openedx.learning.discussions.configuration.changed.v1",
	"org.openedx.learning.ora.submission.created.v1",
}

func FuzzDecode(f *testing.F) {
	for i, eventType := range fuzzEventTypes {
		ev := mustLookup(f, eventType)
		for _, v := range typedOrGenericSamples(f, ev, int64(i)) {
			data, err := ev.Encode(v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), data)
		}
	}
	f.Add(uint8(0), []byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		ev := mustLookup(t, fuzzEventTypes[int(which)%len(fuzzEventTypes)])
		v, err := ev.Decode(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error %v is not a *DecodeError", err)
			}
			return
		}
		// Whatever decodes must encode again.
		if _, err := ev.Encode(v); err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
	})
}

func typedOrGenericSamples(f *testing.F, ev *Event, seed int64) []any {
	rnd := newRand(seed)
	var out []any
	for i := 0; i < 4; i++ {
		out = append(out, genValue(ev.Schema, rnd, ev.datetimePaths, ""))
	}
	return out
}

func FuzzMetadataFromProperties(f *testing.F) {
	good := NewMetadata(EventCourseCatalogInfoChanged).Properties()
	f.Add(good[PropID], good[PropType], good[PropTime], good[PropMinorVersion], good[PropSpecVersion], "extra")
	f.Add("", "", "", "", "", "")
	f.Add("6f1c9d1e-0b1a-11ee-be56-0242ac120002", "t", "2024-01-31T12:00:00.1234567Z", "-0", "1.0", "")
	f.Fuzz(func(t *testing.T, id, typ, ts, minor, spec, other string) {
		props := map[string]string{PropID: id, PropType: typ, PropTime: ts, PropMinorVersion: minor, PropSpecVersion: spec, "x-other": other}
		for k, v := range props {
			if v == "<omit>" {
				delete(props, k)
			}
		}
		m, err := MetadataFromProperties(props)
		if err != nil {
			var me *MetadataError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is not a *MetadataError", err)
			}
			return
		}
		if m.ID == "" || m.EventType == "" || m.Time.IsZero() || !m.FromEventBus {
			t.Fatalf("accepted incomplete metadata %+v", m)
		}
		// A valid metadata survives a trip through properties.
		again, err := MetadataFromProperties(m.Properties())
		if err != nil || again.ID != m.ID || !again.Time.Equal(m.Time) || again.MinorVersion != m.MinorVersion {
			t.Fatalf("round trip of %+v: %+v, %v", m, again, err)
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	f.Add(uint8(0), []byte(catalogJSON))
	f.Add(uint8(1), []byte(`{"enrollment": {"user": {"id": 7, "is_active": true, "pii": {"username": "u", "email": "e", "name": ""}}}}`))
	f.Add(uint8(2), []byte(`{"configuration": {"plugin_configuration": {"a": true}, "contexts": [{"title": "t", "context": {}}]}}`))
	f.Add(uint8(3), []byte(`null`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		ev := mustLookup(t, fuzzEventTypes[int(which)%len(fuzzEventTypes)])
		v, err := ev.ParseJSON(data)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			return
		}
		if _, err := ev.Encode(v); err != nil {
			t.Fatalf("ParseJSON accepted a value that does not encode: %v", err)
		}
	})
}
