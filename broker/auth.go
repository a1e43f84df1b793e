package broker

// Authentication and authorization, as Apache Pulsar does them, so that a
// client configured for a secured Pulsar cluster works unchanged here:
//
//   - token: a JWT in CONNECT's auth_data (binary protocol) or an
//     "Authorization: Bearer" header (admin REST), signed with a secret key
//     (HS256/384/512) or a private key whose public half the broker holds
//     (RS*, ES*, PS*), like AuthenticationProviderToken. The "sub" claim is
//     the role; "exp", when present, is enforced, and a connection whose
//     token expires is sent AUTH_CHALLENGE so the client re-reads its token
//     (the client reconnects if the answer is refused).
//   - tls: the common name of a verified client certificate is the role,
//     like AuthenticationProviderTls.
//
// Authorization follows PulsarAuthorizationProvider: super-user roles may do
// anything; other roles need "produce" or "consume" granted on the
// namespace (lookups and schema reads need either). With authentication on,
// anonymous clients are refused. Off by default.

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

// The namespace permissions Pulsar grants (AuthAction).
const (
	ActionProduce = "produce"
	ActionConsume = "consume"
)

type authConfig struct {
	tlsConfig  *tls.Config
	tokenKey   any // []byte (HMAC) or a crypto.PublicKey
	tokenAlgs  []string
	tlsAuth    bool
	superUsers []string
	err        error // an option that could not be applied
}

func (a *authConfig) enabled() bool { return a.tokenKey != nil || a.tlsAuth }

// WithTLS serves the binary protocol (pulsar+ssl://) and the admin REST
// layer (https://) over TLS with cfg. To accept client certificates, for
// WithTLSAuthentication, set cfg.ClientCAs and cfg.ClientAuth.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.auth.tlsConfig = cfg } }

// WithTokenSecretKey turns on token authentication with a shared HMAC secret
// (Pulsar's tokenSecretKey: the raw bytes of the key file).
func WithTokenSecretKey(key []byte) Option {
	return func(c *config) {
		if len(key) == 0 {
			c.auth.err = errors.New("token secret key is empty")
			return
		}
		c.auth.tokenKey, c.auth.tokenAlgs = slices.Clone(key), []string{"HS256", "HS384", "HS512"}
	}
}

// WithTokenPublicKey turns on token authentication with a public key (RSA
// or ECDSA), given as DER (what `pulsar tokens create-key-pair` writes) or
// PEM.
func WithTokenPublicKey(key []byte) Option {
	return func(c *config) {
		pub, err := parsePublicKey(key)
		if err != nil {
			c.auth.err = fmt.Errorf("token public key: %w", err)
			return
		}
		c.auth.tokenKey = pub
		c.auth.tokenAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
	}
}

// WithTLSAuthentication accepts the "tls" authentication method: the role is
// the common name of the client's verified certificate (needs WithTLS with
// ClientCAs set).
func WithTLSAuthentication() Option { return func(c *config) { c.auth.tlsAuth = true } }

// WithSuperUserRoles names the roles allowed everything, including the admin
// REST layer's write side.
func WithSuperUserRoles(roles ...string) Option {
	return func(c *config) { c.auth.superUsers = append(c.auth.superUsers, roles...) }
}

func parsePublicKey(raw []byte) (crypto.PublicKey, error) {
	der := raw
	if block, _ := pem.Decode(raw); block != nil {
		der = block.Bytes
	}
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		return pub, nil
	}
	if pub, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return pub, nil
	}
	return nil, errors.New("not a PEM or DER RSA/ECDSA public key")
}

func (a *authConfig) validate() error {
	if a.err != nil {
		return a.err
	}
	if a.tlsAuth && (a.tlsConfig == nil || a.tlsConfig.ClientCAs == nil) {
		return errors.New("TLS authentication needs TLS with trusted client CAs")
	}
	if len(a.superUsers) > 0 && !a.enabled() {
		return errors.New("super-user roles given but no authentication method is enabled")
	}
	return nil
}

// identity is who a connection or request authenticated as.
type identity struct {
	role    string
	method  string
	expires time.Time // zero: never
}

