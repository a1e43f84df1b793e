package integration

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/edxbus/edxbus/internal/testenv"
)

// Shape of one chaos run. The stream is paced over chaosStream so that the
// faults land while events flow; every count is bounded, and so is the time.
const (
	chaosEvents = 600
	chaosRuns   = 40
	chaosStream = 10 * time.Second
	chaosKills  = 12  // consumer SIGKILLs, 300–700 ms apart
	chaosFail   = 0.1 // of course-run writes, PostgreSQL and MariaDB only
)

// chaosVariant is one store backend the chaos suite runs against.
type chaosVariant struct {
	name string
	// postgres: a throwaway PostgreSQL server instead of SQLite, killed
	// (every server process, SIGKILL) and restarted mid-stream, with a
	// trigger failing a random fraction of course-run writes.
	postgres bool
	// mariadb: the same with a throwaway MariaDB server (the store's
	// MySQL dialect).
	mariadb bool
}

// TestChaos streams catalog events through the ingest while consumer
// processes are SIGKILLed over and over and replaced, the broker is down
// for a while during which the ingest is SIGKILLed and started again, the
// broker is SIGKILLed and restarted, Redis is restarted (losing every dedupe marker),
// poison events are mixed in and, on PostgreSQL and MariaDB, the database is
// killed and restarted and fails a fraction of the applies. At the end, from the store:
// the catalog equals the source of truth (every run in the state of its
// newest event) and every event was recorded once and, by the apply audit,
// written at most once; from the broker: every event was stored, the
// subscription has no backlog, and the dead-letter topic holds the poison
// and nothing else. Every fault must have fired, as often as planned, while
// events were still being posted, and redeliveries must have been seen.
func TestChaos(t *testing.T) {
	if os.Getenv("EDXBUS_PULSAR_URL") != "" {
		t.Skip("restarts the embedded broker; not meaningful against an external cluster")
	}
	for _, v := range []chaosVariant{{name: "sqlite"}, {name: "postgres", postgres: true}, {name: "mariadb", mariadb: true}} {
		t.Run(v.name, func(t *testing.T) { runChaos(t, v) })
	}
}

