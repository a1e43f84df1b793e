package store

import "strings"

// CourseKeyParts are the pieces of a course run key.
type CourseKeyParts struct {
	Org, Number, Run string
}

// CourseKey is the course a run belongs to, as Discovery keys it: ORG+NUMBER.
func (p CourseKeyParts) CourseKey() string { return p.Org + "+" + p.Number }

// ParseCourseKey splits a course run key in either form Open edX uses:
// course-v1:ORG+NUMBER+RUN, or the old ORG/NUMBER/RUN.
func ParseCourseKey(key string) (CourseKeyParts, error) {
	bad := func(reason string) (CourseKeyParts, error) {
		return CourseKeyParts{}, &InvalidInputError{Field: "course_key", Value: key, Reason: reason}
	}
	if key == "" {
		return bad("empty")
	}
	if len(key) > 255 {
		return bad("longer than 255 characters")
	}
	var parts []string
	switch {
	case strings.HasPrefix(key, "course-v1:"):
		parts = strings.Split(strings.TrimPrefix(key, "course-v1:"), "+")
	case strings.Contains(key, ":"):
		return bad("unknown key type (want course-v1:ORG+NUMBER+RUN or ORG/NUMBER/RUN)")
	default:
		parts = strings.Split(key, "/")
	}
	if len(parts) != 3 {
		return bad("want three parts: org, number, run")
	}
	for i, p := range parts {
		if p == "" {
			return bad([]string{"org", "number", "run"}[i] + " is empty")
		}
		if strings.ContainsAny(p, " \t\r\n/+:") {
			return bad([]string{"org", "number", "run"}[i] + " has a character not allowed in a course key")
		}
	}
	return CourseKeyParts{Org: parts[0], Number: parts[1], Run: parts[2]}, nil
}
