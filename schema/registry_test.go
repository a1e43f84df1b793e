package schema

import (
	"errors"
	"strings"
	"testing"
)

func TestRegistryHoldsEveryGeneratedSchema(t *testing.T) {
	all := All()
	if len(all) != 73 {
		t.Fatalf("All() = %d events, want 73", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Type >= all[i].Type {
			t.Fatalf("All() not sorted: %q before %q", all[i-1].Type, all[i].Type)
		}
	}
	for _, ev := range all {
		if ev.Schema == nil || ev.SchemaJSON == "" || ev.Topic == "" || ev.KeyField == "" {
			t.Errorf("%s: incomplete entry %+v", ev.Type, ev)
		}
		if _, err := resolveFieldPath(ev.Schema, ev.KeyField); err != nil {
			t.Errorf("%s: %v", ev.Type, err)
		}
		got, err := Lookup(ev.Type)
		if err != nil || got != ev {
			t.Errorf("Lookup(%q) = %v, %v", ev.Type, got, err)
		}
	}
}

func TestLookupUnknown(t *testing.T) {
	_, err := Lookup("org.openedx.nope.v1")
	var u *UnknownEventTypeError
	if !errors.As(err, &u) || u.EventType != "org.openedx.nope.v1" {
		t.Fatalf("Lookup(unknown) error = %v, want *UnknownEventTypeError", err)
	}
}

func TestKeyFieldsAndTopics(t *testing.T) {
	tests := []struct {
		eventType, keyField, topic string
		annotated                  bool
	}{
		{EventCourseCatalogInfoChanged, "catalog_info.course_key", "course-catalog-info-changed", true},
		{EventXBlockPublished, "xblock_info.usage_key", "course-authoring-xblock-lifecycle", true},
		{EventXBlockDuplicated, "xblock_info.usage_key", "course-authoring-xblock-lifecycle", true},
		{EventCertificateCreated, "certificate.course.course_key", "learning-certificate-lifecycle", true},
		{EventCertificateChanged, "certificate.course.course_key", "learning-certificate-lifecycle", false},
		{EventCertificateRevoked, "certificate.course.course_key", "learning-certificate-lifecycle", true},
		{EventCourseEnrollmentCreated, "enrollment.course.course_key", "learning-course-enrollment-lifecycle", true},
		{EventPersistentGradeSummaryChanged, "grade.course.course_key", "learning-course-persistent-grade-summary-lifecycle", false},
		{EventCoursePassingStatusUpdated, "course_passing_status.course.course_key", "learning-course-passing-status-lifecycle", false},
		{EventCourseImportCompleted, "course.course_key", "course-authoring-course-import-lifecycle", true},
		{EventCourseRerunCompleted, "course.course_key", "course-authoring-course-rerun-lifecycle", true},
		{EventRoleAssignmentCreated, "role_assignment.subject", "authz-role-assignment-lifecycle", true},
		{EventRoleAssignmentDeleted, "role_assignment.subject", "authz-role-assignment-lifecycle", true},
		{"org.openedx.enterprise.subsidy.redemption-reversed.v1", "redemption.subsidy_identifier", "enterprise-subsidy-lifecycle", false},
	}
	for _, tt := range tests {
		t.Run(tt.eventType, func(t *testing.T) {
			ev, err := Lookup(tt.eventType)
			if err != nil {
				t.Fatal(err)
			}
			if ev.KeyField != tt.keyField || ev.Topic != tt.topic || ev.KeyFieldAnnotated != tt.annotated {
				t.Fatalf("got key %q (annotated %v) topic %q, want %q (%v) %q", ev.KeyField, ev.KeyFieldAnnotated, ev.Topic, tt.keyField, tt.annotated, tt.topic)
			}
		})
	}
}

// A message key travels in the clear (broker logs, topic stats, partition
// routing), so no key field may be under pii, and none edxbus picks itself
// may look like personal data either (upstream's annotations may name a
// "name": the tracking log's event name).
func TestRegistryKeyFieldsAreNotPersonalData(t *testing.T) {
	for _, ev := range All() {
		for _, seg := range strings.Split(ev.KeyField, ".") {
			if seg == "pii" {
				t.Errorf("%s: key field %q is under pii", ev.Type, ev.KeyField)
			}
		}
		if !ev.KeyFieldAnnotated && personalKeyField(ev.KeyField) {
			t.Errorf("%s: key field %q names personal data", ev.Type, ev.KeyField)
		}
	}
}

func TestKeyFieldsAvoidPersonalData(t *testing.T) {
	tests := []struct{ eventType, keyField string }{
		{"org.openedx.learning.idv_attempt.created.v1", "idv_attempt.user.id"},
		{"org.openedx.learning.idv_attempt.pending.v1", "idv_attempt.user.id"},
		{"org.openedx.learning.idv_attempt.approved.v1", "idv_attempt.user.id"},
		{"org.openedx.learning.idv_attempt.denied.v1", "idv_attempt.user.id"},
		{"org.openedx.learning.ccx.course.passing.status.updated.v1", "course_passing_status.course.ccx_course_key"},
		// Upstream annotates these two with user.pii.username; edxbus
		// overrides the annotation, so they no longer count as annotated.
		{"org.openedx.learning.auth.session.login.completed.v1", "user.id"},
		{"org.openedx.learning.student.registration.completed.v1", "user.id"},
	}
	for _, tt := range tests {
		t.Run(tt.eventType, func(t *testing.T) {
			ev := mustLookup(t, tt.eventType)
			if ev.KeyField != tt.keyField || ev.KeyFieldAnnotated {
				t.Fatalf("key field %q (annotated %v), want %q chosen by edxbus", ev.KeyField, ev.KeyFieldAnnotated, tt.keyField)
			}
		})
	}
}

// user.id is an Avro long: the key is its decimal rendering, from a parsed
// JSON body and from a decoded message alike.
func TestNumericUserIDKey(t *testing.T) {
	for _, eventType := range []string{
		"org.openedx.learning.auth.session.login.completed.v1",
		"org.openedx.learning.idv_attempt.approved.v1",
	} {
		t.Run(eventType, func(t *testing.T) {
			ev := mustLookup(t, eventType)
			body := `{"user": {"id": 9007199254740993, "is_active": true, "pii": {"username": "ada", "email": "a@example.org", "name": "Ada L"}}}`
			if strings.Contains(eventType, "idv_attempt") {
				body = `{"idv_attempt": {"attempt_id": 5, "user": {"id": 9007199254740993, "is_active": true,
				  "pii": {"username": "ada", "email": "a@example.org", "name": "Ada L"}}, "status": "approved", "name": null, "expiration_date": null}}`
			}
			v, err := ev.ParseJSON([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			key, err := ev.KeyOf(v)
			if err != nil || key != "9007199254740993" {
				t.Fatalf("KeyOf(parsed) = %q, %v; want 9007199254740993", key, err)
			}
			data, err := ev.Encode(v)
			if err != nil {
				t.Fatal(err)
			}
			decoded, err := ev.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if key, err := ev.KeyOf(decoded); err != nil || key != "9007199254740993" {
				t.Fatalf("KeyOf(decoded) = %q, %v; want 9007199254740993", key, err)
			}
		})
	}
}
