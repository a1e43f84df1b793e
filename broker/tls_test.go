package broker_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"github.com/sirupsen/logrus"

	"github.com/edxbus/edxbus/broker"
	"github.com/edxbus/edxbus/broker/brokertest"
	"github.com/edxbus/edxbus/internal/testenv"
)

// tlsBroker is securedBroker over TLS, with client certificates from ca
// verified when given and TLS authentication on.
func tlsBroker(t *testing.T, ca *testenv.CA, serverHosts ...string) *broker.Broker {
	t.Helper()
	b, _ := loggedTLSBroker(t, ca, tls.VerifyClientCertIfGiven, serverHosts...)
	return b
}

// loggedTLSBroker is tlsBroker with a choice of clientAuth and the broker's
// log kept: a failed handshake is logged there ("TLS handshake failed").
func loggedTLSBroker(t *testing.T, ca *testenv.CA, clientAuth tls.ClientAuthType, serverHosts ...string) (*broker.Broker, *testenv.LogBuffer) {
	t.Helper()
	certFile, keyFile := ca.Issue(t, "broker", serverHosts...)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(), ClientAuth: clientAuth, MinVersion: tls.VersionTLS12}
	log := &testenv.LogBuffer{}
	return securedBroker(t, broker.WithTLS(tc), broker.WithTLSAuthentication(), broker.WithLogger(zerolog.New(log))), log
}

type tlsClient struct {
	trust         string
	certFile, key string
	auth          pulsar.Authentication
	// serverName, when set, is the name the broker's certificate must carry
	// instead of the host dialled (the Go client's options take it only
	// from the URL, so this goes through a tls.Config of its own, which
	// makes the client ignore certFile and a TLS authentication's
	// certificate: use it with tokens).
	serverName string
}

func (o tlsClient) connect(t *testing.T, b *broker.Broker) pulsar.Client {
	t.Helper()
	lg := logrus.New()
	lg.SetLevel(logrus.ErrorLevel)
	return o.newClient(t, b, plog.NewLoggerWithLogrus(lg))
}

// connectLogged is connect with the client's log kept (clientLogger).
func (o tlsClient) connectLogged(t *testing.T, b *broker.Broker) (pulsar.Client, *testenv.LogBuffer) {
	t.Helper()
	lg, buf := clientLogger()
	return o.newClient(t, b, lg), buf
}

func (o tlsClient) newClient(t *testing.T, b *broker.Broker, lg plog.Logger) pulsar.Client {
	t.Helper()
	opts := pulsar.ClientOptions{URL: b.URL(), OperationTimeout: 3 * time.Second, ConnectionTimeout: 2 * time.Second,
		TLSTrustCertsFilePath: o.trust, TLSValidateHostname: true, Authentication: o.auth,
		TLSCertificateFile: o.certFile, TLSKeyFilePath: o.key, Logger: lg}
	if o.serverName != "" {
		pem, err := os.ReadFile(o.trust)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			t.Fatalf("no certificate in %s", o.trust)
		}
		opts.TLSConfig = &tls.Config{RootCAs: roots, ServerName: o.serverName, MinVersion: tls.VersionTLS12}
	}
	c, err := pulsar.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestTLSAndTokenEndToEnd(t *testing.T) {
	ca := testenv.NewCA(t)
	b := tlsBroker(t, ca, "127.0.0.1", "localhost")
	if !strings.HasPrefix(b.URL(), "pulsar+ssl://") || !strings.HasPrefix(b.AdminURL(), "https://") {
		t.Fatalf("URLs %s %s", b.URL(), b.AdminURL())
	}
	topic := topicName(t)
	discovery := tlsClient{trust: ca.CertFile(), auth: pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, secret, "discovery", time.Hour))}.connect(t, b)
	cons, err := discovery.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "discovery", Type: pulsar.Shared})
	if err != nil {
		t.Fatalf("subscribe over TLS: %v", err)
	}
	defer cons.Close()
	studio := tlsClient{trust: ca.CertFile(), auth: pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, secret, "studio", time.Hour))}.connect(t, b)
	produceN(t, studio, topic, 20)
	if got := receiveN(t, cons, 20, 10*time.Second); len(got) != 20 {
		t.Fatalf("received %d of 20", len(got))
	}

	// The admin REST layer is HTTPS with the same CA and bearer tokens.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
	req, _ := http.NewRequest("GET", b.AdminURL()+"/admin/v2/tenants", nil)
	req.Header.Set("Authorization", "Bearer "+token(t, jwt.SigningMethodHS256, secret, "admin", time.Hour))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("admin over HTTPS: %d", resp.StatusCode)
	}
	if _, err := http.Get(b.AdminURL() + "/admin/v2/tenants"); err == nil {
		t.Error("admin HTTPS accepted by a client that does not trust the CA")
	}
}

