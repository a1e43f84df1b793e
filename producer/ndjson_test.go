package producer

import (
	"context"
	"strings"
	"testing"

	"github.com/edxbus/edxbus/schema"
)

func TestReadNDJSON(t *testing.T) {
	good := `{"event_type": "a", "data": {"x": 1}, "id": "i1", "time": "2026-01-31T00:00:00+00:00"}

{"event_type": "b", "data": {}}
`
	lines, err := ReadNDJSON(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].EventType != "a" || lines[0].ID != "i1" || string(lines[1].Data) != "{}" {
		t.Fatalf("lines %+v", lines)
	}
	for _, tc := range []struct{ in, want string }{
		{"{\"event_type\": \"a\", \"data\": {}}\nnot json\n", "line 2"},
		{`{"data": {}}`, "line 1: needs event_type and data"},
		{`{"event_type": "a"}`, "needs event_type and data"},
		{strings.Repeat("x", 9<<20), "token too long"},
	} {
		if _, err := ReadNDJSON(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadNDJSON(%.40q): %v, want %q", tc.in, err, tc.want)
		}
	}
}

// A line publishes with its own id and time; bad lines are refused with the
// reason and nothing stored.
func TestPublishLine(t *testing.T) {
	p, box, _ := newTestProducer(t, catalogConfig("ndjson"))
	data := `{"catalog_info": {"course_key": "course-v1:edX+N+1", "name": "n", "schedule_data": {"start": "2026-09-01T00:00:00+00:00",
 "pacing": "self", "end": null, "enrollment_start": null, "enrollment_end": null}, "hidden": false, "invitation_only": false}}`
	acc, err := p.PublishLine(context.Background(), Line{EventType: schema.EventCourseCatalogInfoChanged, Data: []byte(data),
		ID: "0f3d2c1e-0000-4000-8000-000000000001", Time: "2026-01-31T00:00:00+00:00"})
	if err != nil {
		t.Fatal(err)
	}
	if acc.EventID != "0f3d2c1e-0000-4000-8000-000000000001" || acc.Duplicate || box.Stats().Depth != 1 {
		t.Fatalf("accepted %+v, depth %d", acc, box.Stats().Depth)
	}
	for _, tc := range []struct {
		line Line
		want string
	}{
		{Line{EventType: "org.openedx.nothing.v1", Data: []byte(data)}, "org.openedx.nothing.v1"},
		{Line{EventType: schema.EventCourseCatalogInfoChanged, Data: []byte(`{"catalog_info": {}}`)}, "catalog_info"},
		{Line{EventType: schema.EventCourseCatalogInfoChanged, Data: []byte(data), Time: "yesterday"}, "time:"},
	} {
		if _, err := p.PublishLine(context.Background(), tc.line); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PublishLine(%s): %v, want %q", tc.line.EventType, err, tc.want)
		}
	}
	if depth := box.Stats().Depth; depth != 1 {
		t.Errorf("refused lines stored something: depth %d", depth)
	}
}
