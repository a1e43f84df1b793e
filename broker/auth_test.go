package broker_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/golang-jwt/jwt/v5"
	"github.com/sirupsen/logrus"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/internal/testenv"
)

var secret = []byte("edxbus-test-secret-0123456789abc")

func token(t testing.TB, method jwt.SigningMethod, key any, sub string, ttl time.Duration) string {
	t.Helper()
	claims := jwt.RegisteredClaims{Subject: sub}
	if ttl != 0 {
		claims.ExpiresAt = jwt.NewNumericDate(time.Now().Add(ttl))
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// securedBroker runs a token-authenticating broker where "studio" may
// produce and "discovery" may consume on public/default, and "admin" is a
// super-user.
func securedBroker(t *testing.T, opts ...broker.Option) *broker.Broker {
	t.Helper()
	b := brokertest.Start(t, append([]broker.Option{broker.WithTokenSecretKey(secret), broker.WithSuperUserRoles("admin")}, opts...)...)
	if err := b.GrantPermission("public/default", "studio", []string{broker.ActionProduce}); err != nil {
		t.Fatal(err)
	}
	if err := b.GrantPermission("public/default", "discovery", []string{broker.ActionConsume}); err != nil {
		t.Fatal(err)
	}
	return b
}

func authClient(t *testing.T, url string, auth pulsar.Authentication) pulsar.Client {
	t.Helper()
	c, _ := loggedAuthClient(t, url, auth)
	return c
}

// clientLogger keeps a Pulsar client's warnings. When the broker refuses
// the CONNECT, or the TLS handshake fails, the Go client returns only
// "connection error" to the caller and logs the actual reason at warning
// level, so the log is where a test can check why it was refused.
func clientLogger() (plog.Logger, *testenv.LogBuffer) {
	buf := &testenv.LogBuffer{}
	lg := logrus.New()
	lg.SetLevel(logrus.WarnLevel)
	lg.SetOutput(buf)
	return plog.NewLoggerWithLogrus(lg), buf
}

// loggedAuthClient is authClient with its log kept (clientLogger).
func loggedAuthClient(t *testing.T, url string, auth pulsar.Authentication) (pulsar.Client, *testenv.LogBuffer) {
	t.Helper()
	lg, buf := clientLogger()
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, Authentication: auth, OperationTimeout: 3 * time.Second,
		ConnectionTimeout: 2 * time.Second, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, buf
}

func produceN(t *testing.T, c pulsar.Client, topic string, n int) {
	t.Helper()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	for i := range n {
		if _, err := p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: []byte{byte(i)}}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

func storedMessages(t *testing.T, b *broker.Broker, topic string) int64 {
	t.Helper()
	last, err := b.LastMessageID(topic)
	if err != nil {
		return 0 // never created
	}
	return last.EntryID + 1
}

func TestTokenAuthEndToEnd(t *testing.T) {
	b := securedBroker(t)
	topic := topicName(t)
	discovery := authClient(t, b.URL(), pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, secret, "discovery", time.Hour)))
	cons, err := discovery.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "discovery", Type: pulsar.Shared})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer cons.Close()
	studio := authClient(t, b.URL(), pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, secret, "studio", time.Hour)))
	produceN(t, studio, topic, 20)
	if got := receiveN(t, cons, 20, 10*time.Second); len(got) != 20 {
		t.Fatalf("received %d of 20", len(got))
	}
}

