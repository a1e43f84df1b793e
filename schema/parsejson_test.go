package schema

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const catalogJSON = `{"catalog_info": {"course_key": "course-v1:edX+DemoX+Demo_Course", "name": "Demonstration Course",
 "schedule_data": {"start": "2024-01-01T00:00:00+00:00", "pacing": "instructor", "end": "2024-06-30T23:59:59.123456Z",
  "enrollment_start": null}, "hidden": true, "invitation_only": false}}`

func TestParseJSONTyped(t *testing.T) {
	ev := mustLookup(t, EventCourseCatalogInfoChanged)
	v, err := ev.ParseJSON([]byte(catalogJSON))
	if err != nil {
		t.Fatal(err)
	}
	got, ok := v.(*CourseCatalogInfoChanged)
	if !ok {
		t.Fatalf("ParseJSON returned %T", v)
	}
	if !reflect.DeepEqual(got, catalogSample()) {
		t.Fatalf("ParseJSON = %+v\nwant %+v", got, catalogSample())
	}
	if _, err := ev.Encode(v); err != nil {
		t.Fatalf("Encode(ParseJSON(...)): %v", err)
	}
}

func TestParseJSONGeneric(t *testing.T) {
	ev := mustLookup(t, "org.openedx.learning.discussions.configuration.changed.v1")
	in := `{"configuration": {"course_key": "course-v1:a+b+c", "provider_type": "openedx", "enabled": false,
	  "enable_in_context": true, "enable_graded_units": false, "unit_level_visibility": true,
	  "plugin_configuration": {"x": true},
	  "contexts": [{"title": "T", "usage_key": null, "group_id": 0, "external_id": "e", "context": {"a": "b"}}]}}`
	v, err := ev.ParseJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := v.(*map[string]any)
	if !ok {
		t.Fatalf("ParseJSON returned %T", v)
	}
	data, err := ev.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ev.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	ctx := (*back.(*map[string]any))["configuration"].(map[string]any)["contexts"].([]any)[0].(map[string]any)
	if ctx["group_id"] != int64(0) || ctx["ordering"] != nil || ctx["title"] != "T" {
		t.Fatalf("decoded context = %v", ctx)
	}

	enr := mustLookup(t, EventCourseEnrollmentCreated)
	v, err = enr.ParseJSON([]byte(`{"enrollment": {"user": {"id": 7, "is_active": true, "pii": {"username": "u", "email": "e", "name": ""}},
	  "course": {"course_key": "course-v1:a+b+c", "display_name": "C", "start": "2024-01-01T00:00:00", "end": null},
	  "mode": "audit", "is_active": true, "creation_date": "2024-01-02T03:04:05+02:00",
	  "created_by": {"id": 1, "is_active": true, "pii": {"username": "staff", "email": "s", "name": "S"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	e := v.(*CourseEnrollmentEvent).Enrollment
	if e.CreatedBy == nil || e.CreatedBy.PII.Username != "staff" || FormatTime(e.CreationDate.Time) != "2024-01-02T03:04:05+02:00" ||
		FormatTime(e.Course.Start.Time) != "2024-01-01T00:00:00+00:00" || e.Course.End != nil {
		t.Fatalf("enrollment = %+v", e)
	}
}

func TestParseJSONErrors(t *testing.T) {
	ev := mustLookup(t, EventCourseCatalogInfoChanged)
	replace := func(old, new string) string {
		if !strings.Contains(catalogJSON, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(catalogJSON, old, new, 1)
	}
	tests := []struct {
		name, in, path, reason string
	}{
		{"not JSON", `{"catalog_info":`, "", "not valid JSON"},
		{"trailing", catalogJSON + `{}`, "", "trailing data"},
		{"not an object", `[]`, "", "want an object"},
		{"missing top-level", `{}`, "catalog_info", "missing"},
		{"missing nested", replace(`"pacing": "instructor", `, ""), "catalog_info.schedule_data.pacing", "missing"},
		{"unknown field", replace(`"hidden": true`, `"hidden": true, "zzz": 1, "extra": 2`), "catalog_info.extra", "unknown field"},
		{"wrong type string", replace(`"name": "Demonstration Course"`, `"name": 5`), "catalog_info.name", "want a string, got the number 5"},
		{"wrong type bool", replace(`"hidden": true`, `"hidden": "yes"`), "catalog_info.hidden", "want true or false"},
		{"null required", replace(`"hidden": true`, `"hidden": null`), "catalog_info.hidden", "must not be null"},
		{"bad datetime", replace(`"2024-01-01T00:00:00+00:00"`, `"01/01/2024"`), "catalog_info.schedule_data.start", "ISO 8601"},
		{"bad optional datetime", replace(`"enrollment_start": null`, `"enrollment_start": "soon"`), "catalog_info.schedule_data.enrollment_start", "ISO 8601"},
		{"record as string", replace(`"schedule_data": {`, `"schedule_data": "x", "y": {`), "catalog_info.schedule_data", "want an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ev.ParseJSON([]byte(tt.in))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Path != tt.path || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("error = %v, want FieldError at %q containing %q", err, tt.path, tt.reason)
			}
			if tt.path != "" && !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("message %q does not name the field", err)
			}
		})
	}

	grade := mustLookup(t, EventPersistentGradeSummaryChanged)
	gradeJSON := `{"grade": {"user_id": %s, "course": {"course_key": "c", "display_name": "d", "start": null, "end": null},
	  "course_edited_timestamp": "2024-01-01T00:00:00+00:00", "course_version": "v", "grading_policy_hash": "h",
	  "percent_grade": %s, "letter_grade": "A", "passed_timestamp": "2024-01-01T00:00:00+00:00"}}`
	numeric := []struct{ userID, percent, path, reason string }{
		{"1.5", "0.5", "grade.user_id", "want an integer in the 64-bit range"},
		{"99999999999999999999", "0.5", "grade.user_id", "64-bit"},
		{`"1"`, "0.5", "grade.user_id", "want an integer, got the string"},
		{"1", `"0.5"`, "grade.percent_grade", "want a number"},
		{"1", "1e999", "grade.percent_grade", "finite"},
	}
	for _, n := range numeric {
		_, err := grade.ParseJSON([]byte(strings.Replace(strings.Replace(gradeJSON, "%s", n.userID, 1), "%s", n.percent, 1)))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Path != n.path || !strings.Contains(fe.Reason, n.reason) {
			t.Errorf("user_id=%s percent=%s: error = %v, want %q at %s", n.userID, n.percent, err, n.reason, n.path)
		}
	}
	ok, err := grade.ParseJSON([]byte(strings.Replace(strings.Replace(gradeJSON, "%s", "42", 1), "%s", "0.875", 1)))
	if err != nil {
		t.Fatal(err)
	}
	g := ok.(*PersistentGradeSummaryChanged).Grade
	if g.UserID != 42 || g.PercentGrade != 0.875 || !g.PassedTimestamp.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("grade = %+v", g)
	}

	disc := mustLookup(t, "org.openedx.learning.discussions.configuration.changed.v1")
	_, err = disc.ParseJSON([]byte(`{"configuration": {"course_key": "c", "provider_type": "p", "enabled": true, "enable_in_context": true,
	  "enable_graded_units": true, "unit_level_visibility": true, "plugin_configuration": {"a": 1}, "contexts": []}}`))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != `configuration.plugin_configuration["a"]` {
		t.Fatalf("map value error = %v", err)
	}
	_, err = disc.ParseJSON([]byte(`{"configuration": {"course_key": "c", "provider_type": "p", "enabled": true, "enable_in_context": true,
	  "enable_graded_units": true, "unit_level_visibility": true, "plugin_configuration": {}, "contexts": [{"title": 3}]}}`))
	if !errors.As(err, &fe) || fe.Path != "configuration.contexts[0].title" {
		t.Fatalf("array element error = %v", err)
	}
}
