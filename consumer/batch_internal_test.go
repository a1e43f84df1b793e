package consumer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edxbus/edxbus/schema"
)

// keyedMessage is a message of a key, for handleAll.
type keyedMessage struct {
	fuzzMessage
	key string
}

func (m *keyedMessage) Key() string { return m.key }

// orderEmitter records the order its events were handled in per key, and
// how many ran at once.
type orderEmitter struct {
	mu       sync.Mutex
	byKey    map[string][]int
	running  int
	parallel int
}

func (e *orderEmitter) EventType() string { return schema.EventCourseCatalogInfoChanged }
func (e *orderEmitter) Check() error      { return nil }
func (e *orderEmitter) Emit(_ context.Context, meta schema.Metadata, value any, _ bool) error {
	e.mu.Lock()
	e.running++
	e.parallel = max(e.parallel, e.running)
	e.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // long enough for the keys' goroutines to overlap
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running--
	e.byKey[meta.Source] = append(e.byKey[meta.Source], value.(int))
	return nil
}

// A batch's messages of one key are handled one after another in the order
// they arrived; different keys at once.
func TestHandleAllKeepsOrderPerKeyAndRunsKeysInParallel(t *testing.T) {
	c := &Consumer{m: newMetrics(nil)}
	em := &orderEmitter{byKey: map[string][]int{}}
	var ds []*delivery
	var idx []int
	for i := range 40 {
		key := fmt.Sprintf("k%d", i%4)
		ds = append(ds, &delivery{msg: &keyedMessage{key: key}, meta: schema.Metadata{ID: fmt.Sprint(i), Source: key}, value: i, emitter: em})
		idx = append(idx, i)
	}
	vs := make([]verdict, len(ds))
	c.handleAll(context.Background(), ds, vs, idx)
	for k, got := range em.byKey {
		for j := 1; j < len(got); j++ {
			if got[j] < got[j-1] {
				t.Fatalf("key %s handled in the order %v", k, got)
			}
		}
		if len(got) != 10 {
			t.Fatalf("key %s: %d events handled, want 10", k, len(got))
		}
	}
	if em.parallel < 2 || em.parallel > 4 {
		t.Fatalf("%d handled at once, want the 4 keys in parallel and one event per key", em.parallel)
	}
	for i, v := range vs {
		if v.failed != nil || !v.ack || v.outcome != applied {
			t.Fatalf("event %d: verdict %+v", i, v)
		}
	}
}
