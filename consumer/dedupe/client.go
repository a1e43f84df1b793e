package dedupe

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ClientOption configures NewClient.
type ClientOption func(*clientConfig)

type clientConfig struct {
	tlsFiles                  bool
	caFile, certFile, keyFile string
	username, password        string
}

// WithTLSFiles verifies the server against the CA bundle in caFile (PEM;
// empty: the system roots) and, when certFile and keyFile are given (both
// or neither), presents that client certificate for mutual TLS. Hostname
// verification stays on. The files are read once, by NewClient. It needs a
// TLS URL (rediss://, rediss+cluster:// or rediss+sentinel://): NewClient
// refuses it with a plain-text one rather than silently not using it.
func WithTLSFiles(caFile, certFile, keyFile string) ClientOption {
	return func(c *clientConfig) {
		c.tlsFiles, c.caFile, c.certFile, c.keyFile = true, caFile, certFile, keyFile
	}
}

// WithCredentials authenticates as username with password, so secrets need
// not be in the URL (or a process listing). A non-empty argument replaces
// the URL's; an empty one keeps it. An empty username means Redis' default
// user (AUTH <password>, as with requirepass). With Sentinel these are the
// master's credentials, not the sentinels'.
func WithCredentials(username, password string) ClientOption {
	return func(c *clientConfig) {
		if username != "" {
			c.username = username
		}
		if password != "" {
			c.password = password
		}
	}
}

// NewClient builds a go-redis UniversalClient from a URL:
//
//	redis://[user:pass@]host:port[/db][?option=…]            one server
//	rediss://…                                               one server over TLS
//	redis+cluster://[user:pass@]h1:p1,h2:p2[?option=…]       Redis Cluster (seed nodes)
//	redis+sentinel://[user:pass@]h1:p1,h2:p2/master[/db]     Sentinel
//	rediss+cluster://…, rediss+sentinel://…                  the same over TLS
//
// Options are go-redis' URL options (dial_timeout, …). Over TLS, a single
// server is verified against the URL's host; cluster nodes and the sentinels'
// master each against the address they are reached at, which is what Redis
// announces (an IP unless cluster-announce-hostname is set), so their
// certificates must name it. Errors never echo a password.
func NewClient(rawURL string, opts ...ClientOption) (redis.UniversalClient, error) {
	var cfg clientConfig
	for _, o := range opts {
		o(&cfg)
	}
	scheme, rest, _ := strings.Cut(rawURL, "://")
	useTLS := strings.HasPrefix(scheme, "rediss")
	switch scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, urlError("redis URL", rawURL, err)
		}
		if err := cfg.apply(useTLS, &o.TLSConfig, &o.Username, &o.Password); err != nil {
			return nil, err
		}
		return redis.NewClient(o), nil
	case "redis+cluster", "rediss+cluster":
		o, err := clusterOptions(useTLS, rest)
		if err != nil {
			return nil, urlError("redis cluster URL", rawURL, err)
		}
		if err := cfg.apply(useTLS, &o.TLSConfig, &o.Username, &o.Password); err != nil {
			return nil, err
		}
		return redis.NewClusterClient(o), nil
	case "redis+sentinel", "rediss+sentinel":
		o, err := sentinelOptions(rest)
		if err != nil {
			return nil, urlError("redis sentinel URL", rawURL, err)
		}
		if useTLS {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if err := cfg.apply(useTLS, &o.TLSConfig, &o.Username, &o.Password); err != nil {
			return nil, err
		}
		return redis.NewFailoverClient(o), nil
	default:
		return nil, fmt.Errorf("redis URL %q: want redis://, rediss://, redis+cluster://, redis+sentinel:// (or rediss+ for TLS)", redactURL(rawURL))
	}
}

// apply puts the options over what the URL set.
func (c *clientConfig) apply(useTLS bool, tc **tls.Config, username, password *string) error {
	if c.username != "" {
		*username = c.username
	}
	if c.password != "" {
		*password = c.password
	}
	if !c.tlsFiles {
		return nil
	}
	if !useTLS {
		return errors.New("redis TLS files given but the URL is not a TLS one: use rediss://, rediss+cluster:// or rediss+sentinel://")
	}
	if *tc == nil {
		*tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return fmt.Errorf("redis TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("redis TLS CA file %s: no PEM certificate in it", c.caFile)
		}
		(*tc).RootCAs = pool
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return errors.New("redis TLS: a client certificate needs both its certificate and its key file")
	}
	if c.certFile != "" {
		pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err != nil {
			// LoadX509KeyPair's errors name neither file.
			return fmt.Errorf("redis TLS client certificate %s / key %s: %w", c.certFile, c.keyFile, err)
		}
		(*tc).Certificates = []tls.Certificate{pair}
	}
	return nil
}

