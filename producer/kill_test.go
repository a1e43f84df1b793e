package producer

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

// TestMain runs this test binary as the child producer process of the
// SIGKILL tests when they start it so (EDXBUS_PRODUCER_CHILD set).
func TestMain(m *testing.M) {
	if path := os.Getenv("EDXBUS_PRODUCER_CHILD"); path != "" {
		producerChild(path)
		return
	}
	os.Exit(m.Run())
}

// killer runs producer children on one outbox and kills them.
type killer struct {
	t        *testing.T
	b        *broker.Broker
	dir      string
	batch    int // events per PublishBatch in the child (0: one Publish each)
	accepted map[string]bool
}

// run starts a child and SIGKILLs it once it has reported stopAfter events
// accepted (durable in the outbox).
func (k *killer) run(round int, stopAfter int) {
	t := k.t
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EDXBUS_PRODUCER_CHILD="+filepath.Join(k.dir, "outbox.db"),
		"EDXBUS_PRODUCER_BROKER="+k.b.URL(), "EDXBUS_PRODUCER_ADMIN="+k.b.AdminURL(),
		fmt.Sprintf("EDXBUS_PRODUCER_ROUND=%d", round), fmt.Sprintf("EDXBUS_PRODUCER_BATCH=%d", k.batch))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() && n < stopAfter {
		if id, ok := strings.CutPrefix(sc.Text(), "accepted "); ok {
			k.accepted[id] = true
			n++
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if n < stopAfter {
		t.Fatalf("round %d: child accepted %d events before it stopped", round, n)
	}
}

// drain sends what the killed children left in the outbox with an
// in-process relay, and returns the messages on the topic once every
// accepted event is there and the outbox is empty.
func (k *killer) drain() ([]received, *outbox.Outbox, bus.Transport) {
	t := k.t
	box, err := outbox.Open(filepath.Join(k.dir, "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = box.Close() })
	p, err := New(catalogConfig("killed"), box)
	if err != nil {
		t.Fatal(err)
	}
	client := newTransport(t, k.b)
	startRelay(t, client, p, WithProducerName("kill-test"))
	got := readIDs(t, client, "persistent://public/default/killed", k.accepted, 60*time.Second)
	waitEmpty(t, box)
	return got, box, client
}

// TestKilledProducerLosesNothing runs the producer (outbox + relay) in a child
// process that publishes continuously, kills it with SIGKILL, starts it again
// on the same outbox, kills it again, then restarts it to drain. Every event
// the child reported accepted must be on the topic.
func TestKilledProducerLosesNothing(t *testing.T) {
	k := &killer{t: t, b: brokertest.Start(t, broker.WithDeduplication(true)), dir: t.TempDir(), accepted: map[string]bool{}}
	k.run(0, 400)
	k.run(1, 400)
	got, _, _ := k.drain()
	onTopic := map[string]int{}
	for _, m := range got {
		onTopic[m.id]++
	}
	for id := range k.accepted {
		if onTopic[id] == 0 {
			t.Fatalf("accepted event %s never reached the topic", id)
		}
	}
	t.Logf("%d events accepted across two SIGKILLs, all delivered (%d messages read)", len(k.accepted), len(got))
}

// TestProducerKilledWithGroupsInFlight kills a child that accepts events in
// batches of 100, so the relay sends groups of up to 1,000 records as one
// Pulsar batch each, five times at different points; a group is in flight
// or receipted and not yet deleted at most kills. Every accepted event must
// reach the topic, and, with broker dedup on, be stored exactly once: a
// group re-formed after a restart must neither be dropped whole nor store
// its start twice.
func TestProducerKilledWithGroupsInFlight(t *testing.T) {
	k := &killer{t: t, b: brokertest.Start(t, broker.WithDeduplication(true)), dir: t.TempDir(), batch: 100, accepted: map[string]bool{}}
	for round := range 5 {
		k.run(round, 1500+round*700)
	}
	_, _, client := k.drain()
	topic := "persistent://public/default/killed"
	st, err := k.b.Stats(topic)
	if err != nil {
		t.Fatal(err)
	}
	// Every message stored, including events accepted just before a kill
	// and not yet reported: read them all and count each event.
	all := readN(t, client, topic, int(st.MsgInCounter), 60*time.Second)
	onTopic := map[string]int{}
	for _, m := range all {
		onTopic[m.id]++
	}
	for id, n := range onTopic {
		if n != 1 {
			t.Fatalf("event %s stored %d times", id, n)
		}
	}
	for id := range k.accepted {
		if onTopic[id] == 0 {
			t.Fatalf("accepted event %s never reached the topic", id)
		}
	}
	if st.StorageEntries*5 > st.MsgInCounter {
		t.Fatalf("%d messages in %d entries: the relay did not send groups", st.MsgInCounter, st.StorageEntries)
	}
	t.Logf("%d events accepted across five SIGKILLs; %d messages stored once each, in %d entries", len(k.accepted), st.MsgInCounter, st.StorageEntries)
}

// producerChild is the child side of the SIGKILL tests: it publishes until
// killed, printing each accepted event's id once it is durable.
func producerChild(path string) {
	box, err := outbox.Open(path)
	if err != nil {
		fmt.Println("open outbox:", err)
		os.Exit(1)
	}
	p, err := New(catalogConfig("killed"), box)
	if err != nil {
		fmt.Println("producer:", err)
		os.Exit(1)
	}
	cfg := pulsarbus.DefaultConfig()
	cfg.URL, cfg.AdminURL = os.Getenv("EDXBUS_PRODUCER_BROKER"), os.Getenv("EDXBUS_PRODUCER_ADMIN")
	tr, err := pulsarbus.New(cfg, zerolog.Nop())
	if err != nil {
		fmt.Println("transport:", err)
		os.Exit(1)
	}
	r := NewRelay(tr, p, WithProducerName("kill-test"))
	if err := r.Start(context.Background()); err != nil {
		fmt.Println("relay:", err)
		os.Exit(1)
	}
	round := os.Getenv("EDXBUS_PRODUCER_ROUND")
	batch, _ := strconv.Atoi(os.Getenv("EDXBUS_PRODUCER_BATCH"))
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i += max(batch, 1) {
		events := make([]Outgoing, max(batch, 1))
		for j := range events {
			n := i + j
			events[j] = Outgoing{Meta: schema.NewMetadata(schema.EventCourseCatalogInfoChanged),
				Data: catalogEvent(fmt.Sprintf("course-v1:edX+K%d+R%s", n%7, round), fmt.Sprint(n))}
		}
		if _, err := p.PublishBatch(context.Background(), events...); err != nil {
			fmt.Fprintln(out, "publish:", err)
			_ = out.Flush()
			continue
		}
		for _, e := range events {
			fmt.Fprintln(out, "accepted", e.Meta.ID)
		}
		_ = out.Flush()
	}
}
