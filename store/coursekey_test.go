package store

import (
	"errors"
	"testing"
)

func TestParseCourseKey(t *testing.T) {
	good := map[string]CourseKeyParts{
		"course-v1:edX+DemoX+Demo_Course": {"edX", "DemoX", "Demo_Course"},
		"edX/DemoX/2014":                  {"edX", "DemoX", "2014"},
		"course-v1:MITx+6.00.1x+2T2026":   {"MITx", "6.00.1x", "2T2026"},
	}
	for key, want := range good {
		got, err := ParseCourseKey(key)
		if err != nil || got != want {
			t.Errorf("ParseCourseKey(%q) = %+v, %v; want %+v", key, got, err, want)
		}
	}
	if got := good["edX/DemoX/2014"].CourseKey(); got != "edX+DemoX" {
		t.Errorf("CourseKey() = %q", got)
	}
	for _, key := range []string{"", "course-v1:", "course-v1:a+b", "course-v1:a+b+c+d", "a/b", "lib:edX:x", "ccx-v1:a+b+c+ccx@1", "a//c", "course-v1:a b+c+d"} {
		var invalid *InvalidInputError
		if _, err := ParseCourseKey(key); !errors.As(err, &invalid) {
			t.Errorf("ParseCourseKey(%q): error %v, want InvalidInputError", key, err)
		}
	}
}

func FuzzParseCourseKey(f *testing.F) {
	for _, s := range []string{"course-v1:edX+DemoX+Demo_Course", "edX/DemoX/2014", "", "course-v1:+", "a/b/c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		p, err := ParseCourseKey(key)
		if err != nil {
			var invalid *InvalidInputError
			if !errors.As(err, &invalid) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if p.Org == "" || p.Number == "" || p.Run == "" {
			t.Fatalf("accepted %q with an empty part: %+v", key, p)
		}
	})
}
