package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/bus"
	"github.com/edxbus/edxbus/consumer"
	"github.com/edxbus/edxbus/producer"
	"github.com/edxbus/edxbus/schema"
)

// DemoFeed plays Studio for `edxbus run --demo`: a stream of catalog edits
// across several orgs and runs, with the accidents a real bus sees: a
// producer retry that duplicates an event, an event that arrives after a
// newer one, and a poison event.
type DemoFeed struct {
	producer *producer.Producer
	// transport sends the duplicates: a second sender, as a retrying Python
	// producer would be.
	transport bus.Transport
	topic     string
	rate      float64
	log       zerolog.Logger
	published atomic.Int64
}

// NewDemoFeed publishes through p at rate events per second; duplicates go
// straight to topic through t.
func NewDemoFeed(p *producer.Producer, t bus.Transport, topic string, rate float64, log zerolog.Logger) *DemoFeed {
	return &DemoFeed{producer: p, transport: t, topic: topic, rate: rate, log: log}
}

// Published is how many events the feed has sent so far.
func (d *DemoFeed) Published() int64 { return d.published.Load() }

type demoRun struct {
	key            string
	base, name     string
	start, end     time.Time
	pacing         string
	hidden         bool
	invitationOnly bool
	lastMeta       schema.Metadata
}

// Run feeds events until ctx ends.
func (d *DemoFeed) Run(ctx context.Context) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	orgs := []string{"edX", "MITx", "HarvardX", "DelftX"}
	courses := []string{"CS101", "Data200", "Bio150"}
	var runs []*demoRun
	newRun := func(org, course string, year, term int) *demoRun {
		start := time.Date(year, time.Month(1+rng.IntN(12)), 1, 0, 0, 0, 0, time.UTC)
		name := fmt.Sprintf("%s %s", org, course)
		return &demoRun{key: fmt.Sprintf("course-v1:%s+%s+%dT%d", org, course, year, term),
			base: name, name: name, start: start, end: start.AddDate(0, 3, 0), pacing: "instructor"}
	}
	for _, org := range orgs {
		for _, c := range courses {
			// Term 1 of 2026 for every course, so the README's example
			// key (course-v1:edX+CS101+2026T1) always exists.
			runs = append(runs, newRun(org, c, 2026, 1))
		}
	}
	ev, err := schema.Lookup(schema.EventCourseCatalogInfoChanged)
	if err != nil {
		d.log.Error().Err(err).Msg("demo: the catalog event is not registered")
		return
	}
	dup, err := d.transport.NewSender(ctx, bus.SenderOptions{Topic: d.topic, Event: ev})
	if err != nil {
		d.log.Error().Err(err).Msg("demo: cannot create the duplicate sender; duplicates will be skipped")
	} else {
		defer dup.Close()
	}
	interval := time.Duration(float64(time.Second) / max(d.rate, 0.1))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r := runs[rng.IntN(len(runs))]
		switch n := rng.IntN(100); {
		case i%40 == 39 && dup != nil: // poison: a course key the catalog cannot hold
			// Sent around the producer, which refuses it: as a producer
			// that does not check (an older service, another bus client)
			// would.
			bad := *r
			bad.key = "demo:not-a-course-key"
			bad.lastMeta = schema.NewMetadata(schema.EventCourseCatalogInfoChanged, schema.WithService("cms"))
			d.sendDirect(ctx, dup, ev, &bad)
			continue
		case i%17 == 16 && r.lastMeta.ID != "" && dup != nil: // a producer retry: same event, same id
			d.sendDirect(ctx, dup, ev, r)
			continue
		case i%23 == 22 && r.lastMeta.ID != "": // out of order: an edit older than what the catalog holds
			old := *r
			old.name += " (stale draft)"
			d.send(ctx, &old, r.lastMeta.Time.Add(-time.Minute))
			continue
		case n < 10: // a rerun of an existing course
			org, course := orgs[rng.IntN(len(orgs))], courses[rng.IntN(len(courses))]
			r = newRun(org, course, 2027, 1+rng.IntN(3))
			runs = append(runs, r)
		case n < 40:
			shift := time.Duration(rng.IntN(30)-10) * 24 * time.Hour
			r.start, r.end = r.start.Add(shift), r.end.Add(shift)
		case n < 55:
			r.hidden = !r.hidden
		case n < 65:
			r.name = fmt.Sprintf("%s (edition %d)", r.base, rng.IntN(9)+1)
		case n < 75:
			if r.pacing == "self" {
				r.pacing = "instructor"
			} else {
				r.pacing = "self"
			}
		case n < 80:
			r.invitationOnly = !r.invitationOnly
		}
		r.lastMeta = d.send(ctx, r, time.Now())
	}
}

func (r *demoRun) event() *schema.CourseCatalogInfoChanged {
	end := schema.DateTime{Time: r.end}
	return &schema.CourseCatalogInfoChanged{CatalogInfo: schema.CourseCatalogData{
		CourseKey: r.key, Name: r.name, Hidden: r.hidden, InvitationOnly: r.invitationOnly,
		ScheduleData: schema.CourseScheduleData{Start: schema.DateTime{Time: r.start}, Pacing: r.pacing, End: &end},
	}}
}

func (d *DemoFeed) send(ctx context.Context, r *demoRun, at time.Time) schema.Metadata {
	meta := schema.NewMetadata(schema.EventCourseCatalogInfoChanged, schema.WithTime(at), schema.WithService("cms"))
	if _, err := d.producer.Publish(ctx, meta, r.event()); err != nil {
		if ctx.Err() == nil {
			d.log.Warn().Err(err).Msg("demo: publish failed")
		}
		return schema.Metadata{}
	}
	d.published.Add(1)
	return meta
}

// sendDirect sends r's event with r.lastMeta through s, past the producer
// and its checks: a retrying producer's duplicate, or the poison.
func (d *DemoFeed) sendDirect(ctx context.Context, s bus.Sender, ev *schema.Event, r *demoRun) {
	payload, err := ev.Encode(r.event())
	if err != nil {
		d.log.Warn().Err(err).Msg("demo: encode")
		return
	}
	_, err = s.Send(ctx, &bus.OutgoingMessage{Payload: payload, Key: r.key, Properties: r.lastMeta.Properties(), EventTime: r.lastMeta.Time})
	if err == nil {
		d.published.Add(1)
	}
}

// DemoDeadLetters is a log hook for the demo's consumer: the demo sends a
// poison event every 40 edits on purpose, so the first dead letter is
// logged in full with a note, and the later ones only counted in the
// demo's summary line, instead of an error line every two seconds.
func DemoDeadLetters() zerolog.Hook { return &demoDeadLetters{} }

type demoDeadLetters struct{ seen atomic.Int64 }

func (h *demoDeadLetters) Run(e *zerolog.Event, level zerolog.Level, msg string) {
	if msg != consumer.LogDeadLettered {
		return
	}
	switch h.seen.Add(1) {
	case 1:
		e.Str("note", "the demo sends a poison event every 40 edits; later dead letters are counted in the summary (edxbus dlq list shows them)")
	default:
		e.Discard()
	}
}
