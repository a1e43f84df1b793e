package schema

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestFormatTime(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2024, 1, 31, 12, 0, 0, 0, time.UTC), "2024-01-31T12:00:00+00:00"},
		{time.Date(2024, 1, 31, 12, 0, 0, 123456000, time.UTC), "2024-01-31T12:00:00.123456+00:00"},
		{time.Date(2024, 1, 31, 12, 0, 0, 100000000, time.UTC), "2024-01-31T12:00:00.100000+00:00"},
		{time.Date(2024, 1, 31, 12, 0, 0, 999, time.UTC), "2024-01-31T12:00:00+00:00"},
		{time.Date(2024, 1, 31, 12, 0, 0, 1999, time.UTC), "2024-01-31T12:00:00.000001+00:00"},
		{time.Date(2024, 1, 31, 12, 0, 0, 0, time.FixedZone("", 5*3600+30*60)), "2024-01-31T12:00:00+05:30"},
		{time.Date(2024, 1, 31, 12, 0, 0, 0, time.FixedZone("", -8*3600)), "2024-01-31T12:00:00-08:00"},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.FixedZone("", 1*3600+2*60+3)), "1900-01-01T00:00:00+01:02:03"},
		{time.Date(999, 3, 4, 5, 6, 7, 0, time.UTC), "0999-03-04T05:06:07+00:00"},
	}
	for _, tt := range tests {
		if got := FormatTime(tt.in); got != tt.want {
			t.Errorf("FormatTime(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	utc := func(y, mo, d, h, mi, s, us int) time.Time {
		return time.Date(y, time.Month(mo), d, h, mi, s, us*1000, time.UTC)
	}
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2024-01-31T12:00:00+00:00", utc(2024, 1, 31, 12, 0, 0, 0)},
		{"2024-01-31T12:00:00Z", utc(2024, 1, 31, 12, 0, 0, 0)},
		{"2024-01-31T12:00:00z", utc(2024, 1, 31, 12, 0, 0, 0)},
		{"2024-01-31T12:00:00", utc(2024, 1, 31, 12, 0, 0, 0)},
		{"2024-01-31 12:00:00", utc(2024, 1, 31, 12, 0, 0, 0)},
		{"2024-01-31T12:00", utc(2024, 1, 31, 12, 0, 0, 0)},
		{"2024-01-31", utc(2024, 1, 31, 0, 0, 0, 0)},
		{"2024-01-31T12:00:00.1+00:00", utc(2024, 1, 31, 12, 0, 0, 100000)},
		{"2024-01-31T12:00:00.123+00:00", utc(2024, 1, 31, 12, 0, 0, 123000)},
		{"2024-01-31T12:00:00.123456+00:00", utc(2024, 1, 31, 12, 0, 0, 123456)},
		{"2024-01-31T12:00:00.123456789Z", utc(2024, 1, 31, 12, 0, 0, 123456)},
		{"2024-01-31T12:00:00,5Z", utc(2024, 1, 31, 12, 0, 0, 500000)},
		{"2024-01-31T14:00:00+02:00", utc(2024, 1, 31, 12, 0, 0, 0)},
		{"2024-01-31T04:00:00-0800", utc(2024, 1, 31, 12, 0, 0, 0)},
		{"2024-01-31T13:02:03+01:02:03", utc(2024, 1, 31, 12, 0, 0, 0)},
		{"2024-01-31T13:02:03+01:02:03.5", utc(2024, 1, 31, 12, 0, 0, 0)},
		{"2024-02-29T00:00:00+00:00", utc(2024, 2, 29, 0, 0, 0, 0)},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	bad := []string{"", "2024", "2024-1-31", "2024-01-31T", "2024-01-31T1:00", "2024-01-31T12", "2024-01-31X12:00:00",
		"2024-13-01", "2023-02-29", "2024-01-00", "2024-01-31T24:00:00", "2024-01-31T12:60:00", "2024-01-31T12:00:60",
		"2024-01-31T12:00:00.", "2024-01-31T12:00:00+", "2024-01-31T12:00:00+24:00", "2024-01-31T12:00:00+01:60",
		"2024-01-31T12:00:00 UTC", "2024-01-31T12:00:00+00:00x", "0000-01-01", "２０２４-01-31", "2024-01-31T12:00:00+01:0a",
		"9999-12-31T23:00:00-02:00", "0001-01-01T00:30:00+01:00"}
	for _, in := range bad {
		_, err := ParseTime(in)
		var tfe *TimeFormatError
		if !errors.As(err, &tfe) || tfe.Value != in {
			t.Errorf("ParseTime(%q) error = %v, want *TimeFormatError", in, err)
		}
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(2024, 1, 31, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 1, 31, 12, 0, 0, 7000, time.UTC),
		time.Date(2024, 7, 1, 1, 2, 3, 456789000, time.FixedZone("", -3*3600-30*60)),
	} {
		got, err := ParseTime(FormatTime(ts))
		if err != nil || !got.Equal(ts) {
			t.Errorf("ParseTime(FormatTime(%v)) = %v, %v", ts, got, err)
		}
		if FormatTime(got) != FormatTime(ts) {
			t.Errorf("offset not kept: %s vs %s", FormatTime(got), FormatTime(ts))
		}
	}
}

func TestNewMetadataAndProperties(t *testing.T) {
	before := time.Now().UTC().Add(-time.Second)
	m := NewMetadata(EventCourseCatalogInfoChanged, WithService("cms"), WithSourceHost("studio-1"))
	id, err := uuid.Parse(m.ID)
	if err != nil || id.Version() != 1 {
		t.Fatalf("ID %q is not a version 1 UUID (%v)", m.ID, err)
	}
	if m.Time.Before(before) || m.Time.Location() != time.UTC || m.Time.Nanosecond()%1000 != 0 {
		t.Fatalf("Time = %v, want now in UTC at microsecond precision", m.Time)
	}
	props := m.Properties()
	want := map[string]string{
		"ce_id": m.ID, "ce_type": EventCourseCatalogInfoChanged, "ce_source": "openedx/cms/web", "ce_specversion": "1.0",
		"ce_time": FormatTime(m.Time), "ce_minorversion": "0", "sourcehost": "studio-1", "sourcelib": SourceLibVersion,
		"content-type": "application/avro", "ce_datacontenttype": "application/avro",
	}
	if !reflect.DeepEqual(props, want) {
		t.Fatalf("Properties() = %v\nwant %v", props, want)
	}
	back, err := MetadataFromProperties(props)
	if err != nil {
		t.Fatal(err)
	}
	m.FromEventBus = true
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("MetadataFromProperties(Properties()) = %+v\nwant %+v", back, m)
	}

	fixed := time.Date(2023, 2, 2, 18, 24, 31, 123456789, time.FixedZone("", 3600))
	m2 := NewMetadata("x", WithID("6f1c9d1e-0b1a-11ee-be56-0242ac120002"), WithTime(fixed), WithSource("custom"),
		WithSourceLib("9.0.0"), WithMinorVersion(3))
	if m2.ID != "6f1c9d1e-0b1a-11ee-be56-0242ac120002" || m2.Source != "custom" || m2.SourceLib != "9.0.0" || m2.MinorVersion != 3 ||
		FormatTime(m2.Time) != "2023-02-02T17:24:31.123456+00:00" {
		t.Fatalf("options not applied: %+v", m2)
	}
	if m3 := NewMetadata("x"); m3.Source != "openedx/edxbus/web" || m3.SourceHost == "" || m3.ID == m.ID {
		t.Fatalf("defaults: %+v", m3)
	}
}

