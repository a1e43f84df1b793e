package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edxbus/edxbus/broker"
)

const childDataDirEnv = "EDXBUS_BROKER_TEST_CHILD_DATA_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDataDirEnv); dir != "" {
		runChildBroker(dir)
		return
	}
	os.Exit(m.Run())
}

// runChildBroker serves a disk-backed broker until killed, announcing its
// URL on stdout.
func runChildBroker(dir string) {
	b, err := broker.New(broker.WithAddr("127.0.0.1:0"), broker.WithAdminAddr("127.0.0.1:0"), broker.WithDataDir(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := b.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("URL", b.URL())
	select {}
}

// startChild runs this test binary as a broker process on dir.
func startChild(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDataDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "URL ") {
		t.Fatalf("child broker did not start: %q, %v", line, err)
	}
	return cmd, strings.TrimSpace(strings.TrimPrefix(line, "URL "))
}

func clientFor(t *testing.T, url string) pulsar.Client {
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, OperationTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKill9LosesNoReceiptedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	dir := t.TempDir()
	child, url := startChild(t, dir)
	client := clientFor(t, url)
	topic := "persistent://public/default/crash"
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Shared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, BatchingMaxPublishDelay: time.Millisecond,
		SendTimeout: 3 * time.Second, MaxReconnectToBroker: func() *uint { n := uint(0); return &n }()})
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	var mu sync.Mutex
	receipted := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			payload := fmt.Sprintf("m-%d", i)
			p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: []byte(payload)}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				if err == nil {
					mu.Lock()
					receipted[payload] = true
					mu.Unlock()
				}
			})
			if i%50 == 49 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	// Ack part of the stream so the cursor has something to resume from.
	acked := map[string]bool{}
	for len(acked) < 200 {
		m := receiveN(t, cons, 1, 10*time.Second)[0]
		if err := cons.Ack(m); err != nil {
			t.Fatalf("ack: %v", err)
		}
		acked[string(m.Payload())] = true
	}
	time.Sleep(100 * time.Millisecond)
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	cancel()
	wg.Wait()
	client.Close()

	mu.Lock()
	want := len(receipted)
	mu.Unlock()
	if want < 200 {
		t.Fatalf("only %d messages receipted before the kill", want)
	}
	t.Logf("%d messages receipted before SIGKILL, %d acked", want, len(acked))
	_, url = startChild(t, dir)
	client = clientFor(t, url)
	defer client.Close()
	cons, err = client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s", Type: pulsar.Shared})
	if err != nil {
		t.Fatalf("resubscribe: %v", err)
	}
	defer cons.Close()
	mu.Lock()
	defer mu.Unlock()
	missing := map[string]bool{}
	for k := range receipted {
		if !acked[k] {
			missing[k] = true
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(missing) > 0 && time.Now().Before(deadline) {
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := cons.Receive(rctx)
		rcancel()
		if err != nil {
			break
		}
		delete(missing, string(m.Payload()))
		cons.Ack(m)
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d receipted, unacked messages lost after kill -9", len(missing), want-len(acked))
	}
}