// Refused clients get nothing in and nothing out: the topic stays empty
// and the subscription gets no consumer.
func TestRefusedClientsMoveNoMessages(t *testing.T) {
	b := securedBroker(t)
	topic := topicName(t)
	studio := authClient(t, b.URL(), pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, secret, "studio", time.Hour)))
	produceN(t, studio, topic, 3)

	t.Run("refused", func(t *testing.T) { refuseAll(t, b, topic) })
	discovery := authClient(t, b.URL(), pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, secret, "discovery", time.Hour)))
	if _, err := discovery.CreateProducer(pulsar.ProducerOptions{Topic: topic}); err == nil || !strings.Contains(err.Error(), "AuthorizationError") {
		t.Errorf("a consume-only role created a producer: %v", err)
	}
	if n := storedMessages(t, b, topic); n != 3 {
		t.Errorf("topic holds %d messages, want the 3 studio sent", n)
	}
	subs, err := b.Subscriptions(topic)
	if err != nil || len(subs) != 0 {
		t.Errorf("subscriptions %v (%v), want none", subs, err)
	}
}

// refuseAll tries, in parallel, to subscribe and produce with bad
// credentials. Each attempt must fail for its own reason and leave the topic
// as it was: no message added, none delivered, no subscription created.
func refuseAll(t *testing.T, b *broker.Broker, topic string) {
	stored := storedMessages(t, b, topic)
	for _, tc := range []struct {
		name string
		auth pulsar.Authentication
		// handshake: the broker refuses the CONNECT itself. The caller then
		// sees only "connection error" and want (the broker's message) is
		// in the client's log; otherwise want is in the returned error.
		handshake bool
		want      string
	}{
		{"wrong key", pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, []byte("not-the-secret-not-the-secret-xx"), "discovery", time.Hour)),
			true, "AuthenticationError: Unable to authenticate: invalid token: token signature is invalid"},
		{"expired", pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, secret, "discovery", -time.Minute)),
			true, "AuthenticationError: Unable to authenticate: invalid token: token has invalid claims: token is expired"},
		{"anonymous", nil,
			true, "AuthenticationError: Unable to authenticate: anonymous access is not allowed"},
		// studio may produce, so only its subscription is refused.
		{"wrong role", pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, secret, "studio", time.Hour)),
			false, `AuthorizationError: role "studio" is not authorized to consume on namespace public/default`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, log := loggedAuthClient(t, b.URL(), tc.auth)
			refused := func(op string, err error) {
				t.Helper()
				switch {
				case err == nil:
					t.Errorf("%s succeeded", op)
				case tc.handshake && !strings.Contains(err.Error(), "connection error"):
					t.Errorf("%s: error %q, want the client's \"connection error\"", op, err)
				case !tc.handshake && !strings.Contains(err.Error(), tc.want):
					t.Errorf("%s: error %q, want %q", op, err, tc.want)
				}
			}
			sub := "sneaky-" + strings.ReplaceAll(tc.name, " ", "-")
			cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: sub, SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
			if err == nil {
				cons.Close()
			}
			refused("subscribe", err)
			if tc.handshake {
				p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic})
				if err == nil {
					_, _ = p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: []byte("sneaky")})
					p.Close()
				}
				refused("create producer", err)
				if got := log.String(); !strings.Contains(got, tc.want) {
					t.Errorf("client log does not say %q:\n%s", tc.want, got)
				}
			}
			if n := storedMessages(t, b, topic); n != stored {
				t.Errorf("topic holds %d messages, want %d", n, stored)
			}
			st, err := b.Stats(topic)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := st.Subscriptions[sub]; ok {
				t.Errorf("subscription %q was created", sub)
			}
			if st.MsgOutCounter != 0 {
				t.Errorf("%d messages delivered", st.MsgOutCounter)
			}
		})
	}
}

