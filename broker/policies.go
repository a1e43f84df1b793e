package broker

// Namespace policies: deduplication, schema validation enforcement, schema
// compatibility strategy and schema auto-update, stored in the metadata store
// so they survive restarts. Unset fields fall back to the broker's options,
// as Pulsar falls back from namespace policy to broker configuration.
// Skipped: topic-level policies, backlog quotas, rate limits, retention
// settings.

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"

	"github.com/edxbus/edxbus/broker/internal/storage"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

// NamespacePolicies are the per-namespace settings the broker honours. A nil
// or empty field means "use the broker default".
type NamespacePolicies struct {
	Deduplication            *bool         `json:"deduplicationEnabled,omitempty"`
	SchemaValidationEnforced *bool         `json:"schema_validation_enforced,omitempty"`
	SchemaCompatibility      string        `json:"schema_compatibility_strategy,omitempty"`
	AllowAutoUpdateSchema    *bool         `json:"is_allow_auto_update_schema,omitempty"`
	Auth                     *AuthPolicies `json:"auth_policies,omitempty"`
}

// AuthPolicies are the namespace's permissions, in Pulsar's JSON shape:
// role → actions ("produce", "consume").
type AuthPolicies struct {
	NamespaceAuth map[string][]string `json:"namespace_auth"`
}

const policiesMetaPrefix = "policies/"

// validStrategy reports whether s is one of Pulsar's compatibility strategy
// names ("" and UNDEFINED mean "inherit").
func validStrategy(s string) bool {
	switch s {
	case "", "UNDEFINED", "ALWAYS_COMPATIBLE", "ALWAYS_INCOMPATIBLE", "BACKWARD", "FORWARD", "FULL",
		"BACKWARD_TRANSITIVE", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE":
		return true
	}
	return false
}

func validNamespace(ns string) bool {
	parts := strings.Split(ns, "/")
	return len(parts) == 2 && parts[0] != "" && parts[1] != ""
}

// NamespacePolicies returns the stored policies of "tenant/namespace".
func (b *Broker) NamespacePolicies(ns string) (NamespacePolicies, error) {
	if !validNamespace(ns) {
		return NamespacePolicies{}, errorf(wire.ServerError_MetadataError, "invalid namespace %q", ns)
	}
	b.pmu.Lock()
	defer b.pmu.Unlock()
	return b.policiesLocked(ns)
}

func (b *Broker) policiesLocked(ns string) (NamespacePolicies, error) {
	if p, ok := b.policies[ns]; ok {
		return p, nil
	}
	var p NamespacePolicies
	raw, err := b.store.GetMeta(policiesMetaPrefix + ns)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return p, errorf(wire.ServerError_PersistenceError, "read policies: %v", err)
	default:
		if err := json.Unmarshal(raw, &p); err != nil {
			return p, errorf(wire.ServerError_MetadataError, "corrupt policies of %s: %v", ns, err)
		}
	}
	b.policies[ns] = p
	return p, nil
}

// SetNamespacePolicies replaces the policies of "tenant/namespace".
func (b *Broker) SetNamespacePolicies(ns string, p NamespacePolicies) error {
	if !validNamespace(ns) {
		return errorf(wire.ServerError_MetadataError, "invalid namespace %q", ns)
	}
	p.SchemaCompatibility = strings.ToUpper(p.SchemaCompatibility)
	if !validStrategy(p.SchemaCompatibility) {
		return errorf(wire.ServerError_MetadataError, "unknown schema compatibility strategy %q", p.SchemaCompatibility)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if err := b.store.PutMeta(policiesMetaPrefix+ns, raw); err != nil {
		return errorf(wire.ServerError_PersistenceError, "store policies: %v", err)
	}
	b.policies[ns] = p
	return nil
}

// updatePolicies changes the policies of "tenant/namespace" under one lock,
// so concurrent admin calls do not lose each other's changes.
func (b *Broker) updatePolicies(ns string, change func(*NamespacePolicies)) error {
	if !validNamespace(ns) {
		return errorf(wire.ServerError_MetadataError, "invalid namespace %q", ns)
	}
	b.pmu.Lock()
	defer b.pmu.Unlock()
	p, err := b.policiesLocked(ns)
	if err != nil {
		return err
	}
	if p.Auth != nil { // copy: the cached value is shared with readers
		cp := AuthPolicies{NamespaceAuth: maps.Clone(p.Auth.NamespaceAuth)}
		p.Auth = &cp
	}
	change(&p)
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := b.store.PutMeta(policiesMetaPrefix+ns, raw); err != nil {
		return errorf(wire.ServerError_PersistenceError, "store policies: %v", err)
	}
	b.policies[ns] = p
	return nil
}

// effectivePolicies resolves a namespace's policies against the broker's
// defaults. A policy that cannot be read falls back to the defaults (and is
// logged): refusing every producer because of a metadata hiccup would be
// worse.
type effectivePolicies struct {
	dedup          bool
	schemaEnforced bool
	compatibility  string
	autoUpdate     bool
}

func (b *Broker) effective(ns string) effectivePolicies {
	e := effectivePolicies{dedup: b.cfg.dedup, schemaEnforced: b.cfg.schemaEnforced, compatibility: b.cfg.compatibility, autoUpdate: true}
	p, err := b.NamespacePolicies(ns)
	if err != nil {
		b.log.Warn().Err(err).Str("namespace", ns).Msg("using broker defaults")
		return e
	}
	if p.Deduplication != nil {
		e.dedup = *p.Deduplication
	}
	if p.SchemaValidationEnforced != nil {
		e.schemaEnforced = *p.SchemaValidationEnforced
	}
	if p.SchemaCompatibility != "" && p.SchemaCompatibility != "UNDEFINED" {
		e.compatibility = p.SchemaCompatibility
	}
	if p.AllowAutoUpdateSchema != nil {
		e.autoUpdate = *p.AllowAutoUpdateSchema
	}
	return e
}