func runChaos(t *testing.T, v chaosVariant) {
	dataDir := filepath.Join(t.TempDir(), "broker")
	addr, admin := freeAddr(t), freeAddr(t)
	brokerArgs := []string{"broker", "--addr", addr, "--admin-addr", admin, "--data-dir", dataDir}
	brk := start(t, "broker", brokerArgs...)
	e := env{pulsarURL: "pulsar://" + addr, adminURL: "http://" + admin, storeDSN: "sqlite:" + filepath.Join(t.TempDir(), "catalog.db")}
	var pg *testenv.Postgres
	var mdb *testenv.MariaDB
	switch {
	case v.postgres:
		pg = testenv.StartPostgres(t)
		e.storeDSN = pg.DSN()
	case v.mariadb:
		// sql_errlog logs every error sent to a client: the injected
		// failures are counted from it, as from PostgreSQL's log.
		mdb = testenv.StartMariaDB(t, testenv.WithMariaDBSetting("plugin-load-add", "sql_errlog"))
		e.storeDSN = mdb.DSN()
	}
	waitHTTP(t, e.adminURL+"/admin/v2/brokers/health")
	redisPort := strings.Split(freeAddr(t), ":")[1]
	rds := redisProc(t, redisPort)
	e.redisURL = "redis://127.0.0.1:" + redisPort + "/0"
	waitTCP(t, "127.0.0.1:"+redisPort)
	st := openStore(t, e.storeDSN) // creates the tables the triggers need
	if pg != nil {
		injectStoreFailures(t, pg.DSN(), chaosFail)
	}
	if mdb != nil {
		injectMySQLStoreFailures(t, mdb.DSN(), chaosFail)
	}
	installApplyAudit(t, e.storeDSN)

	// A short lease, so that events a killed consumer held are taken over
	// within the run; max-deliveries far above what kills, outages and
	// injected failures can add up to, so that only poison is dead-lettered.
	consumerArgs := []string{"--dedupe-unavailable", "bypass", "--dedupe-lease", "2s", "--max-deliveries", "100"}
	pl := newPipeline(t, e, 3, consumerArgs...)
	live := append([]*proc(nil), pl.consumer...)
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Now().UTC().Add(-time.Hour)
	want := map[string]string{} // run → name of its newest event
	faults := map[string]int{}
	// Of each one-off fault, how many events were still to be posted when it
	// fired: none means it hit no flowing stream.
	eventsAfter := map[string]int{}
	poison := 0
	// Deliveries counted by each consumer, read from its /metrics just
	// before it is killed and from the survivors at the end.
	seen := map[string]float64{}
	tally := func(p *proc) {
		m, err := consumerDeliveries(p.addr)
		if err != nil {
			t.Logf("scrape %s: %v (its deliveries are not counted)", p.name, err)
		}
		for k, n := range m {
			seen[k] += n
		}
	}

	// One-off faults at fixed points of the stream; consumer kills recur.
	dbDown := false
	type fault struct {
		at   time.Duration
		name string
		do   func()
	}
	// During an outage the ingest is killed and started again: it must open
	// its port and accept into its outbox with no broker to talk to.
	brokerDown, acceptedInOutage := false, 0
	schedule := []fault{
		{chaosStream * 1 / 8, "broker down, ingest restarted", func() {
			brk.stop(syscall.SIGKILL)
			brokerDown = true
			pl.restartIngest(syscall.SIGKILL)
		}},
		{chaosStream * 2 / 8, "broker back", func() {
			brk = start(t, "broker-back", brokerArgs...)
			waitHTTP(t, e.adminURL+"/admin/v2/brokers/health")
			brokerDown = false
		}},
		{chaosStream * 3 / 8, "broker killed", func() { // SIGKILL, restart on its data dir
			brk.stop(syscall.SIGKILL)
			brk = start(t, "broker-restarted", brokerArgs...)
			waitHTTP(t, e.adminURL+"/admin/v2/brokers/health")
		}},
		{chaosStream * 4 / 8, "redis restarted", func() { // every dedupe marker is gone
			rds.stop(syscall.SIGKILL)
			rds = redisProc(t, redisPort)
			waitTCP(t, "127.0.0.1:"+redisPort)
		}},
	}
	switch {
	case pg != nil:
		schedule = append(schedule,
			fault{chaosStream * 5 / 8, "postgres killed", func() { pg.Kill(t); dbDown = true }},
			// Down for a second while events keep coming: applies fail.
			fault{chaosStream*5/8 + time.Second, "postgres restarted", func() { pg.Start(t); dbDown = false }})
	case mdb != nil:
		schedule = append(schedule,
			fault{chaosStream * 5 / 8, "mariadb killed", func() { mdb.Kill(t); dbDown = true }},
			fault{chaosStream*5/8 + time.Second, "mariadb restarted", func() { mdb.Start(t); dbDown = false }})
	}
	planned := make([]string, 0, len(schedule))
	for _, f := range schedule {
		planned = append(planned, f.name)
	}
	begin := time.Now()
	nextKill := begin.Add(jitter(rng))
	var lastKill time.Duration // into the stream: the headroom left for kills
	for i := 0; i < chaosEvents; i++ {
		time.Sleep(time.Until(begin.Add(chaosStream * time.Duration(i) / chaosEvents)))
		key := pl.key(fmt.Sprintf("X%d", i%chaosRuns), "1")
		name := fmt.Sprintf("edit %04d", i)
		at := t0.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000000+00:00")
		pl.postRetrying(catalogType, catalogBody(key, name, i%3 == 0), map[string]string{"ce_id": uuid.NewString(), "ce_time": at})
		want[key] = name
		if brokerDown {
			acceptedInOutage++
		}
		// Poison goes straight to the topic (the ingest refuses it), so not
		// while the broker is down.
		if i%97 == 50 && !brokerDown {
			pl.publishPoison(catalogBody("poison-"+fmt.Sprint(i), "poison", false))
			poison++
		}
		for len(schedule) > 0 && time.Since(begin) >= schedule[0].at {
			schedule[0].do()
			faults[schedule[0].name]++
			eventsAfter[schedule[0].name] = chaosEvents - 1 - i
			schedule = schedule[1:]
		}
		// A replacement needs the store and the broker to be ready: no kills
		// while either is down.
		if faults["consumer killed"] < chaosKills && time.Now().After(nextKill) && !dbDown && !brokerDown {
			n := rng.IntN(len(live))
			tally(live[n])
			live[n].stop(syscall.SIGKILL)
			live[n] = pl.addConsumer(consumerArgs...)
			faults["consumer killed"]++
			lastKill = time.Since(begin)
			nextKill = time.Now().Add(jitter(rng))
		}
	}
	// Faults still due when the stream ended run now, to bring the services
	// back, and fail the check below (eventsAfter stays 0).
	for _, f := range schedule {
		f.do()
		faults[f.name]++
	}
	streamed := time.Since(begin)
	for _, name := range planned {
		if faults[name] != 1 || eventsAfter[name] == 0 {
			t.Errorf("fault %q fired %d times, with %d events still to post; want once, mid-stream", name, faults[name], eventsAfter[name])
		}
	}
	if acceptedInOutage == 0 {
		t.Error("no event was accepted by the restarted ingest while the broker was down")
	}
	// Kills only happen inside the loop, each waiting for its replacement to
	// be ready; on a loaded machine the stream can end before the last few.
	// Fewer than half means they hardly happened at all.
	if k := faults["consumer killed"]; k < chaosKills/2 {
		t.Errorf("%d consumers killed during the stream (the last %v in), want at least %d of the %d planned", k, lastKill.Round(time.Millisecond), chaosKills/2, chaosKills)
	}

	eventually(t, "the catalog equal to the source of truth", func() bool {
		for key, name := range want {
			r, ok := runOf(st, key)
			if !ok || r.Title != name {
				return false
			}
		}
		return true
	})
	// Every event recorded once in the store's inbox (stale ones included);
	// poison is refused before it is recorded. The inbox cannot count twice:
	// the apply audit below checks that nothing was applied twice.
	var counts struct{ applied, runs int64 }
	eventually(t, "every event recorded in the inbox", func() bool {
		c, err := st.Counts(context.Background())
		counts.applied, counts.runs = c.AppliedEvents, c.CourseRuns
		return err == nil && counts.applied == chaosEvents
	})
	if counts.runs != chaosRuns {
		t.Errorf("the store holds %d course runs, want %d", counts.runs, chaosRuns)
	}
	topic := pl.prefix + "-course-catalog-info-changed"
	// A missing subscription would read as zero backlog: it must be there.
	eventually(t, "the subscription there, with no backlog", func() bool {
		s, err := topicStats(e.adminURL, topic)
		sub, ok := s.Subscriptions[pl.sub]
		return err == nil && ok && sub.MsgBacklog == 0 && sub.UnackedMessages == 0
	})
	// Nothing is in flight any more: every write the audit saw is final.
	outcomes := checkApplyAudit(t, e.storeDSN)
	// The relay sends groups as Pulsar batches, so the entries count
	// batches: read the messages themselves.
	stored, dups := 0, 0
	for _, n := range e.eventCounts(t, "persistent://public/default/"+topic) {
		stored += n
		dups += n - 1
	}
	if stored != chaosEvents+poison || dups != 0 {
		t.Errorf("the broker stores %d messages on %s (%d of them repeats), want %d (events and poison, each once)",
			stored, topic, dups, chaosEvents+poison)
	}
	// A dead letter is published before its message is acknowledged, so a
	// consumer or broker killed in between has the message dead-lettered
	// twice: at-least-once on the DLQ, like Pulsar's own dead-letter policy.
	dead, poisoned := deadLetters(t, e, pl)
	if poisoned != poison || dead < poison {
		t.Errorf("%d poison events; the DLQ holds %d dead letters of %d distinct poison events", poison, dead, poisoned)
	}

	for _, p := range live {
		tally(p)
	}
	// Redeliveries: deliveries the consumers handled beyond one per message.
	// A lower bound, as what a consumer handled between its last scrape and
	// its SIGKILL is not counted; messages prefetched but never handled are
	// not deliveries here either.
	redelivered := int(seen["received"]) - chaosEvents - poison
	// Kills, the broker restart and the Redis restart each leave messages
	// unacknowledged or undeduplicated: some must come back.
	if redelivered <= 0 {
		t.Errorf("no redelivery seen (%d deliveries handled for %d messages)", int(seen["received"]), chaosEvents+poison)
	}
	if pg != nil || mdb != nil {
		// Counted from the server log: the trigger's own writes would be
		// rolled back with the failing transaction.
		for _, kind := range []string{"serialization failure", "lock timeout"} {
			if pg != nil {
				faults["store "+kind] = strings.Count(pg.Log(), "ERROR:  chaos: injected "+kind)
			} else {
				errlog, _ := os.ReadFile(mdb.DataFile("sql_errors.log"))
				faults["store "+kind] = strings.Count(string(errlog), "chaos: injected "+kind)
			}
		}
		if faults["store lock timeout"] == 0 {
			t.Error("no store failure reached the consumers")
		}
		if faults["store serialization failure"] == 0 {
			t.Error("no serialization failure for the store to retry")
		}
	}
	t.Logf("chaos %s: %d events over %d runs streamed in %v, %d poison; faults injected: %v (last kill %v in); "+
		"%d events accepted during the broker outage by an ingest restarted in it; redeliveries seen ≥ %d (%d deliveries handled: %.0f retried after a failure, %.0f duplicates acked, %.0f nacked as busy); "+
		"%d events recorded (by outcome %v), %d dead letters",
		v.name, chaosEvents, chaosRuns, streamed.Round(time.Millisecond), poison, faults, lastKill.Round(time.Millisecond),
		acceptedInOutage, redelivered, int(seen["received"]), seen["retried"], seen["duplicate"], seen["busy"], counts.applied, outcomes, dead)
}