// authenticate checks CONNECT's (or AUTH_RESPONSE's) credentials. The error
// says why without echoing the credentials.
func (a *authConfig) authenticate(method string, data []byte, cs *tls.ConnectionState) (identity, error) {
	switch method {
	case "token":
		if a.tokenKey == nil {
			return identity{}, errors.New("token authentication is not enabled on this broker")
		}
		return a.validateToken(string(data))
	case "tls":
		if !a.tlsAuth {
			return identity{}, errors.New("TLS authentication is not enabled on this broker")
		}
		return roleFromCertificate(cs)
	case "", "none":
		return identity{}, errors.New("anonymous access is not allowed: authenticate with a token or a client certificate")
	default:
		return identity{}, fmt.Errorf("authentication method %q is not supported (token, tls)", method)
	}
}

func (a *authConfig) validateToken(token string) (identity, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(strings.TrimSpace(token), &claims,
		func(*jwt.Token) (any, error) { return a.tokenKey, nil },
		jwt.WithValidMethods(a.tokenAlgs), jwt.WithLeeway(0))
	if err != nil {
		return identity{}, fmt.Errorf("invalid token: %w", err)
	}
	if claims.Subject == "" {
		return identity{}, errors.New("invalid token: no subject (the role)")
	}
	id := identity{role: claims.Subject, method: "token"}
	if claims.ExpiresAt != nil {
		id.expires = claims.ExpiresAt.Time
	}
	return id, nil
}

func roleFromCertificate(cs *tls.ConnectionState) (identity, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return identity{}, errors.New("no verified client certificate on this connection")
	}
	leaf := cs.VerifiedChains[0][0]
	if leaf.Subject.CommonName == "" {
		return identity{}, errors.New("client certificate has no common name (the role)")
	}
	// No expiry: the certificate was checked at the TLS handshake, and
	// challenging would only present the same certificate again.
	return identity{role: leaf.Subject.CommonName, method: "tls"}, nil
}

// authenticateHTTP reads the admin request's credentials: a bearer token,
// else a verified client certificate.
func (a *authConfig) authenticateHTTP(r *http.Request) (identity, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return identity{}, errors.New("the Authorization header must be \"Bearer <token>\"")
		}
		return a.authenticate("token", []byte(token), r.TLS)
	}
	if a.tlsAuth && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return a.authenticate("tls", nil, r.TLS)
	}
	return a.authenticate("", nil, r.TLS)
}

func (a *authConfig) isSuperUser(role string) bool { return slices.Contains(a.superUsers, role) }

// authorize returns nil when authorization is off, when id is a super-user,
// or when id holds one of actions on namespace ns ("tenant/namespace").
func (b *Broker) authorize(id *identity, ns string, actions ...string) error {
	if !b.cfg.auth.enabled() {
		return nil
	}
	if id == nil {
		return errorf(wire.ServerError_AuthenticationError, "not authenticated")
	}
	if b.cfg.auth.isSuperUser(id.role) {
		return nil
	}
	granted, err := b.Permissions(ns)
	if err != nil {
		return err
	}
	for _, a := range actions {
		if slices.Contains(granted[id.role], a) {
			return nil
		}
	}
	// Logged here too: a client may show only the error code (the Go
	// client does for lookups), so the broker's log is where the reason is.
	b.log.Warn().Str("role", id.role).Str("namespace", ns).Strs("needs", actions).Msg("authorization refused")
	return errorf(wire.ServerError_AuthorizationError, "role %q is not authorized to %s on namespace %s", id.role, strings.Join(actions, " or "), ns)
}

// Permissions returns the roles granted actions on "tenant/namespace".
func (b *Broker) Permissions(ns string) (map[string][]string, error) {
	p, err := b.NamespacePolicies(ns)
	if err != nil {
		return nil, err
	}
	if p.Auth == nil || p.Auth.NamespaceAuth == nil {
		return map[string][]string{}, nil
	}
	return p.Auth.NamespaceAuth, nil
}

// GrantPermission gives role actions on "tenant/namespace", replacing what
// it had, as Pulsar's grant-permission does.
func (b *Broker) GrantPermission(ns, role string, actions []string) error {
	if role == "" {
		return errorf(wire.ServerError_MetadataError, "empty role")
	}
	for _, a := range actions {
		if a != ActionProduce && a != ActionConsume {
			return errorf(wire.ServerError_MetadataError, "unknown action %q (produce, consume)", a)
		}
	}
	return b.updatePolicies(ns, func(p *NamespacePolicies) {
		if p.Auth == nil {
			p.Auth = &AuthPolicies{}
		}
		if p.Auth.NamespaceAuth == nil {
			p.Auth.NamespaceAuth = map[string][]string{}
		}
		p.Auth.NamespaceAuth[role] = slices.Compact(slices.Sorted(slices.Values(actions)))
	})
}

