package schema

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

// genValue builds a random value of schema s in hamba/avro's generic form
// (what Decode returns into a map), with valid isoformat strings at the
// event's datetime paths.
func genValue(s avro.Schema, rnd *rand.Rand, datetimes map[string]bool, pattern string) any {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	switch t := s.(type) {
	case *avro.RecordSchema:
		out := map[string]any{}
		for _, f := range t.Fields() {
			out[f.Name()] = genValue(f.Type(), rnd, datetimes, joinPath(pattern, f.Name()))
		}
		return out
	case *avro.UnionSchema:
		if rnd.Intn(3) == 0 {
			return nil
		}
		branch := unwrapNullable(t)
		v := genValue(branch, rnd, datetimes, pattern)
		switch b := branch.(type) {
		case *avro.RecordSchema:
			return map[string]any{b.FullName(): v}
		case *avro.MapSchema:
			return map[string]any{"map": v}
		case *avro.ArraySchema:
			return map[string]any{"array": v}
		}
		return v
	case *avro.ArraySchema:
		n := rnd.Intn(3)
		out := make([]any, n)
		for i := range out {
			out[i] = genValue(t.Items(), rnd, datetimes, pattern+"[]")
		}
		return out
	case *avro.MapSchema:
		out := map[string]any{}
		for i := rnd.Intn(3); i > 0; i-- {
			out[fmt.Sprintf("k%d", rnd.Intn(100))] = genValue(t.Values(), rnd, datetimes, pattern+"{}")
		}
		return out
	case *avro.PrimitiveSchema:
		switch t.Type() {
		case avro.String:
			if datetimes[pattern] {
				return FormatTime(time.Unix(rnd.Int63n(4e9), int64(rnd.Intn(1e6))*1000).UTC())
			}
			return fmt.Sprintf("s-%d-ü", rnd.Intn(1e6))
		case avro.Long:
			return rnd.Int63() - rnd.Int63()
		case avro.Int:
			return rnd.Int31()
		case avro.Boolean:
			return rnd.Intn(2) == 0
		case avro.Double:
			return rnd.NormFloat64() * 100
		case avro.Float:
			return float32(rnd.NormFloat64())
		case avro.Bytes:
			return []byte{byte(rnd.Intn(256))}
		case avro.Null:
			return nil
		}
	}
	panic(fmt.Sprintf("genValue: unsupported schema %s", s.Type()))
}

// eventWithSchema is ev with another schema (an upstream snapshot), read
// into generic maps.
func eventWithSchema(t testing.TB, ev *Event, schemaJSON string) *Event {
	t.Helper()
	s, j, err := parseSchema(schemaJSON)
	if err != nil {
		t.Fatalf("%s: parse: %v", ev.Type, err)
	}
	return &Event{Type: ev.Type, Topic: ev.Topic, KeyField: ev.KeyField, SchemaJSON: j, Schema: s,
		datetimePaths: ev.datetimePaths, api: ev.api, readers: ev.readers, resolved: map[[32]byte]avro.Schema{}}
}

func upstreamSchema(t testing.TB, eventType string) (string, bool) {
	t.Helper()
	name := strings.ReplaceAll(eventType, ".", "+") + "_schema.avsc"
	raw, err := os.ReadFile(filepath.Join("testdata", "upstream", name))
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(raw), true
}

// Every event decodes to a value that re-encodes to the same bytes, and
// every key field resolves on real data.
func TestEveryEventRoundTripsGenerically(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	for _, ev := range All() {
		t.Run(ev.Type, func(t *testing.T) {
			for i := 0; i < 20; i++ {
				in := genValue(ev.Schema, rnd, ev.datetimePaths, "")
				data, err := ev.Encode(in)
				if err != nil {
					t.Fatalf("Encode(%v): %v", in, err)
				}
				out, err := ev.Decode(data)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				again, err := ev.Encode(out)
				if err != nil {
					t.Fatalf("re-Encode(%v): %v", out, err)
				}
				if !bytes.Equal(data, again) {
					// Avro maps keep their writer's entry order and Go maps
					// have none, so only map-free data is byte-identical.
					if !hasMultiEntryMap(in) || len(data) != len(again) {
						t.Fatalf("re-encoding changed the bytes:\n%x\n%x", data, again)
					}
					back, err := ev.Decode(again)
					if err != nil || !reflect.DeepEqual(back, out) {
						t.Fatalf("re-encoded data decodes to %v (%v), want %v", back, err, out)
					}
				}
				if _, err := ev.KeyOf(out); err != nil && !strings.Contains(err.Error(), "null") {
					t.Fatalf("KeyOf: %v", err)
				}
				if !ev.Typed() {
					if !reflect.DeepEqual(normalise(in), normalise(*(out.(*map[string]any)))) {
						t.Fatalf("decoded value differs:\n got %v\nwant %v", out, in)
					}
				}
			}
		})
	}
}

// hasMultiEntryMap reports whether v holds an Avro map with several
// entries (genValue names map keys "k<n>"; no record has only such fields).
func hasMultiEntryMap(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		if len(x) > 1 {
			allK := true
			for k := range x {
				allK = allK && strings.HasPrefix(k, "k")
			}
			if allK {
				return true
			}
		}
		for _, e := range x {
			if hasMultiEntryMap(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasMultiEntryMap(e) {
				return true
			}
		}
	}
	return false
}

// normalise makes generated and decoded generic values comparable (hamba
// decodes long as int on 64-bit platforms).
func normalise(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalise(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalise(e)
		}
		return out
	case int:
		return int64(x)
	case int32:
		return int64(x)
	}
	return v
}

// The evolution tests of openedx-events, in Go: data written with today's
// schema reads with upstream's stored snapshot, and the other way round.
func TestInteropEvolutionAgainstUpstreamSnapshots(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	withSnapshot := 0
	for _, ev := range All() {
		upstreamJSON, ok := upstreamSchema(t, ev.Type)
		if !ok {
			continue
		}
		withSnapshot++
		t.Run(ev.Type, func(t *testing.T) {
			old := eventWithSchema(t, ev, upstreamJSON)
			for i := 0; i < 10; i++ {
				current, err := ev.Encode(genValue(ev.Schema, rnd, ev.datetimePaths, ""))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := old.DecodeWriter(ev.SchemaJSON, current); err != nil {
					t.Fatalf("forward: snapshot reader, current writer: %v", err)
				}
				stored, err := old.Encode(genValue(old.Schema, rnd, ev.datetimePaths, ""))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ev.DecodeWriter(old.SchemaJSON, stored); err != nil {
					t.Fatalf("backward: current reader, snapshot writer: %v", err)
				}
			}
		})
	}
	if withSnapshot != 72 {
		t.Fatalf("%d events have an upstream snapshot, want 72", withSnapshot)
	}
}

func newRand(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }
