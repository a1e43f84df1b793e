package bustest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/internal/avroparse"
	"github.com/edxbus/edxbus/schema"
)

// Option adjusts Run to a transport.
type Option func(*suite)

// WithTopicNames sets how a check's topic name (letters, digits and dashes,
// unique per run) becomes a name the transport accepts. Default:
// persistent://public/default/<name>.
func WithTopicNames(f func(name string) string) Option { return func(s *suite) { s.topicName = f } }

// WithoutDedup skips the dedup check, for a transport whose doc says it
// cannot drop resends across sender restarts.
func WithoutDedup() Option { return func(s *suite) { s.dedup = false } }

// WithoutWriterSchemaUnbatched checks Message.WriterSchema only on messages
// sent with SenderOptions.Batching, for a transport whose doc says that
// unbatched messages name no writer schema.
func WithoutWriterSchemaUnbatched() Option { return func(s *suite) { s.writerSchemaUnbatched = false } }

// WithoutSchemaEnforcement skips the check that an incompatible schema is
// refused at NewSender, for a bus that does not enforce schemas.
func WithoutSchemaEnforcement() Option { return func(s *suite) { s.enforcesSchemas = false } }

type suite struct {
	topicName       func(string) string
	dedup           bool
	enforcesSchemas bool
	// writerSchemaUnbatched: unbatched messages name their writer schema.
	writerSchemaUnbatched bool
}

// wait bounds every wait for a message that should come; quiet is how long
// a check watches for one that should not.
const (
	wait  = 30 * time.Second
	quiet = 1500 * time.Millisecond
)

// Run checks the transports newTransport makes against every promise of
// package bus, one subtest per promise, in parallel. newTransport is called
// once per subtest with that subtest's t (register the cleanup of what it
// starts on it); Run closes each transport when its subtest ends.
func Run(t *testing.T, newTransport func(t *testing.T) bus.Transport, opts ...Option) {
	s := &suite{topicName: func(n string) string { return "persistent://public/default/" + n }, dedup: true, enforcesSchemas: true, writerSchemaUnbatched: true}
	for _, o := range opts {
		o(s)
	}
	checks := []struct {
		name string
		run  func(*env)
		skip bool
	}{
		{"SendReceipts", testSendReceipts, false},
		{"DedupAcrossSenderRestart", testDedup, !s.dedup},
		{"GroupsDedupedByTheirHighestID", testGroupDedup, !s.dedup},
		{"GroupLimitsEnforced", testGroupLimits, false},
		{"SchemaDeclaredAndIncompatibleRefused", testSchema, false},
		{"RawSends", testRaw, false},
		{"AckSettles", testAck, false},
		{"NackRedeliversWithGrowingCount", testNack, false},
		{"UnsettledRedeliveredAfterClose", testUnsettled, false},
		{"RewindRedeliversFromATime", testRewind, false},
		{"ReaderConsumesNothing", testReader, false},
		{"WriterSchemaOfAnOlderWriter", testWriterSchema, false},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.skip {
				t.Skip("the transport says it does not keep this promise")
			}
			t.Parallel()
			tr := newTransport(t)
			t.Cleanup(tr.Close)
			c.run(&env{T: t, s: s, tr: tr, ctx: context.Background()})
		})
	}
}

// env is one subtest's transport and helpers.
type env struct {
	*testing.T
	s   *suite
	tr  bus.Transport
	ctx context.Context
	n   atomic.Int64
}

var runID = strconv.FormatInt(time.Now().UnixNano(), 36)

// name is a fresh name for a topic or subscription of this subtest.
func (e *env) name(what string) string {
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, e.Name()[strings.LastIndex(e.Name(), "/")+1:])
	return fmt.Sprintf("bustest-%s-%s-%s-%d", base, what, runID, e.n.Add(1))
}

func (e *env) topic() string { return e.s.topicName(e.name("t")) }

func (e *env) sender(opts bus.SenderOptions) bus.Sender {
	e.Helper()
	s, err := e.tr.NewSender(e.ctx, opts)
	if err != nil {
		e.Fatalf("NewSender(%+v): %v", opts, err)
	}
	return s
}

func (e *env) send(s bus.Sender, m *bus.OutgoingMessage) bus.MessageID {
	e.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	id, err := s.Send(ctx, m)
	if err != nil {
		e.Fatalf("Send: %v", err)
	}
	return id
}

// sendRaw sends each payload on a raw sender of topic.
func (e *env) sendRaw(topic string, payloads ...string) {
	e.Helper()
	s := e.sender(bus.SenderOptions{Topic: topic})
	defer s.Close()
	for _, p := range payloads {
		e.send(s, &bus.OutgoingMessage{Payload: []byte(p)})
	}
}

func (e *env) subscribe(opts bus.SubscribeOptions) bus.Subscription {
	e.Helper()
	sub, err := e.tr.Subscribe(e.ctx, opts)
	if err != nil {
		e.Fatalf("Subscribe(%+v): %v", opts, err)
	}
	return sub
}

func (e *env) receive(sub bus.Subscription) bus.Message {
	e.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	m, err := sub.Receive(ctx)
	if err != nil {
		e.Fatalf("Receive: %v", err)
	}
	return m
}

// receiveAcked receives n messages, acks each, and returns their payloads.
func (e *env) receiveAcked(sub bus.Subscription, n int) []string {
	e.Helper()
	var out []string
	for range n {
		m := e.receive(sub)
		out = append(out, string(m.Payload()))
		if err := sub.Ack(m); err != nil {
			e.Fatalf("Ack: %v", err)
		}
	}
	return out
}

// none checks that sub delivers nothing for a while.
func (e *env) none(sub bus.Subscription, why string) {
	e.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, quiet)
	defer cancel()
	if m, err := sub.Receive(ctx); err == nil {
		e.Fatalf("%s, yet %q (redelivery %d) arrived", why, m.Payload(), m.RedeliveryCount())
	}
}

func sameSet(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	for _, w := range want {
		if count[w]--; count[w] < 0 {
			return false
		}
	}
	return true
}

func catalog(t testing.TB) *schema.Event {
	ev, err := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func catalogValue(courseKey string) *schema.CourseCatalogInfoChanged {
	return &schema.CourseCatalogInfoChanged{CatalogInfo: schema.CourseCatalogData{
		CourseKey: courseKey, Name: "Conformance",
		ScheduleData: schema.CourseScheduleData{Start: schema.NewDateTime(time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)), Pacing: "self"},
	}}
}

// canonical is schemaJSON in Avro's parsing canonical form, for comparing
// schemas whatever their formatting.
func canonical(t testing.TB, schemaJSON string) string {
	t.Helper()
	s, err := avroparse.Parse([]byte(schemaJSON))
	if err != nil {
		t.Fatalf("parse schema %q: %v", schemaJSON, err)
	}
	return s.String()
}

// Send's receipt and SendAsync's callback come once per message, with an
// id; the messages arrive with what was sent. A sender with a small
// MaxPending and RetryForever gets through many more sends than MaxPending.
func testSendReceipts(e *env) {
	topic, ev := e.topic(), catalog(e)
	s := e.sender(bus.SenderOptions{Topic: topic, Name: e.name("sender"), Event: ev, MaxPending: 4, RetryForever: true})
	defer s.Close()
	eventTime := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	payload, err := ev.Encode(catalogValue("course-v1:Bus+Receipt+0"))
	if err != nil {
		e.Fatal(err)
	}
	props := map[string]string{"ce_id": "id-0", "ce_type": ev.Type}
	before := time.Now().Add(-time.Minute)
	first := e.send(s, &bus.OutgoingMessage{Key: "course-v1:Bus+Receipt+0", Payload: payload, Properties: props, EventTime: eventTime, SequenceID: 1})
	if first == nil || first.String() == "" {
		e.Fatalf("Send's receipt has no id: %v", first)
	}
	const async = 40
	var (
		mu    sync.Mutex
		calls = map[int]int{}
		ids   = map[string]bool{first.String(): true}
		errs  []error
		wg    sync.WaitGroup
	)
	for i := 1; i <= async; i++ {
		wg.Add(1)
		p, err := ev.Encode(catalogValue(fmt.Sprintf("course-v1:Bus+Receipt+%d", i)))
		if err != nil {
			e.Fatal(err)
		}
		s.SendAsync(e.ctx, &bus.OutgoingMessage{Key: fmt.Sprint(i), Payload: p, Properties: map[string]string{"ce_id": fmt.Sprintf("id-%d", i)},
			EventTime: eventTime, SequenceID: uint64(i + 1)}, func(id bus.MessageID, err error) {
			mu.Lock()
			defer mu.Unlock()
			if calls[i]++; calls[i] == 1 {
				defer wg.Done()
			}
			if err != nil {
				errs = append(errs, err)
				return
			}
			if id == nil || id.String() == "" || ids[id.String()] {
				errs = append(errs, fmt.Errorf("message %d: receipt id %v missing or not unique", i, id))
				return
			}
			ids[id.String()] = true
		})
	}
	if err := s.Flush(); err != nil {
		e.Fatalf("Flush: %v", err)
	}
	wg.Wait()
	mu.Lock()
	for i, n := range calls {
		if n != 1 {
			e.Errorf("SendAsync's callback ran %d times for message %d", n, i)
		}
	}
	called, failed := len(calls), errs
	mu.Unlock()
	if len(failed) > 0 || called != async {
		e.Fatalf("%d callbacks for %d sends; errors %v", called, async, failed)
	}

	sub := e.subscribe(bus.SubscribeOptions{Topics: []string{topic}, Subscription: e.name("sub")})
	defer sub.Close()
	m := e.receive(sub)
	if m.Topic() != topic || m.Key() != "course-v1:Bus+Receipt+0" || string(m.Payload()) != string(payload) ||
		m.Properties()["ce_id"] != "id-0" || m.Properties()["ce_type"] != ev.Type || !m.EventTime().Equal(eventTime) ||
		m.RedeliveryCount() != 0 {
		e.Fatalf("received topic %q key %q props %v event time %v redelivery %d; want what was sent",
			m.Topic(), m.Key(), m.Properties(), m.EventTime(), m.RedeliveryCount())
	}
	if pt := m.PublishTime(); pt.Before(before) || pt.After(time.Now().Add(time.Minute)) {
		e.Errorf("publish time %v, want about now", pt)
	}
	if m.ID() == nil || m.ID().String() == "" {
		e.Errorf("received message without an id")
	}
	if err := sub.Ack(m); err != nil {
		e.Fatal(err)
	}
	got := map[string]bool{}
	for range async {
		m := e.receive(sub)
		got[m.Properties()["ce_id"]] = true
		if err := sub.Ack(m); err != nil {
			e.Fatal(err)
		}
	}
	if len(got) != async {
		e.Fatalf("received %d distinct messages of %d sent asynchronously", len(got), async)
	}
}

// A sender made again with the same Name after a Close, resending sequence
// ids already stored, stores only the new ones.
func testDedup(e *env) {
	topic, name := e.topic(), e.name("outbox")
	first := e.sender(bus.SenderOptions{Topic: topic, Name: name, RetryForever: true})
	for seq := uint64(1); seq <= 3; seq++ {
		e.send(first, &bus.OutgoingMessage{Payload: fmt.Appendf(nil, "m%d", seq), SequenceID: seq})
	}
	first.Close()
	again := e.sender(bus.SenderOptions{Topic: topic, Name: name, RetryForever: true})
	for seq := uint64(2); seq <= 5; seq++ {
		id := e.send(again, &bus.OutgoingMessage{Payload: fmt.Appendf(nil, "m%d", seq), SequenceID: seq})
		// The receipt tells a dropped resend from a message stored now.
		if dropped := id == bus.Duplicate; dropped != (seq <= 3) {
			e.Fatalf("seq %d: receipt %v, duplicate %v, want %v", seq, id, dropped, seq <= 3)
		}
	}
	again.Close()

	if got, want := e.readAll(topic), []string{"m1", "m2", "m3", "m4", "m5"}; strings.Join(got, ",") != strings.Join(want, ",") {
		e.Fatalf("topic holds %v, want %v: resends across the restart were not dropped", got, want)
	}
}

// readAll reads the payloads on topic, oldest first, until none comes for
// a while.
func (e *env) readAll(topic string) []string {
	e.Helper()
	r, err := e.tr.NewReader(e.ctx, topic)
	if err != nil {
		e.Fatal(err)
	}
	defer r.Close()
	var got []string
	for {
		ctx, cancel := context.WithTimeout(e.ctx, quiet)
		m, err := r.Next(ctx)
		cancel()
		if err != nil {
			return got
		}
		got = append(got, string(m.Payload()))
	}
}

// sendGroup sends one group of the given sequence ids (payload m<seq>) and
// checks one receipt per message.
func (e *env) sendGroup(s bus.Sender, seqs ...uint64) {
	e.Helper()
	msgs := make([]*bus.OutgoingMessage, len(seqs))
	for i, seq := range seqs {
		msgs[i] = &bus.OutgoingMessage{Key: "k", Payload: fmt.Appendf(nil, "m%d", seq), SequenceID: seq}
	}
	var mu sync.Mutex
	calls := make([]int, len(seqs))
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	err := s.SendGroup(ctx, msgs, func(i int, id bus.MessageID, err error) {
		mu.Lock()
		defer mu.Unlock()
		calls[i]++
		if err != nil || id == nil {
			e.Errorf("group %v, message %d: receipt %v, error %v", seqs, i, id, err)
		}
	})
	if err != nil {
		e.Fatalf("SendGroup(%v): %v", seqs, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range calls {
		if n != 1 {
			e.Fatalf("group %v: done called %d times for message %d by the time SendGroup returned", seqs, n, i)
		}
	}
}

// A group re-formed after a sender restart is dropped only if all of it was
// stored: {2,3} is; {1,5,6} is not, though 1 was stored (a bus judging a
// group by its first id would drop it and lose 5 and 6).
func testGroupDedup(e *env) {
	topic, name := e.topic(), e.name("outbox")
	opts := bus.SenderOptions{Topic: topic, Name: name, RetryForever: true, Groups: bus.GroupLimits{MaxMessages: 10, MaxBytes: 1 << 16}}
	first := e.sender(opts)
	e.sendGroup(first, 1, 2, 3, 4)
	first.Close()
	again := e.sender(opts)
	e.sendGroup(again, 2, 3)
	e.sendGroup(again, 1, 5, 6)
	e.sendGroup(again, 7)
	again.Close()
	count := map[string]int{}
	for _, p := range e.readAll(topic) {
		count[p]++
	}
	for seq := 1; seq <= 7; seq++ {
		n, p := count[fmt.Sprintf("m%d", seq)], fmt.Sprintf("m%d", seq)
		switch {
		case n == 0:
			e.Errorf("%s lost (topic holds %v)", p, count)
		case n > 1 && seq != 1:
			e.Errorf("%s stored %d times (topic holds %v): a group stored whole before was stored again", p, n, count)
		}
	}
}

// SendGroup refuses a group over the sender's limits, and any group on a
// sender made without them; a single message is never over.
func testGroupLimits(e *env) {
	topic := e.topic()
	s := e.sender(bus.SenderOptions{Topic: topic, Groups: bus.GroupLimits{MaxMessages: 2, MaxBytes: 1 << 12}})
	defer s.Close()
	big := &bus.OutgoingMessage{Payload: make([]byte, 1<<13)}
	small := func() *bus.OutgoingMessage { return &bus.OutgoingMessage{Payload: []byte("x")} }
	ignore := func(int, bus.MessageID, error) {}
	if err := s.SendGroup(e.ctx, []*bus.OutgoingMessage{small(), small(), small()}, ignore); err == nil {
		e.Error("a group of 3 messages accepted by a sender limited to 2")
	}
	if err := s.SendGroup(e.ctx, []*bus.OutgoingMessage{small(), big}, ignore); err == nil {
		e.Error("a group of 8 KiB accepted by a sender limited to 4 KiB")
	}
	if err := s.SendGroup(e.ctx, []*bus.OutgoingMessage{big}, ignore); err != nil {
		e.Errorf("a group of one message refused: %v", err)
	}
	plain := e.sender(bus.SenderOptions{Topic: topic})
	defer plain.Close()
	if err := plain.SendGroup(e.ctx, []*bus.OutgoingMessage{small()}, ignore); err == nil {
		e.Error("SendGroup accepted by a sender made without Groups")
	}
}

// A sender with an Event declares its schema: a sender declaring an
// incompatible one on the same topic is refused at NewSender, and one
// declaring the same schema again is not.
func testSchema(e *env) {
	topic, ev := e.topic(), catalog(e)
	s := e.sender(bus.SenderOptions{Topic: topic, Event: ev})
	payload, err := ev.Encode(catalogValue("course-v1:Bus+Schema+1"))
	if err != nil {
		e.Fatal(err)
	}
	e.send(s, &bus.OutgoingMessage{Payload: payload})
	s.Close()
	e.sender(bus.SenderOptions{Topic: topic, Event: ev}).Close()
	if !e.s.enforcesSchemas {
		return
	}
	other := eventWithSchema(e, ev, `{"type":"record","name":"Other","fields":[{"name":"x","type":"long"}]}`)
	if bad, err := e.tr.NewSender(e.ctx, bus.SenderOptions{Topic: topic, Event: other}); err == nil {
		bad.Close()
		e.Fatal("a sender declaring an incompatible schema was made")
	}
}

// A sender without an Event sends bytes that are no Avro datum; they arrive
// as sent and name no writer schema.
func testRaw(e *env) {
	topic := e.topic()
	payload := []byte{0xff, 0x00, 'n', 'o', 't', ' ', 'a', 'v', 'r', 'o', 0xfe}
	s := e.sender(bus.SenderOptions{Topic: topic})
	e.send(s, &bus.OutgoingMessage{Payload: payload, Properties: map[string]string{"DLQ_REASON": "decode: bad bytes"}})
	s.Close()
	sub := e.subscribe(bus.SubscribeOptions{Topics: []string{topic}, Subscription: e.name("sub")})
	defer sub.Close()
	m := e.receive(sub)
	if string(m.Payload()) != string(payload) || m.Properties()["DLQ_REASON"] != "decode: bad bytes" {
		e.Fatalf("raw message arrived as %q %v", m.Payload(), m.Properties())
	}
	if w, err := m.WriterSchema(e.ctx); w != "" || err != nil {
		e.Fatalf("WriterSchema of a raw message = %q, %v; want none", w, err)
	}
}

// An acked message is not delivered again, not even to the next consumer of
// the subscription.
func testAck(e *env) {
	topic := e.topic()
	e.sendRaw(topic, "a1", "a2")
	opts := bus.SubscribeOptions{Topics: []string{topic}, Subscription: e.name("sub")}
	sub := e.subscribe(opts)
	if got := e.receiveAcked(sub, 2); !sameSet(got, []string{"a1", "a2"}) {
		e.Fatalf("received %v", got)
	}
	e.none(sub, "both messages were acked")
	sub.Close()
	sub = e.subscribe(opts)
	defer sub.Close()
	e.sendRaw(topic, "a3")
	if got := e.receiveAcked(sub, 1); got[0] != "a3" {
		e.Fatalf("after a resubscription received %v, want only the new a3", got)
	}
	e.none(sub, "everything was acked")
}

// A nacked message comes back, each time with a higher RedeliveryCount,
// after a delay bounded by NackBackoffMax.
func testNack(e *env) {
	topic := e.topic()
	e.sendRaw(topic, "n1")
	sub := e.subscribe(bus.SubscribeOptions{Topics: []string{topic}, Subscription: e.name("sub"),
		NackBackoff: 50 * time.Millisecond, NackBackoffMax: 400 * time.Millisecond})
	defer sub.Close()
	last := -1
	for round := range 4 {
		m := e.receive(sub)
		if string(m.Payload()) != "n1" {
			e.Fatalf("round %d: received %q", round, m.Payload())
		}
		if c := m.RedeliveryCount(); c <= last || (round == 0 && c != 0) {
			e.Fatalf("round %d: redelivery count %d after %d", round, c, last)
		}
		last = m.RedeliveryCount()
		if round < 3 {
			sub.Nack(m)
		} else if err := sub.Ack(m); err != nil {
			e.Fatal(err)
		}
	}
	e.none(sub, "the message was acked on its fourth delivery")
}

// What a consumer received and neither acked nor nacked before Close is
// delivered to the next consumer of the subscription; what it acked is not.
func testUnsettled(e *env) {
	topic := e.topic()
	e.sendRaw(topic, "u1", "u2", "u3")
	opts := bus.SubscribeOptions{Topics: []string{topic}, Subscription: e.name("sub")}
	sub := e.subscribe(opts)
	var held []string
	for range 3 {
		m := e.receive(sub)
		if string(m.Payload()) == "u2" {
			if err := sub.Ack(m); err != nil {
				e.Fatal(err)
			}
			continue
		}
		held = append(held, string(m.Payload()))
	}
	sub.Close()
	sub = e.subscribe(opts)
	defer sub.Close()
	if got := e.receiveAcked(sub, 2); !sameSet(got, held) {
		e.Fatalf("after Close redelivered %v, want the unsettled %v", got, held)
	}
	e.none(sub, "u2 was acked before Close")
}

// Rewind on a subscription of two topics delivers again every message
// published at or after the time, on both, and none from before.
func testRewind(e *env) {
	topics := []string{e.topic(), e.topic()}
	for _, topic := range topics {
		e.sendRaw(topic, topic+" before")
	}
	time.Sleep(200 * time.Millisecond) // publish times are in milliseconds: keep clear of the boundary
	from := time.Now()
	time.Sleep(200 * time.Millisecond)
	for _, topic := range topics {
		e.sendRaw(topic, topic+" after 1", topic+" after 2")
	}
	opts := bus.SubscribeOptions{Topics: topics, Subscription: e.name("sub")}
	sub := e.subscribe(opts)
	if got := e.receiveAcked(sub, 6); len(got) != 6 {
		e.Fatalf("first pass received %v", got)
	}
	sub.Close()

	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	if err := e.tr.Rewind(ctx, opts, from); err != nil {
		e.Fatalf("Rewind: %v", err)
	}
	sub = e.subscribe(opts)
	defer sub.Close()
	var want []string
	for _, topic := range topics {
		want = append(want, topic+" after 1", topic+" after 2")
	}
	if got := e.receiveAcked(sub, 4); !sameSet(got, want) {
		e.Fatalf("after Rewind received %v, want %v", got, want)
	}
	e.none(sub, "the messages from before the rewind time were acked")
}

// A reader reads a topic from its first message and consumes nothing: a
// second reader and then a subscription starting at the earliest get every
// message too.
func testReader(e *env) {
	topic := e.topic()
	want := []string{"r1", "r2", "r3"}
	e.sendRaw(topic, want...)
	for pass := range 2 {
		r, err := e.tr.NewReader(e.ctx, topic)
		if err != nil {
			e.Fatal(err)
		}
		var got []string
		for range want {
			ctx, cancel := context.WithTimeout(e.ctx, wait)
			m, err := r.Next(ctx)
			cancel()
			if err != nil {
				e.Fatalf("reader %d after %v: %v", pass, got, err)
			}
			got = append(got, string(m.Payload()))
		}
		ctx, cancel := context.WithTimeout(e.ctx, quiet)
		if m, err := r.Next(ctx); err == nil {
			e.Fatalf("reader %d read %q past the end", pass, m.Payload())
		}
		cancel()
		r.Close()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			e.Fatalf("reader %d read %v, want %v in order", pass, got, want)
		}
	}
	sub := e.subscribe(bus.SubscribeOptions{Topics: []string{topic}, Subscription: e.name("sub"), Start: bus.Earliest})
	defer sub.Close()
	if got := e.receiveAcked(sub, 3); !sameSet(got, want) {
		e.Fatalf("subscription after the readers received %v", got)
	}
}

// A message written with an older schema that the current one can read (it
// lacks an optional field) names that older schema, and decodes with it;
// one written with the current schema names the current one. Checked for
// batched senders, and for unbatched ones unless the transport says it
// cannot (WithoutWriterSchemaUnbatched).
func testWriterSchema(e *env) {
	modes := []bool{true}
	if e.s.writerSchemaUnbatched {
		modes = append(modes, false)
	}
	for _, batching := range modes {
		e.Run(fmt.Sprintf("batching=%v", batching), func(t *testing.T) {
			sub := &env{T: t, s: e.s, tr: e.tr, ctx: e.ctx}
			sub.writerSchema(batching)
		})
	}
}

func (e *env) writerSchema(batching bool) {
	topic, ev := e.topic(), catalog(e)
	olderJSON := withoutField(e, ev.SchemaJSON, "enrollment_end")
	older := eventWithSchema(e, ev, olderJSON)
	olderPayload, err := avro.Marshal(older.Schema, map[string]any{"catalog_info": map[string]any{
		"course_key": "course-v1:Bus+Old+1", "name": "Old writer", "hidden": false, "invitation_only": false,
		"schedule_data": map[string]any{"start": "2026-09-01T00:00:00+00:00", "pacing": "self", "end": nil, "enrollment_start": nil},
	}})
	if err != nil {
		e.Fatal(err)
	}
	old := e.sender(bus.SenderOptions{Topic: topic, Event: older, Batching: batching})
	e.send(old, &bus.OutgoingMessage{Payload: olderPayload, Properties: map[string]string{"writer": "older"}})
	old.Close()
	current := e.sender(bus.SenderOptions{Topic: topic, Event: ev, Batching: batching})
	payload, err := ev.Encode(catalogValue("course-v1:Bus+New+1"))
	if err != nil {
		e.Fatal(err)
	}
	e.send(current, &bus.OutgoingMessage{Payload: payload, Properties: map[string]string{"writer": "current"}})
	current.Close()

	sub := e.subscribe(bus.SubscribeOptions{Topics: []string{topic}, Subscription: e.name("sub")})
	defer sub.Close()
	for range 2 {
		m := e.receive(sub)
		writer, err := m.WriterSchema(e.ctx)
		if err != nil {
			e.Fatalf("WriterSchema: %v", err)
		}
		who := m.Properties()["writer"]
		wantJSON, wantKey := ev.SchemaJSON, "course-v1:Bus+New+1"
		if who == "older" {
			wantJSON, wantKey = olderJSON, "course-v1:Bus+Old+1"
		}
		if writer == "" {
			e.Fatalf("the %s writer's message names no writer schema", who)
		}
		if canonical(e, writer) != canonical(e, wantJSON) {
			e.Fatalf("the %s writer's message names schema %s", who, writer)
		}
		v, err := ev.DecodeWriter(writer, m.Payload())
		if err != nil {
			e.Fatalf("decode the %s writer's message with its writer schema: %v", who, err)
		}
		if got := v.(*schema.CourseCatalogInfoChanged); got.CatalogInfo.CourseKey != wantKey || got.CatalogInfo.ScheduleData.EnrollmentEnd != nil {
			e.Fatalf("the %s writer's message decoded as %+v", who, got.CatalogInfo)
		}
		if err := sub.Ack(m); err != nil {
			e.Fatal(err)
		}
	}
}

// eventWithSchema is ev's type with another schema: what a producer built
// on another version of the event declares. Only Type, Topic, KeyField,
// SchemaJSON and Schema are set, which is all a transport may read of an
// Event it is given (it sends payloads encoded already).
func eventWithSchema(t testing.TB, ev *schema.Event, schemaJSON string) *schema.Event {
	t.Helper()
	s, err := avroparse.Parse([]byte(schemaJSON))
	if err != nil {
		t.Fatal(err)
	}
	return &schema.Event{Type: ev.Type, Topic: ev.Topic, KeyField: ev.KeyField, SchemaJSON: schemaJSON, Schema: s}
}

// withoutField is schemaJSON without the record field named field, at any
// depth.
func withoutField(t testing.TB, schemaJSON, field string) string {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(schemaJSON), &doc); err != nil {
		t.Fatal(err)
	}
	removed := false
	var walk func(any)
	walk = func(n any) {
		switch v := n.(type) {
		case map[string]any:
			if fields, ok := v["fields"].([]any); ok {
				kept := fields[:0]
				for _, f := range fields {
					if m, ok := f.(map[string]any); ok && m["name"] == field {
						removed = true
						continue
					}
					kept = append(kept, f)
				}
				v["fields"] = kept
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	if !removed {
		t.Fatalf("no field %q in the schema", field)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
