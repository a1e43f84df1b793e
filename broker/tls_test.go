package broker_test

import (
	"crypto/tls"
	"net/http"
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

// tlsBroker is securedBroker over TLS, with client certificates from ca
// verified when given and TLS authentication on.
func tlsBroker(t *testing.T, ca *testenv.CA, serverHosts ...string) *broker.Broker {
	t.Helper()
	certFile, keyFile := ca.Issue(t, "broker", serverHosts...)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	return securedBroker(t, broker.WithTLS(tc), broker.WithTLSAuthentication())
}

type tlsClient struct {
	trust         string
	certFile, key string
	auth          pulsar.Authentication
}

func (o tlsClient) connect(t *testing.T, b *broker.Broker) pulsar.Client {
	t.Helper()
	lg := logrus.New()
	lg.SetLevel(logrus.ErrorLevel)
	opts := pulsar.ClientOptions{URL: b.URL(), OperationTimeout: 3 * time.Second, ConnectionTimeout: 2 * time.Second,
		TLSTrustCertsFilePath: o.trust, TLSValidateHostname: true, Authentication: o.auth,
		TLSCertificateFile: o.certFile, TLSKeyFilePath: o.key, Logger: plog.NewLoggerWithLogrus(lg)}
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

// Certificates that do not verify stop the connection before anything is
// sent: a broker certificate from an unknown CA or for another host, and a
// client certificate from an unknown CA.
func TestUntrustedCertificatesAreRefused(t *testing.T) {
	ca := testenv.NewCA(t)
	other := testenv.NewCA(t)
	b := tlsBroker(t, ca, "127.0.0.1")
	wrongHost := tlsBroker(t, ca, "pulsar.example.org")
	studioToken := pulsar.NewAuthenticationToken(token(t, jwt.SigningMethodHS256, secret, "studio", time.Hour))
	strangerCert, strangerKey := other.Issue(t, "studio")
	for _, tc := range []struct {
		name   string
		b      *broker.Broker
		client tlsClient
	}{
		{"broker certificate from an unknown CA", b, tlsClient{trust: other.CertFile(), auth: studioToken}},
		{"broker certificate for another host", wrongHost, tlsClient{trust: ca.CertFile(), auth: studioToken}},
		{"client certificate from an unknown CA", b, tlsClient{trust: ca.CertFile(), auth: pulsar.NewAuthenticationTLS(strangerCert, strangerKey)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topic := topicName(t)
			p, err := tc.client.connect(t, tc.b).CreateProducer(pulsar.ProducerOptions{Topic: topic})
			if err == nil {
				p.Close()
				t.Fatal("producer created")
			}
			if n := storedMessages(t, tc.b, topic); n != 0 {
				t.Errorf("%d messages stored", n)
			}
		})
	}
	// Control: the same trust and token reach the broker whose certificate
	// names the host dialled.
	c := tlsClient{trust: ca.CertFile(), auth: studioToken}.connect(t, b)
	produceN(t, c, topicName(t), 1)
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