// injectStoreFailures makes a random fraction of course-run writes fail,
// with no hook in the binary: a trigger raises either a serialization
// failure (SQLSTATE 40001, which the store retries in its transaction) or a
// lock timeout (55P03, which reaches the consumer: nack, redelivery). Both
// are transient for store.IsTransient, so neither may dead-letter an event.
func injectStoreFailures(t *testing.T, dsn string, p float64) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.ExecContext(context.Background(), fmt.Sprintf(`
CREATE FUNCTION chaos_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF random() < %g THEN
		IF random() < 0.5 THEN
			RAISE EXCEPTION 'chaos: injected serialization failure' USING ERRCODE = '40001';
		END IF;
		RAISE EXCEPTION 'chaos: injected lock timeout' USING ERRCODE = '55P03';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER chaos_fail BEFORE INSERT OR UPDATE ON course_runs FOR EACH ROW EXECUTE FUNCTION chaos_fail();`, p))
	if err != nil {
		t.Fatalf("install the failing trigger: %v", err)
	}
}

// injectMySQLStoreFailures is injectStoreFailures on MySQL or MariaDB: the
// trigger raises a deadlock (1213, SQLSTATE 40001, retried in the store's
// transaction) or a lock wait timeout (1205, which reaches the consumer).
// MySQL triggers take one event each.
func injectMySQLStoreFailures(t *testing.T, dsn string, p float64) {
	t.Helper()
	db := testenv.OpenMySQL(t, dsn)
	for _, op := range []string{"INSERT", "UPDATE"} {
		_, err := db.ExecContext(context.Background(), fmt.Sprintf(`
CREATE TRIGGER chaos_fail_%s BEFORE %s ON course_runs FOR EACH ROW
BEGIN
	IF RAND() < %g THEN
		IF RAND() < 0.5 THEN
			SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = 'chaos: injected serialization failure', MYSQL_ERRNO = 1213;
		END IF;
		SIGNAL SQLSTATE 'HY000' SET MESSAGE_TEXT = 'chaos: injected lock timeout', MYSQL_ERRNO = 1205;
	END IF;
END`, strings.ToLower(op), op, p))
		if err != nil {
			t.Fatalf("install the failing trigger: %v", err)
		}
	}
}

