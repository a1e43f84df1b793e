package integration

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/google/uuid"
)

// An ingest whose topic already holds an incompatible schema refuses to start,
// with the broker's reason.
func TestIncompatibleSchemaIsRefused(t *testing.T) {
	e := setup(t)
	prefix := "it" + uuid.NewString()[:8]
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: e.pulsarURL, Logger: log.DefaultNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	other, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic:  "persistent://public/default/" + prefix + "-course-catalog-info-changed",
		Schema: pulsar.NewAvroSchema(`{"type":"record","name":"Legacy","fields":[{"name":"x","type":"long"}]}`, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	cmd := exec.Command(binary(t), "ingest", "--pulsar-url", e.pulsarURL, "--pulsar-admin-url", e.adminURL, "--topic-prefix", prefix,
		"--http-addr", freeAddr(t), "--outbox-dir", filepath.Join(t.TempDir(), "outbox"), "--log-format", "json")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("ingest started on a topic with an incompatible schema:\n%s", out)
	}
	if !strings.Contains(string(out), "IncompatibleSchema") {
		t.Fatalf("the error does not carry the broker's reason:\n%s", out)
	}
}

// A new consumer group replays from a time: it sees what was published after
// it and nothing before.
func TestReplayFromATime(t *testing.T) {
	e := setup(t)
	pl := newPipeline(t, e, 1)
	st := openStore(t, e.storeDSN)
	before := pl.key("Before", "1")
	pl.post(catalogType, catalogBody(before, "before", false), nil)
	eventually(t, "the early event applied", func() bool { _, ok := runOf(st, before); return ok })
	time.Sleep(50 * time.Millisecond)
	from := time.Now().UTC()
	time.Sleep(50 * time.Millisecond)
	after := pl.key("After", "1")
	pl.post(catalogType, catalogBody(after, "after", false), nil)
	eventually(t, "the late event applied", func() bool { _, ok := runOf(st, after); return ok })

	// A second group, with its own store, replays from `from`.
	replayDSN := "sqlite:" + filepath.Join(t.TempDir(), "replay.db")
	if strings.HasPrefix(e.storeDSN, "postgres") {
		t.Skip("the replay store is a local SQLite file; covered by the embedded run")
	}
	addr := freeAddr(t)
	start(t, "replayer", "consume", "--http-addr", addr, "--pulsar-url", e.pulsarURL, "--pulsar-admin-url", e.adminURL,
		"--topic-prefix", pl.prefix, "--subscription", "replay-"+pl.prefix, "--start", "latest", "--replay-from", from.Format(time.RFC3339Nano),
		"--redis-url", e.redisURL, "--store-dsn", replayDSN)
	waitHTTP(t, "http://"+addr+"/readyz")
	replay := openStore(t, replayDSN)
	eventually(t, "the replay applied the late event", func() bool { _, ok := runOf(replay, after); return ok })
	if _, ok := runOf(replay, before); ok {
		t.Fatal("the replay applied an event published before its start time")
	}
}

// `edxbus dlq replay` sends dead letters back to their topic; a poison event
// that still fails is dead-lettered again, and the stream goes on.
func TestDeadLettersReplay(t *testing.T) {
	e := setup(t)
	pl := newPipeline(t, e, 1)
	poison := pl.publishPoison(catalogBody("not-a-course-key", "poison", false))
	dlqTopic := pl.prefix + "-course-catalog-info-changed-" + pl.sub + "-DLQ"
	// pending lists the pending dead letters of the poison: their message ids.
	pending := func() []string {
		out, err := exec.Command(binary(t), "dlq", "list", "--pulsar-url", e.pulsarURL, "--pulsar-admin-url", e.adminURL,
			"--dlq-topic", dlqTopic, "--idle", "1s", "--json", "--event-id", poison, "--log-level", "error").Output()
		if err != nil {
			return nil
		}
		var ids []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var letter struct {
				MessageID string `json:"message_id"`
				EventID   string `json:"event_id"`
				Data      any    `json:"data"`
			}
			if json.Unmarshal([]byte(line), &letter) == nil && letter.EventID == poison && letter.Data != nil {
				ids = append(ids, letter.MessageID)
			}
		}
		return ids
	}
	var first []string
	eventually(t, "the poison dead-lettered, its data decoded", func() bool { first = pending(); return len(first) == 1 })
	dry, err := exec.Command(binary(t), "dlq", "replay", "--pulsar-url", e.pulsarURL, "--pulsar-admin-url", e.adminURL,
		"--dlq-topic", dlqTopic, "--idle", "1s", "--dry-run", "--log-level", "error").CombinedOutput()
	if err != nil || !strings.Contains(string(dry), "would replay 1 dead letters") || !strings.Contains(string(dry), poison) {
		t.Fatalf("dlq replay --dry-run: %v\n%s", err, dry)
	}
	out, err := exec.Command(binary(t), "dlq", "replay", "--pulsar-url", e.pulsarURL, "--pulsar-admin-url", e.adminURL,
		"--dlq-topic", dlqTopic, "--idle", "1s", "--log-level", "error").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "replayed 1 dead letters") {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	// Still poison: handled again by this subscription (from its retry
	// topic) and dead-lettered a second time; the replayed letter is no
	// longer pending, the new one is.
	eventually(t, "the replayed poison dead-lettered again", func() bool {
		again := pending()
		return len(again) == 1 && again[0] != first[0]
	})
}
