package producer

import (
	"context"
	"errors"
	"fmt"
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

// A file with a bad line is refused whole, naming the line, before anything
// is stored; lines without an id get the same id on every run, so a second
// run of the same file publishes nothing new.
func TestPrepareLinesAndRerun(t *testing.T) {
	p, box, _ := newTestProducer(t, catalogConfig("ndjson-rerun"), WithMaxMessageSize(1<<20))
	line := func(key string) string {
		return `{"event_type": "` + schema.EventCourseCatalogInfoChanged + `", "data": {"catalog_info": {"course_key": "` + key +
			`", "name": "n", "schedule_data": {"start": "2026-09-01T00:00:00+00:00", "pacing": "self", "end": null,` +
			` "enrollment_start": null, "enrollment_end": null}, "hidden": false, "invitation_only": false}}}`
	}
	file := line("course-v1:edX+R+1") + "\n\n" + line("course-v1:edX+R+2") + "\n" +
		strings.Replace(line("course-v1:edX+R+3"), `"hidden": false`, `"hidden": "no"`, 1) + "\n"
	lines, err := ReadNDJSON(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	_, err = PrepareLines(lines)
	var le *LineError
	if !errors.As(err, &le) || le.Line != 4 || !strings.Contains(err.Error(), "catalog_info.hidden") {
		t.Fatalf("PrepareLines: %v, want line 4 naming catalog_info.hidden", err)
	}

	// In a file large enough to be parsed in parallel, the first bad line
	// is the one named.
	var big []string
	for i := 0; i < 3000; i++ {
		l := line(fmt.Sprintf("course-v1:edX+Big+%d", i))
		if i == 699 || i == 1499 {
			l = strings.Replace(l, `"pacing": "self"`, `"pacing": 7`, 1)
		}
		big = append(big, l)
	}
	lines, err = ReadNDJSON(strings.NewReader(strings.Join(big, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = PrepareLines(lines); !errors.As(err, &le) || le.Line != 700 {
		t.Fatalf("PrepareLines of 3000 lines: %v, want line 700 named", err)
	}

	var good []string
	for i := 0; i < 25; i++ {
		good = append(good, line(fmt.Sprintf("course-v1:edX+R+%d", i)))
	}
	publish := func() (published, duplicates int, ids []string) {
		t.Helper()
		lines, err := ReadNDJSON(strings.NewReader(strings.Join(good, "\n")))
		if err != nil {
			t.Fatal(err)
		}
		events, err := PrepareLines(lines)
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		err = p.PublishAll(context.Background(), events, 10, func(done int, acc []Accepted) {
			calls++
			for _, a := range acc {
				ids = append(ids, a.EventID)
				if a.Duplicate {
					duplicates++
				} else {
					published++
				}
			}
		})
		if err != nil || calls != 3 {
			t.Fatalf("PublishAll: %v after %d groups, want 3", err, calls)
		}
		return published, duplicates, ids
	}
	pub1, dup1, ids1 := publish()
	pub2, dup2, ids2 := publish()
	if pub1 != 25 || dup1 != 0 || pub2 != 0 || dup2 != 25 {
		t.Fatalf("first run %d published %d duplicates, second %d/%d; want 25/0 then 0/25", pub1, dup1, pub2, dup2)
	}
	if strings.Join(ids1, ",") != strings.Join(ids2, ",") || box.Stats().Depth != 25 {
		t.Fatalf("ids differ between runs or depth %d != 25", box.Stats().Depth)
	}
	if StableID("a", []byte(`{"x": 1}`)) != StableID("a", []byte(`{"x":1}`)) || StableID("a", []byte(`{"x":1}`)) == StableID("b", []byte(`{"x":1}`)) {
		t.Error("StableID must ignore JSON spacing and depend on the event type")
	}
}

// A batch error's index counts from the first event, not from its group.
func TestPublishAllErrorIndex(t *testing.T) {
	p, _, _ := newTestProducer(t, catalogConfig("ndjson-index"))
	events := make([]Outgoing, 7)
	for i := range events {
		events[i] = Outgoing{Meta: schema.NewMetadata(schema.EventCourseCatalogInfoChanged), Data: catalogEvent(fmt.Sprintf("course-v1:edX+I+%d", i), "n")}
	}
	events[5].Data = "not an event"
	err := p.PublishAll(context.Background(), events, 2, nil)
	var be *BatchError
	if !errors.As(err, &be) || be.Index != 5 {
		t.Fatalf("PublishAll: %v, want the error at event index 5", err)
	}
}