// RevokePermission removes every action of role on "tenant/namespace".
func (b *Broker) RevokePermission(ns, role string) error {
	return b.updatePolicies(ns, func(p *NamespacePolicies) {
		if p.Auth != nil {
			delete(p.Auth.NamespaceAuth, role)
		}
	})
}

// authorizeAdmin decides an authenticated admin request: topic lookups,
// partitioned metadata and schema reads need produce or consume on the
// topic's namespace (what a client needs to use the topic); everything else
// is for super-users.
func (b *Broker) authorizeAdmin(id *identity, r *http.Request) error {
	if b.cfg.auth.isSuperUser(id.role) {
		return nil
	}
	if r.Method == http.MethodGet {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		switch {
		case len(parts) >= 6 && parts[0] == "admin" && parts[1] == "v2" && parts[2] == "schemas":
			return b.authorize(id, parts[3]+"/"+parts[4], ActionProduce, ActionConsume)
		case len(parts) >= 7 && parts[0] == "lookup" && parts[2] == "topic":
			return b.authorize(id, parts[4]+"/"+parts[5], ActionProduce, ActionConsume)
		case len(parts) == 7 && parts[0] == "admin" && parts[2] == "persistent" && parts[6] == "partitions":
			// The partitioned metadata a client fetches with an http:// service URL.
			return b.authorize(id, parts[3]+"/"+parts[4], ActionProduce, ActionConsume)
		}
	}
	return errorf(wire.ServerError_AuthorizationError, "role %q is not a super-user; only super-users may use this admin endpoint", id.role)
}

// withAdminAuth guards the admin REST layer when authentication is on:
// 401 without valid credentials, 403 without permission. /metrics stays
// open, as Pulsar serves it by default, for scrapers.
func (b *Broker) withAdminAuth(next http.Handler) http.Handler {
	if !b.cfg.auth.enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			next.ServeHTTP(w, r)
			return
		}
		id, err := b.cfg.auth.authenticateHTTP(r)
		if err != nil {
			b.log.Warn().Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Str("reason", err.Error()).Msg("admin request not authenticated")
			w.Header().Set("WWW-Authenticate", "Bearer")
			adminError(w, http.StatusUnauthorized, "Authentication required: "+err.Error())
			return
		}
		if err := b.authorizeAdmin(&id, r); err != nil {
			status := http.StatusForbidden
			if ErrorCode(err) != "AuthorizationError" {
				status = adminStatus(err)
			}
			b.log.Warn().Str("role", id.role).Str("path", r.URL.Path).Msg("admin request not authorized")
			adminError(w, status, err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// registerPermissions adds Pulsar's namespace permission endpoints
// (pulsar-admin namespaces permissions / grant-permission /
// revoke-permission).
func (b *Broker) registerPermissions(mux *http.ServeMux) {
	path := "/admin/v2/namespaces/{t}/{ns}/permissions"
	ns := func(r *http.Request) string { return r.PathValue("t") + "/" + r.PathValue("ns") }
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
		perms, err := b.Permissions(ns(r))
		if err != nil {
			adminError(w, adminStatus(err), err.Error())
			return
		}
		adminJSON(w, perms)
	})
	mux.HandleFunc("POST "+path+"/{role}", func(w http.ResponseWriter, r *http.Request) {
		var actions []string
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&actions); err != nil {
			adminError(w, http.StatusBadRequest, `body must be a JSON list of actions, e.g. ["produce","consume"]`)
			return
		}
		err := b.GrantPermission(ns(r), r.PathValue("role"), actions)
		if ErrorCode(err) == "MetadataError" {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		b.noContent(w, err)
	})
	mux.HandleFunc("DELETE "+path+"/{role}", func(w http.ResponseWriter, r *http.Request) {
		b.noContent(w, b.RevokePermission(ns(r), r.PathValue("role")))
	})
}

// httpErrorLog sends net/http's own errors (TLS handshake failures among
// them) to the broker's logger instead of stderr.
func httpErrorLog(l zerolog.Logger) *log.Logger {
	return log.New(warnWriter{l.With().Str("component", "admin-http").Logger()}, "", 0)
}

type warnWriter struct{ l zerolog.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.l.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
