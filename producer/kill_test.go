package producer

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/bus/pulsarbus"
	"github.com/edxbus/edxbus/producer/outbox"
	"github.com/edxbus/edxbus/schema"
)

// TestKilledProducerLosesNothing runs the producer (outbox + relay) in a child
// process that publishes continuously, kills it with SIGKILL, starts it again
// on the same outbox, kills it again, then restarts it to drain. Every event
// the child reported accepted must be on the topic.
func TestKilledProducerLosesNothing(t *testing.T) {
	if os.Getenv("EDXBUS_PRODUCER_CHILD") != "" {
		t.Skip("parent side only")
	}
	b := brokertest.Start(t, broker.WithDeduplication(true))
	dir := t.TempDir()
	accepted := map[string]bool{}
	run := func(round int, stopAfter int) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestProducerChild$")
		cmd.Env = append(os.Environ(), "EDXBUS_PRODUCER_CHILD="+filepath.Join(dir, "outbox.db"),
			"EDXBUS_PRODUCER_BROKER="+b.URL(), "EDXBUS_PRODUCER_ADMIN="+b.AdminURL(), fmt.Sprintf("EDXBUS_PRODUCER_ROUND=%d", round))
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
				accepted[id] = true
				n++
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if n < stopAfter {
			t.Fatalf("round %d: child accepted %d events before it stopped", round, n)
		}
	}
	run(0, 400)
	run(1, 400)
	// Drain what the killed children left in the outbox with an in-process relay.
	box, err := outbox.Open(filepath.Join(dir, "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	p, err := New(catalogConfig("killed"), box)
	if err != nil {
		t.Fatal(err)
	}
	client := newTransport(t, b)
	startRelay(t, client, p, WithProducerName("kill-test"))
	got := readIDs(t, client, "persistent://public/default/killed", accepted, 60*time.Second)
	onTopic := map[string]int{}
	for _, m := range got {
		onTopic[m.id]++
	}
	for id := range accepted {
		if onTopic[id] == 0 {
			t.Fatalf("accepted event %s never reached the topic", id)
		}
	}
	waitEmpty(t, box)
	t.Logf("%d events accepted across two SIGKILLs, all delivered (%d messages read)", len(accepted), len(got))
}

// TestProducerChild is the child side of TestKilledProducerLosesNothing.
func TestProducerChild(t *testing.T) {
	path := os.Getenv("EDXBUS_PRODUCER_CHILD")
	if path == "" {
		t.Skip("child side of TestKilledProducerLosesNothing")
	}
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
	for i := 0; ; i++ {
		meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged)
		if _, err := p.Publish(context.Background(), meta, catalogEvent(fmt.Sprintf("course-v1:edX+K%d+R%s", i%7, round), fmt.Sprint(i))); err != nil {
			fmt.Println("publish:", err)
			continue
		}
		fmt.Println("accepted", meta.ID)
	}
}
