package schema

// Event types with Go types in this package, plus the few others the
// registry treats specially. Every other registered type is addressed by its
// string and decodes to a generic map.
const (
	EventCourseCatalogInfoChanged      = "org.openedx.content_authoring.course.catalog_info.changed.v1"
	EventCoursePassingStatusUpdated    = "org.openedx.learning.course.passing.status.updated.v1"
	EventPersistentGradeSummaryChanged = "org.openedx.learning.course.persistent_grade_summary.changed.v1"
	EventCertificateCreated            = "org.openedx.learning.certificate.created.v1"
	EventCertificateChanged            = "org.openedx.learning.certificate.changed.v1"
	EventCertificateRevoked            = "org.openedx.learning.certificate.revoked.v1"
	EventCourseEnrollmentCreated       = "org.openedx.learning.course.enrollment.created.v1"
	EventCourseEnrollmentChanged       = "org.openedx.learning.course.enrollment.changed.v1"
	EventCourseImportCompleted         = "org.openedx.content_authoring.course.import.completed.v1"
	EventCourseRerunCompleted          = "org.openedx.content_authoring.course.rerun.completed.v1"
	EventRoleAssignmentCreated         = "org.openedx.authz.role_assignment.created"
	EventRoleAssignmentDeleted         = "org.openedx.authz.role_assignment.deleted"
	EventXBlockPublished               = "org.openedx.content_authoring.xblock.published.v1"
	EventXBlockDeleted                 = "org.openedx.content_authoring.xblock.deleted.v1"
	EventXBlockDuplicated              = "org.openedx.content_authoring.xblock.duplicated.v1"
)

// CourseCatalogInfoChanged is the payload of EventCourseCatalogInfoChanged.
type CourseCatalogInfoChanged struct {
	CatalogInfo CourseCatalogData `avro:"catalog_info" json:"catalog_info"`
}

// CourseCatalogData is what catalog consumers (course-discovery) need of a course run.
type CourseCatalogData struct {
	CourseKey      string             `avro:"course_key" json:"course_key"`
	Name           string             `avro:"name" json:"name"`
	ScheduleData   CourseScheduleData `avro:"schedule_data" json:"schedule_data"`
	Hidden         bool               `avro:"hidden" json:"hidden"`
	InvitationOnly bool               `avro:"invitation_only" json:"invitation_only"`
}

// CourseScheduleData is a course run's schedule.
type CourseScheduleData struct {
	Start           DateTime  `avro:"start" json:"start"`
	Pacing          string    `avro:"pacing" json:"pacing"`
	End             *DateTime `avro:"end" json:"end"`
	EnrollmentStart *DateTime `avro:"enrollment_start" json:"enrollment_start"`
	EnrollmentEnd   *DateTime `avro:"enrollment_end" json:"enrollment_end"`
}

// UserData identifies a user (learning/data.py UserData).
type UserData struct {
	ID       int64            `avro:"id" json:"id"`
	IsActive bool             `avro:"is_active" json:"is_active"`
	PII      UserPersonalData `avro:"pii" json:"pii"`
}

// UserPersonalData is the personal part of UserData.
type UserPersonalData struct {
	Username string `avro:"username" json:"username"`
	Email    string `avro:"email" json:"email"`
	Name     string `avro:"name" json:"name"`
}

// CourseData is the learning domain's course summary (learning/data.py).
type CourseData struct {
	CourseKey   string    `avro:"course_key" json:"course_key"`
	DisplayName string    `avro:"display_name" json:"display_name"`
	Start       *DateTime `avro:"start" json:"start"`
	End         *DateTime `avro:"end" json:"end"`
}

// CoursePassingStatusUpdated is the payload of EventCoursePassingStatusUpdated.
type CoursePassingStatusUpdated struct {
	CoursePassingStatus CoursePassingStatusData `avro:"course_passing_status" json:"course_passing_status"`
}