// clusterOptions reads [user:pass@]h1:p1,h2:p2[?query] into go-redis' cluster
// URL form, which takes the first seed as the host and the others as addr=.
func clusterOptions(useTLS bool, rest string) (*redis.ClusterOptions, error) {
	user, rest, err := cutCredentials(rest)
	if err != nil {
		return nil, err
	}
	hosts, query, _ := strings.Cut(rest, "?")
	seeds := strings.Split(hosts, ",")
	if hosts == "" || strings.Contains(hosts, "/") {
		return nil, errors.New("want redis+cluster://[user:pass@]host:port[,host:port][?option=…]")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, err
	}
	for _, s := range seeds[1:] {
		q.Add("addr", s)
	}
	u := url.URL{Scheme: "redis", User: user, Host: seeds[0], RawQuery: q.Encode()}
	if useTLS {
		u.Scheme = "rediss"
	}
	o, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, err
	}
	if o.TLSConfig != nil {
		// go-redis pins the first seed's name for every node; verify each
		// node against its own address instead.
		o.TLSConfig.ServerName = ""
		o.TLSConfig.MinVersion = tls.VersionTLS12
	}
	return o, nil
}

func sentinelOptions(rest string) (*redis.FailoverOptions, error) {
	user, rest, err := cutCredentials(rest)
	if err != nil {
		return nil, err
	}
	hosts, path, _ := strings.Cut(rest, "/")
	master, db, _ := strings.Cut(path, "/")
	if hosts == "" || master == "" {
		return nil, errors.New("want redis+sentinel://[user:pass@]host:port[,host:port]/master[/db]")
	}
	o := &redis.FailoverOptions{MasterName: master, SentinelAddrs: strings.Split(hosts, ",")}
	if user != nil {
		o.Username = user.Username()
		o.Password, _ = user.Password()
	}
	if db != "" {
		var n int
		if _, err := fmt.Sscanf(db, "%d", &n); err != nil || n < 0 {
			return nil, fmt.Errorf("database %q is not a number", db)
		}
		o.DB = n
	}
	return o, nil
}

// cutCredentials splits "[user[:pass]@]rest" at the last '@' (a password
// may hold one) and percent-decodes the credentials as redis:// URLs do.
func cutCredentials(s string) (*url.Userinfo, string, error) {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return nil, s, nil
	}
	name, pass, hasPass := strings.Cut(s[:at], ":")
	var err1, err2 error
	if name, err1 = url.PathUnescape(name); hasPass {
		pass, err2 = url.PathUnescape(pass)
	}
	if err1 != nil || err2 != nil {
		return nil, "", errors.New("bad percent-encoding in the credentials")
	}
	if !hasPass {
		return url.User(name), s[at+1:], nil
	}
	return url.UserPassword(name, pass), s[at+1:], nil
}

// urlError reports a malformed URL without the URL's password: net/url's
// errors quote the whole URL, so only their reason is kept, and dropped
// too if it happens to contain the password.
func urlError(what, rawURL string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if pw := urlPassword(rawURL); pw != "" {
		decoded, _ := url.PathUnescape(pw)
		if msg := err.Error(); strings.Contains(msg, pw) || decoded != "" && strings.Contains(msg, decoded) {
			err = errors.New("malformed (details withheld: they would show the password)")
		}
	}
	return fmt.Errorf("%s %q: %w", what, redactURL(rawURL), err)
}

// urlPassword is what a URL holds between the scheme and the last '@' after
// the first ':' — the password, or more, never less.
func urlPassword(u string) string {
	i := strings.LastIndex(u, "@")
	if i < 0 {
		return ""
	}
	cred := u[:i]
	if j := strings.Index(cred, "://"); j >= 0 {
		cred = cred[j+3:]
	}
	_, pw, _ := strings.Cut(cred, ":")
	return pw
}

// redactURL hides a password for error messages.
func redactURL(u string) string {
	i := strings.LastIndex(u, "@")
	if i < 0 {
		return u
	}
	// Keep the scheme only when it is a plain token; hide everything else
	// before the last '@', whatever its shape.
	if j := strings.Index(u, "://"); j > 0 && j < i && strings.Trim(u[:j], "abcdefghijklmnopqrstuvwxyz0123456789+.-") == "" {
		return u[:j+3] + "…@" + u[i+1:]
	}
	return "…@" + u[i+1:]
}