// The client re-reads its token file when the broker challenges an expiring
// token (or on reconnect): rotating the file needs no restart and the
// producer never notices. The challenge protocol itself is tested in
// auth_internal_test.go.
func TestTokenRotationThroughTheFile(t *testing.T) {
	b := securedBroker(t, broker.WithKeepAliveInterval(2*time.Second))
	file := filepath.Join(t.TempDir(), "token")
	write := func(ttl time.Duration) {
		if err := os.WriteFile(file, []byte(token(t, jwt.SigningMethodHS256, secret, "studio", ttl)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(2 * time.Second)
	c := authClient(t, b.URL(), pulsar.NewAuthenticationTokenFromFile(file))
	topic := topicName(t)
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	write(time.Hour)
	deadline := time.Now().Add(4 * time.Second)
	sent := 0
	for time.Now().Before(deadline) {
		if _, err := p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: []byte("x")}); err != nil {
			t.Fatalf("send after %d: %v", sent, err)
		}
		sent++
		time.Sleep(50 * time.Millisecond)
	}
	if n := storedMessages(t, b, topic); n != int64(sent) {
		t.Fatalf("stored %d, sent %d", n, sent)
	}
}

func TestRS256PublicKey(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.Start(t, broker.WithTokenPublicKey(der), broker.WithSuperUserRoles("admin"))
	c := authClient(t, b.URL(), pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodRS256, priv, "admin", time.Hour)))
	produceN(t, c, topicName(t), 1)
	// An HS256 token signed with the public key bytes must not pass (the
	// algorithm-confusion attack).
	bad := authClient(t, b.URL(), pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, der, "admin", time.Hour)))
	if _, err := bad.CreateProducer(pulsar.ProducerOptions{Topic: topicName(t)}); err == nil {
		t.Fatal("HS256 token accepted by an RS256 broker")
	}
}

func TestAdminRESTAuth(t *testing.T) {
	b := securedBroker(t)
	topic := topicName(t)
	studioToken := token(t, jwt.SigningMethodHS256, secret, "studio", time.Hour)
	produceN(t, authClient(t, b.URL(), pulsar.NewAuthenticationToken(studioToken)), topic, 1)
	adminToken := token(t, jwt.SigningMethodHS256, secret, "admin", time.Hour)
	rest := strings.TrimPrefix(topic, "persistent://")
	do := func(method, path, tok, body string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), method, b.AdminURL()+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/admin/v2/tenants", "", "", 401},
		{"GET", "/admin/v2/tenants", "garbage", "", 401},
		{"GET", "/admin/v2/tenants", studioToken, "", 403},
		{"GET", "/admin/v2/tenants", adminToken, "", 200},
		{"GET", "/admin/v2/schemas/" + rest + "/schemas", studioToken, "", 200},
		{"GET", "/admin/v2/schemas/public/other/x/schemas", studioToken, "", 403},
		{"GET", "/lookup/v2/topic/" + strings.Replace(topic, "://", "/", 1), studioToken, "", 200},
		{"PUT", "/admin/v2/tenants/evil", studioToken, "", 403},
		{"POST", "/admin/v2/namespaces/public/default/permissions/studio", studioToken, `["consume"]`, 403},
		{"POST", "/admin/v2/namespaces/public/default/permissions/analytics", adminToken, `["consume"]`, 204},
		{"POST", "/admin/v2/namespaces/public/default/permissions/analytics", adminToken, `["delete"]`, 400},
		{"GET", "/metrics", "", "", 200},
	} {
		if got := do(tc.method, tc.path, tc.token, tc.body); got != tc.want {
			t.Errorf("%s %s (token %t): %d, want %d", tc.method, tc.path, tc.token != "", got, tc.want)
		}
	}
	req, _ := http.NewRequest("GET", b.AdminURL()+"/admin/v2/namespaces/public/default/permissions", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var perms map[string][]string
	if err := json.NewDecoder(resp.Body).Decode(&perms); err != nil {
		t.Fatal(err)
	}
	if strings.Join(perms["analytics"], ",") != "consume" || strings.Join(perms["studio"], ",") != "produce" {
		t.Errorf("permissions %v", perms)
	}
	if do("DELETE", "/admin/v2/namespaces/public/default/permissions/studio", adminToken, "") != 204 {
		t.Fatal("revoke failed")
	}
	c := authClient(t, b.URL(), pulsar.NewAuthenticationToken(studioToken))
	if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic}); err == nil || !strings.Contains(err.Error(), "AuthorizationError") {
		t.Errorf("revoked role still produces: %v", err)
	}
}
