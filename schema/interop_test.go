package schema

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"math/rand"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edxbus/edxbus/internal/testenv"
)

var typedEventTypes = []string{
	EventCourseCatalogInfoChanged, EventCoursePassingStatusUpdated, EventPersistentGradeSummaryChanged,
	EventCertificateCreated, EventCertificateChanged, EventCertificateRevoked,
	EventCourseEnrollmentCreated, EventCourseEnrollmentChanged,
}

func runPythonAvro(t *testing.T, python, mode, eventType string, input any) []json.RawMessage {
	t.Helper()
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join("testdata", "avro_interop.py"), mode}
	if eventType != "" {
		args = append(args, filepath.Join("testdata", "upstream", strings.ReplaceAll(eventType, ".", "+")+"_schema.avsc"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python avro %s: %v\n%s", mode, err, stderr.String())
	}
	var results []json.RawMessage
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("python avro %s output: %v", mode, err)
	}
	return results
}

// typedSamples returns random values of a typed event, via generic data.
func typedSamples(t *testing.T, ev *Event, n int, seed int64) []any {
	t.Helper()
	rnd := rand.New(rand.NewSource(seed))
	var out []any
	for i := 0; i < n; i++ {
		data, err := ev.Encode(genValue(ev.Schema, rnd, ev.datetimePaths, ""))
		if err != nil {
			t.Fatal(err)
		}
		v, err := ev.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func jsonValue(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// What edxbus writes, Apache Avro (Python) reads with upstream's schema to
// the same values; what Python writes, edxbus reads to the same structs.
func TestInteropPythonAvroTypedEvents(t *testing.T) {
	python := testenv.PythonWithAvro(t)
	for i, eventType := range typedEventTypes {
		t.Run(eventType, func(t *testing.T) {
			ev := mustLookup(t, eventType)
			samples := typedSamples(t, ev, 8, int64(i))

			hexes := make([]string, len(samples))
			for j, v := range samples {
				data, err := ev.Encode(v)
				if err != nil {
					t.Fatal(err)
				}
				hexes[j] = hex.EncodeToString(data)
			}
			decoded := runPythonAvro(t, python, "decode", eventType, hexes)
			for j, got := range decoded {
				want, err := json.Marshal(samples[j])
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(jsonValue(t, got), jsonValue(t, want)) {
					t.Fatalf("sample %d: python read\n%s\nwant\n%s", j, got, want)
				}
			}

			values := make([]json.RawMessage, len(samples))
			for j, v := range samples {
				raw, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				values[j] = raw
			}
			encoded := runPythonAvro(t, python, "encode", eventType, values)
			upstreamJSON, _ := upstreamSchema(t, eventType)
			for j, h := range encoded {
				var hx string
				if err := json.Unmarshal(h, &hx); err != nil {
					t.Fatal(err)
				}
				data, err := hex.DecodeString(hx)
				if err != nil {
					t.Fatal(err)
				}
				for _, decode := range []func([]byte) (any, error){
					ev.Decode,
					func(b []byte) (any, error) { return ev.DecodeWriter(upstreamJSON, b) },
				} {
					got, err := decode(data)
					if err != nil {
						t.Fatalf("sample %d: decode python bytes: %v", j, err)
					}
					if !reflect.DeepEqual(got, samples[j]) {
						t.Fatalf("sample %d: Go read %+v\nwant %+v", j, got, samples[j])
					}
				}
				mine, _ := ev.Encode(samples[j])
				if !bytes.Equal(mine, data) {
					t.Fatalf("sample %d: python and Go bytes differ:\n%x\n%x", j, data, mine)
				}
			}
		})
	}
}

// Schema evolution cross-checked with Apache Avro (Python) for every event
// with an upstream snapshot: Python resolves today's data to the snapshot
// and writes it with the snapshot; Go's DecodeWriter must read the same
// data to the same value.
func TestInteropPythonResolvesEveryEventLikeGo(t *testing.T) {
	python := testenv.PythonWithAvro(t)
	type job struct {
		Writer string `json:"writer"`
		Reader string `json:"reader"`
		Hex    string `json:"hex"`
	}
	var jobs []job
	var olds []*Event
	var wants []any
	rnd := newRand(7)
	for _, ev := range All() {
		upstreamJSON, ok := upstreamSchema(t, ev.Type)
		if !ok {
			continue
		}
		old := eventWithSchema(t, ev, upstreamJSON)
		for i := 0; i < 3; i++ {
			data, err := ev.Encode(genValue(ev.Schema, rnd, ev.datetimePaths, ""))
			if err != nil {
				t.Fatal(err)
			}
			want, err := old.DecodeWriter(ev.SchemaJSON, data)
			if err != nil {
				t.Fatalf("%s: %v", ev.Type, err)
			}
			jobs = append(jobs, job{Writer: ev.SchemaJSON, Reader: old.SchemaJSON, Hex: hex.EncodeToString(data)})
			olds = append(olds, old)
			wants = append(wants, want)
		}
	}
	results := runPythonAvro(t, python, "resolve", "", jobs)
	if len(results) != len(jobs) {
		t.Fatalf("python returned %d results for %d jobs", len(results), len(jobs))
	}
	for i, raw := range results {
		var hx string
		if err := json.Unmarshal(raw, &hx); err != nil {
			t.Fatal(err)
		}
		data, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := olds[i].Decode(data)
		if err != nil {
			t.Fatalf("%s: Go cannot read what python resolved: %v", olds[i].Type, err)
		}
		if !reflect.DeepEqual(got, wants[i]) {
			t.Fatalf("%s: python resolved to %v, Go to %v", olds[i].Type, got, wants[i])
		}
	}
	if len(jobs) != 72*3 {
		t.Fatalf("%d jobs, want %d", len(jobs), 72*3)
	}
}
