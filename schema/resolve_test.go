package schema

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// The xblock events gained XBlockData.version after upstream stored its
// snapshots: data from an old producer must read with today's schema (version
// = null) and today's data must read with the old schema (version skipped).
func TestDecodeWriterXBlockVersionField(t *testing.T) {
	for _, eventType := range []string{
		"org.openedx.content_authoring.xblock.created.v1", "org.openedx.content_authoring.xblock.updated.v1",
		EventXBlockPublished, EventXBlockDeleted, EventXBlockDuplicated,
	} {
		t.Run(eventType, func(t *testing.T) {
			ev := mustLookup(t, eventType)
			upstreamJSON, ok := upstreamSchema(t, eventType)
			if !ok {
				t.Fatal("no upstream snapshot")
			}
			old := eventWithSchema(t, ev, upstreamJSON)
			info := map[string]any{"usage_key": "block-v1:edX+D+1+type@video+block@v", "block_type": "video"}
			if eventType == EventXBlockDuplicated {
				info["source_usage_key"] = "block-v1:edX+D+1+type@video+block@src"
			}
			oldData, err := old.Encode(map[string]any{"xblock_info": info})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ev.Decode(oldData); err == nil && eventType == EventXBlockDuplicated {
				t.Fatal("reading old duplicated data with the new schema as writer should fail: the field layout differs")
			}
			got, err := ev.DecodeWriter(old.SchemaJSON, oldData)
			if err != nil {
				t.Fatal(err)
			}
			xi := (*got.(*map[string]any))["xblock_info"].(map[string]any)
			if xi["version"] != nil || xi["usage_key"] != info["usage_key"] || xi["source_usage_key"] != info["source_usage_key"] {
				t.Fatalf("old→new = %v", xi)
			}
			key, err := ev.KeyOf(got)
			if err != nil || key != info["usage_key"] {
				t.Fatalf("KeyOf = %q, %v", key, err)
			}

			newInfo := map[string]any{"version": "v7"}
			for k, v := range info {
				newInfo[k] = v
			}
			newData, err := ev.Encode(map[string]any{"xblock_info": newInfo})
			if err != nil {
				t.Fatal(err)
			}
			back, err := old.DecodeWriter(ev.SchemaJSON, newData)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]any{"xblock_info": info}; !reflect.DeepEqual(*back.(*map[string]any), want) {
				t.Fatalf("new→old = %v, want %v", *back.(*map[string]any), want)
			}
			if len(ev.resolved) != 1 || len(old.resolved) != 1 {
				t.Fatalf("resolved caches hold %d and %d schemas, want 1 each", len(ev.resolved), len(old.resolved))
			}
			if _, err := ev.DecodeWriter(old.SchemaJSON, oldData); err != nil || len(ev.resolved) != 1 {
				t.Fatalf("second DecodeWriter: %v, cache %d", err, len(ev.resolved))
			}
		})
	}
}

func TestDecodeWriterErrors(t *testing.T) {
	ev := mustLookup(t, EventCourseCatalogInfoChanged)
	good, err := ev.Encode(catalogSample())
	if err != nil {
		t.Fatal(err)
	}
	// Same schema, other formatting: no resolution needed.
	compact := strings.Join(strings.Fields(ev.SchemaJSON), "")
	if v, err := ev.DecodeWriter(compact, good); err != nil || !reflect.DeepEqual(v, catalogSample()) {
		t.Fatalf("DecodeWriter(compact own schema) = %v, %v", v, err)
	}
	tests := []struct {
		name, writer string
	}{
		{"not JSON", "{"},
		{"not a schema", `{"type": "nope"}`},
		{"incompatible", `{"type":"record","name":"CloudEvent","namespace":"` + EventCourseCatalogInfoChanged + `","fields":[{"name":"catalog_info","type":"long"}]}`},
		{"other record name", `{"type":"record","name":"Other","fields":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ev.DecodeWriter(tt.writer, good)
			var ie *IncompatibleSchemaError
			if !errors.As(err, &ie) || ie.EventType != ev.Type {
				t.Fatalf("error = %v, want *IncompatibleSchemaError", err)
			}
		})
	}
	if _, err := ev.DecodeWriter(compact, good[:5]); !errors.As(err, new(*DecodeError)) {
		t.Fatalf("truncated data: %v, want *DecodeError", err)
	}
}

// A typed event resolves too: an older writer without the optional
// enrollment_end and with an extra field the reader does not know.
func TestDecodeWriterTypedResolution(t *testing.T) {
	ev := mustLookup(t, EventCourseCatalogInfoChanged)
	olderJSON := strings.Replace(ev.SchemaJSON,
		`{
                  "name": "enrollment_end",
                  "type": [
                    "null",
                    "string"
                  ],
                  "default": null
                }`, `{"name": "legacy_note", "type": "string"}`, 1)
	if olderJSON == ev.SchemaJSON {
		t.Fatal("fixture edit did not apply")
	}
	older := eventWithSchema(t, ev, olderJSON)
	data, err := older.Encode(map[string]any{"catalog_info": map[string]any{
		"course_key": "course-v1:a+b+c", "name": "n", "hidden": false, "invitation_only": true,
		"schedule_data": map[string]any{"start": "2024-01-01T00:00:00+00:00", "pacing": "self", "end": nil,
			"enrollment_start": "2023-12-01T00:00:00+00:00", "legacy_note": "dropped"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := ev.DecodeWriter(olderJSON, data)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(*CourseCatalogInfoChanged).CatalogInfo
	if got.CourseKey != "course-v1:a+b+c" || !got.InvitationOnly || got.ScheduleData.EnrollmentEnd != nil ||
		got.ScheduleData.EnrollmentStart == nil || got.ScheduleData.EnrollmentStart.String() != "2023-12-01T00:00:00+00:00" {
		t.Fatalf("resolved typed value = %+v", got)
	}
}

func TestDecodeWriterConcurrent(t *testing.T) {
	ev := mustLookup(t, EventXBlockPublished)
	upstreamJSON, _ := upstreamSchema(t, EventXBlockPublished)
	old := eventWithSchema(t, ev, upstreamJSON)
	data, err := old.Encode(map[string]any{"xblock_info": map[string]any{"usage_key": "u", "block_type": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			var err error
			for j := 0; j < 50 && err == nil; j++ {
				var v any
				v, err = ev.DecodeWriter(upstreamJSON, data)
				if err == nil {
					if k, kerr := ev.KeyOf(v); kerr != nil || k != "u" {
						err = fmt.Errorf("KeyOf = %q, %v", k, kerr)
					}
				}
			}
			errs <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