// jitter is the pause before the next consumer kill.
func jitter(rng *rand.Rand) time.Duration {
	return 300*time.Millisecond + time.Duration(rng.IntN(400))*time.Millisecond
}

// consumerDeliveries reads a consumer's /metrics: "received" (every
// delivery it handled) and its outcomes by name (retried, duplicate, busy…).
func consumerDeliveries(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		sp := strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || sp < 0 {
			continue
		}
		n, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		series := line[:sp]
		switch {
		case strings.HasPrefix(series, "edxbus_consumer_received_total{"):
			m["received"] += n
		case strings.HasPrefix(series, "edxbus_consumer_outcomes_total{"):
			_, outcome, _ := strings.Cut(series, `outcome="`)
			outcome, _, _ = strings.Cut(outcome, `"`)
			m[outcome] += n
		}
	}
	return m, sc.Err()
}

// chaosTopicStats is the part of the broker's topic stats the suite checks.
type chaosTopicStats struct {
	Subscriptions map[string]struct {
		MsgBacklog      int64 `json:"msgBacklog"`
		UnackedMessages int64 `json:"unackedMessages"`
	} `json:"subscriptions"`
}

func topicStats(adminURL, topic string) (chaosTopicStats, error) {
	var s chaosTopicStats
	resp, err := http.Get(adminURL + "/admin/v2/persistent/public/default/" + topic + "/stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("stats of %s: %s", topic, resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// deadLetters lists the pipeline's dead-letter topic: how many dead letters
// it holds and how many distinct poison events (the reason names the bad
// course key). Anything else there fails the test.
func deadLetters(t *testing.T, e env, pl *pipeline) (total, poison int) {
	t.Helper()
	out, err := exec.Command(binary(t), "dlq", "list", "--pulsar-url", e.pulsarURL, "--pulsar-admin-url", e.adminURL,
		"--dlq-topic", pl.prefix+"-course-catalog-info-changed-"+pl.sub+"-DLQ", "--idle", "2s", "--log-level", "error").CombinedOutput()
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 {
		t.Fatalf("dlq list:\n%s", out)
	}
	ids := map[string]bool{}
	for _, line := range lines[1 : len(lines)-1] { // between the header and the count
		if !strings.Contains(line, "poison-") {
			t.Errorf("dead-lettered, and no poison: %s", line)
			continue
		}
		ids[strings.Fields(line)[1]] = true // DEAD-LETTERED, EVENT ID, …
	}
	total, _ = strconv.Atoi(strings.Fields(lines[len(lines)-1])[0]) // "N dead letters on …"
	return total, len(ids)
}

// redisProc runs a redis-server of the test's own, so the test may restart it.
func redisProc(t *testing.T, port string) *proc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Unavailable(t, "no redis-server binary on PATH to start and restart")
	}
	p := &proc{name: "redis", output: &strings.Builder{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

func waitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cmd := exec.Command("bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1))
		if cmd.Run() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never opened", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