func TestMutualTLSAuthentication(t *testing.T) {
	ca := testenv.NewCA(t)
	b := tlsBroker(t, ca, "127.0.0.1")
	topic := topicName(t)
	studioCert, studioKey := ca.Issue(t, "studio")
	studio := tlsClient{trust: ca.CertFile(), auth: pulsar.NewAuthenticationTLS(studioCert, studioKey)}.connect(t, b)
	produceN(t, studio, topic, 5)
	discoveryCert, discoveryKey := ca.Issue(t, "discovery")
	discovery := tlsClient{trust: ca.CertFile(), auth: pulsar.NewAuthenticationTLS(discoveryCert, discoveryKey)}.connect(t, b)
	cons, err := discovery.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "d", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if got := receiveN(t, cons, 5, 10*time.Second); len(got) != 5 {
		t.Fatalf("received %d of 5", len(got))
	}
	// The certificate's CN is the role: studio may not consume.
	if _, err := studio.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s"}); err == nil || !strings.Contains(err.Error(), "AuthorizationError") {
		t.Errorf("studio subscribed: %v", err)
	}

	// The admin REST layer takes the same certificates as identities.
	adminCert, adminKey := ca.Issue(t, "admin")
	for _, tc := range []struct {
		cert, key string
		want      int
	}{{adminCert, adminKey, http.StatusOK}, {studioCert, studioKey, http.StatusForbidden}, {"", "", http.StatusUnauthorized}} {
		tlsConf := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
		if tc.cert != "" {
			cert, err := tls.LoadX509KeyPair(tc.cert, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			tlsConf.Certificates = []tls.Certificate{cert}
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
		resp, err := hc.Get(b.AdminURL() + "/admin/v2/tenants")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("admin with certificate %q: %d, want %d", tc.cert, resp.StatusCode, tc.want)
		}
	}
}