// CoursePassingStatusData says whether a user passes a course.
type CoursePassingStatusData struct {
	IsPassing bool       `avro:"is_passing" json:"is_passing"`
	Course    CourseData `avro:"course" json:"course"`
	User      UserData   `avro:"user" json:"user"`
}

// PersistentGradeSummaryChanged is the payload of EventPersistentGradeSummaryChanged.
type PersistentGradeSummaryChanged struct {
	Grade PersistentCourseGradeData `avro:"grade" json:"grade"`
}

// PersistentCourseGradeData is a user's persisted course grade.
type PersistentCourseGradeData struct {
	UserID                int64      `avro:"user_id" json:"user_id"`
	Course                CourseData `avro:"course" json:"course"`
	CourseEditedTimestamp DateTime   `avro:"course_edited_timestamp" json:"course_edited_timestamp"`
	CourseVersion         string     `avro:"course_version" json:"course_version"`
	GradingPolicyHash     string     `avro:"grading_policy_hash" json:"grading_policy_hash"`
	PercentGrade          float64    `avro:"percent_grade" json:"percent_grade"`
	LetterGrade           string     `avro:"letter_grade" json:"letter_grade"`
	PassedTimestamp       DateTime   `avro:"passed_timestamp" json:"passed_timestamp"`
}

// CertificateEvent is the payload of EventCertificateCreated,
// EventCertificateChanged and EventCertificateRevoked.
type CertificateEvent struct {
	Certificate CertificateData `avro:"certificate" json:"certificate"`
}

// CertificateData is a user's course certificate.
type CertificateData struct {
	User           UserData   `avro:"user" json:"user"`
	Course         CourseData `avro:"course" json:"course"`
	Mode           string     `avro:"mode" json:"mode"`
	Grade          string     `avro:"grade" json:"grade"`
	DownloadURL    string     `avro:"download_url" json:"download_url"`
	Name           string     `avro:"name" json:"name"`
	CurrentStatus  string     `avro:"current_status" json:"current_status"`
	PreviousStatus string     `avro:"previous_status" json:"previous_status"`
}

// CourseEnrollmentEvent is the payload of EventCourseEnrollmentCreated and
// EventCourseEnrollmentChanged.
type CourseEnrollmentEvent struct {
	Enrollment CourseEnrollmentData `avro:"enrollment" json:"enrollment"`
}

// CourseEnrollmentData is a user's enrollment in a course.
type CourseEnrollmentData struct {
	User         UserData   `avro:"user" json:"user"`
	Course       CourseData `avro:"course" json:"course"`
	Mode         string     `avro:"mode" json:"mode"`
	IsActive     bool       `avro:"is_active" json:"is_active"`
	CreationDate DateTime   `avro:"creation_date" json:"creation_date"`
	CreatedBy    *UserData  `avro:"created_by" json:"created_by"`
}

// typedConstructor returns, for the event types with Go types, a
// constructor of a pointer to their zero value; nil for the others.
func typedConstructor(eventType string) func() any {
	switch eventType {
	case EventCourseCatalogInfoChanged:
		return func() any { return new(CourseCatalogInfoChanged) }
	case EventCoursePassingStatusUpdated:
		return func() any { return new(CoursePassingStatusUpdated) }
	case EventPersistentGradeSummaryChanged:
		return func() any { return new(PersistentGradeSummaryChanged) }
	case EventCertificateCreated, EventCertificateChanged, EventCertificateRevoked:
		return func() any { return new(CertificateEvent) }
	case EventCourseEnrollmentCreated, EventCourseEnrollmentChanged:
		return func() any { return new(CourseEnrollmentEvent) }
	}
	return nil
}

// Typed reports whether the event decodes to a Go struct of this package
// rather than to a generic map.
func (e *Event) Typed() bool { return e.newTyped != nil }

// NewValue returns a pointer to a zero value of the event's Go type, or a
// *map[string]any for events without one.
func (e *Event) NewValue() any {
	if e.newTyped != nil {
		return e.newTyped()
	}
	return new(map[string]any)
}