func TestMetadataFromPropertiesErrors(t *testing.T) {
	valid := map[string]string{
		"ce_id": "6f1c9d1e-0b1a-11ee-be56-0242ac120002", "ce_type": "t", "ce_time": "2023-02-02T18:24:31.123456+00:00",
	}
	with := func(k, v string) map[string]string {
		out := map[string]string{}
		for a, b := range valid {
			out[a] = b
		}
		if v == "<delete>" {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name     string
		props    map[string]string
		property string
	}{
		{"missing id", with("ce_id", "<delete>"), "ce_id"},
		{"empty id", with("ce_id", ""), "ce_id"},
		{"bad id", with("ce_id", "not-a-uuid"), "ce_id"},
		{"missing type", with("ce_type", "<delete>"), "ce_type"},
		{"missing time", with("ce_time", "<delete>"), "ce_time"},
		{"bad time", with("ce_time", "yesterday"), "ce_time"},
		{"bad minor version", with("ce_minorversion", "one"), "ce_minorversion"},
		{"negative minor version", with("ce_minorversion", "-1"), "ce_minorversion"},
		{"wrong spec version", with("ce_specversion", "0.3"), "ce_specversion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MetadataFromProperties(tt.props)
			var me *MetadataError
			if !errors.As(err, &me) || me.Property != tt.property || !strings.Contains(err.Error(), tt.property) {
				t.Fatalf("error = %v, want *MetadataError for %s", err, tt.property)
			}
		})
	}
	m, err := MetadataFromProperties(with("ce_time", "2023-02-02T19:24:31Z"))
	if err != nil || !m.FromEventBus || m.Time.Location() != time.UTC || m.Time.Hour() != 19 || m.MinorVersion != 0 {
		t.Fatalf("minimal properties: %+v, %v", m, err)
	}
	m, err = MetadataFromProperties(with("ce_id", "6F1C9D1E-0B1A-11EE-BE56-0242AC120002"))
	if err != nil || m.ID != "6f1c9d1e-0b1a-11ee-be56-0242ac120002" {
		t.Fatalf("upper-case id: %+v, %v", m, err)
	}
}