// Certificates that do not verify stop the connection at the TLS handshake,
// before CONNECT: a broker certificate from an unknown CA or for another
// host, and a client certificate from an unknown CA on a broker that
// requires one. The untrusted clients hold roles that may produce (studio)
// and consume (discovery), so the certificate is all that stops them; a
// trusted client stores messages first, so that the untrusted consumer
// getting none of them means something.
func TestUntrustedCertificatesAreRefused(t *testing.T) {
	ca := testenv.NewCA(t)
	other := testenv.NewCA(t)
	// A client that trusts trust and authenticates with a token.
	withToken := func(trust, serverName string) func(*testing.T, string) tlsClient {
		return func(t *testing.T, role string) tlsClient {
			return tlsClient{trust: trust, serverName: serverName,
				auth: pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, secret, role, time.Hour))}
		}
	}
	// A client that trusts ca and authenticates with a certificate from issuer.
	withCertFrom := func(issuer *testenv.CA) func(*testing.T, string) tlsClient {
		return func(t *testing.T, role string) tlsClient {
			cert, key := issuer.Issue(t, role)
			return tlsClient{trust: ca.CertFile(), auth: pulsar.NewAuthenticationTLS(cert, key)}
		}
	}
	for _, tc := range []struct {
		name               string
		brokerHost         string
		clientAuth         tls.ClientAuthType
		trusted, untrusted func(t *testing.T, role string) tlsClient
		// The Go client returns only "connection error" to the caller and
		// logs the TLS error (clientLog); brokerLog is the reason the
		// broker logs for the failed handshake.
		clientLog, brokerLog string
	}{
		{"broker certificate from an unknown CA", "127.0.0.1", tls.VerifyClientCertIfGiven,
			withToken(ca.CertFile(), ""), withToken(other.CertFile(), ""),
			"x509: certificate signed by unknown authority", "remote error: tls: bad certificate"},
		{"broker certificate for another host", "pulsar.example.org", tls.VerifyClientCertIfGiven,
			withToken(ca.CertFile(), "pulsar.example.org"), withToken(ca.CertFile(), ""),
			"x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs", "remote error: tls: bad certificate"},
		{"client certificate from an unknown CA", "127.0.0.1", tls.RequireAndVerifyClientCert,
			withCertFrom(ca), withCertFrom(other),
			"remote error: tls: unknown certificate authority", "x509: certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, brokerLog := loggedTLSBroker(t, ca, tc.clientAuth, tc.brokerHost)
			topic := topicName(t)
			produceN(t, tc.trusted(t, "studio").connect(t, b), topic, 3)
			stored := storedMessages(t, b, topic)

			refused := func(op string, err error, log *testenv.LogBuffer) {
				t.Helper()
				if err == nil {
					t.Errorf("%s succeeded", op)
				} else if !strings.Contains(err.Error(), "connection error") {
					t.Errorf("%s: error %q, want the client's \"connection error\"", op, err)
				}
				if got := log.String(); !strings.Contains(got, tc.clientLog) {
					t.Errorf("%s: client log does not say %q:\n%s", op, tc.clientLog, got)
				}
			}
			producer, log := tc.untrusted(t, "studio").connectLogged(t, b)
			p, err := producer.CreateProducer(pulsar.ProducerOptions{Topic: topic})
			if err == nil {
				_, _ = p.Send(ctxT(t), &pulsar.ProducerMessage{Payload: []byte("untrusted")})
				p.Close()
			}
			refused("create producer", err, log)
			consumer, log := tc.untrusted(t, "discovery").connectLogged(t, b)
			cons, err := consumer.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "untrusted", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
			if err == nil {
				cons.Close()
			}
			refused("subscribe", err, log)

			if got := brokerLog.String(); !strings.Contains(got, "TLS handshake failed") || !strings.Contains(got, tc.brokerLog) {
				t.Errorf("broker log does not say %q:\n%s", tc.brokerLog, got)
			}
			if n := storedMessages(t, b, topic); n != stored {
				t.Errorf("topic holds %d messages, want the %d the trusted client sent", n, stored)
			}
			st, err := b.Stats(topic)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Subscriptions) != 0 || st.MsgOutCounter != 0 {
				t.Errorf("subscriptions %v, %d messages delivered; want none", st.Subscriptions, st.MsgOutCounter)
			}
		})
	}
}

// BenchmarkProduceSecured: what TLS and token authentication cost on the
// produce path (in memory, 1 KiB, batched): the handshake is paid once per
// connection, so the difference is TLS record encryption.
func BenchmarkProduceSecured(b *testing.B) {
	ca := testenv.NewCA(b)
	certFile, keyFile := ca.Issue(b, "broker", "127.0.0.1")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		b.Fatal(err)
	}
	lg := logrus.New()
	lg.SetLevel(logrus.ErrorLevel)
	for _, tc := range []struct {
		name string
		opts []broker.Option
		auth bool
	}{
		{"plain", nil, false},
		{"token", []broker.Option{broker.WithTokenSecretKey(secret), broker.WithSuperUserRoles("admin")}, true},
		{"tls+token", []broker.Option{broker.WithTokenSecretKey(secret), broker.WithSuperUserRoles("admin"),
			broker.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})}, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			brk := brokertest.Start(b, tc.opts...)
			opts := pulsar.ClientOptions{URL: brk.URL(), TLSTrustCertsFilePath: ca.CertFile(), TLSValidateHostname: true, Logger: plog.NewLoggerWithLogrus(lg)}
			if tc.auth {
				opts.Authentication = pulsar.NewAuthenticationToken(token(b, jwt.SigningMethodHS256, secret, "admin", time.Hour))
			}
			c, err := pulsar.NewClient(opts)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			benchSendAsync(b, c, 1024)
		})
	}
}
