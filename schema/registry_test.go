package schema

import (
	"errors"
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
