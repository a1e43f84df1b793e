package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/edxbus/edxbus/consumer/dedupe"
)

// RedisConfig is the dedupe Redis: a URL plus TLS and credentials, so that
// neither a password nor a certificate has to sit in the URL.
type RedisConfig struct {
	URL          string
	TLSCAFile    string
	TLSCertFile  string
	TLSKeyFile   string
	Username     string
	Password     string
	PasswordFile string
}

// RegisterFlags binds --redis-url and the --redis-* security flags.
func (c *RedisConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.URL, "redis-url", c.URL, "dedupe Redis: redis://, rediss://, redis+cluster:// or redis+sentinel:// (rediss+… for TLS)")
	fs.StringVar(&c.TLSCAFile, "redis-tls-ca-file", c.TLSCAFile, "PEM CA bundle that signs Redis' certificate (rediss:// URLs); empty: the system roots")
	fs.StringVar(&c.TLSCertFile, "redis-tls-cert-file", c.TLSCertFile, "PEM client certificate for Redis mutual TLS")
	fs.StringVar(&c.TLSKeyFile, "redis-tls-key-file", c.TLSKeyFile, "PEM private key of --redis-tls-cert-file")
	fs.StringVar(&c.Username, "redis-username", c.Username, "Redis ACL user (replaces the URL's)")
	fs.StringVar(&c.Password, "redis-password", c.Password, "Redis password (replaces the URL's); prefer EDXBUS_REDIS_PASSWORD or --redis-password-file, as command lines are visible to other users")
	fs.StringVar(&c.PasswordFile, "redis-password-file", c.PasswordFile, "file holding the Redis password")
}

// clientOptions turns the security settings into dedupe.NewClient options.
func (c RedisConfig) clientOptions() ([]dedupe.ClientOption, error) {
	if c.Password != "" && c.PasswordFile != "" {
		return nil, errors.New("--redis-password and --redis-password-file: give one, not both")
	}
	var opts []dedupe.ClientOption
	if c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" {
		opts = append(opts, dedupe.WithTLSFiles(c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile))
	}
	password := c.Password
	if c.PasswordFile != "" {
		var err error
		if password, err = ReadSecretFile("--redis-password-file", c.PasswordFile); err != nil {
			return nil, err
		}
	}
	if c.Username != "" || password != "" {
		opts = append(opts, dedupe.WithCredentials(c.Username, password))
	}
	return opts, nil
}

// Embedded reports whether Open would start an in-process Redis.
func (c RedisConfig) Embedded() bool { return c.URL == "" }

// Open connects to the configured Redis or, when no URL is set and embedded
// is allowed, starts an in-process one (miniredis): fine for one process,
// lost on exit (the store's inbox still stops a replayed event from applying
// twice). Wrong credentials fail here with Redis' reason; an unreachable
// Redis does not, as the consumer waits for it.
func (c RedisConfig) Open(embedded bool) (redis.UniversalClient, func(), error) {
	if c.URL == "" {
		if !embedded {
			return nil, nil, errors.New("--redis-url is required")
		}
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, fmt.Errorf("embedded redis: %w", err)
		}
		rc := redis.NewClient(&redis.Options{Addr: m.Addr()})
		stopClock := runMiniredisClock(m, 2*time.Second)
		return rc, func() { stopClock(); _ = rc.Close(); m.Close() }, nil
	}
	opts, err := c.clientOptions()
	if err != nil {
		return nil, nil, err
	}
	rc, err := dedupe.NewClient(c.URL, opts...)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil && isRedisAuthError(err) {
		_ = rc.Close()
		return nil, nil, fmt.Errorf("redis refused the credentials: %w", err)
	}
	return rc, func() { _ = rc.Close() }, nil
}

// runMiniredisClock moves the in-process Redis' TTLs on with the wall clock:
// miniredis expires keys only when told time has passed, so without it a
// lease would never lapse and done markers would pile up past their TTL.
func runMiniredisClock(m *miniredis.Miniredis, every time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return func() { close(done); <-finished }
}

func isRedisAuthError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") || strings.Contains(msg, "NOPERM")
}

// RouteRedisLogs sends go-redis' own log lines (a pool that cannot dial,
// say) into log as warnings with component=redis-client, instead of its
// default plain lines on stderr. While Redis is down it would print one per
// failed call, so at most 5 lines pass per 10 s; the consumer's own
// "dedupe Redis unavailable" line says when it began and ended. go-redis
// keeps one logger per process, so the last call wins.
func RouteRedisLogs(log zerolog.Logger) {
	redis.SetLogger(redisLogger{log.With().Str("component", "redis-client").Logger().
		Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})})
}

type redisLogger struct{ l zerolog.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...interface{}) {
	r.l.Warn().Msg(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
}
