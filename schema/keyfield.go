package schema

import "strings"

// CheckKeyField reports whether path (dotted, like an EVENT_BUS_PRODUCER_CONFIG
// event_key_field) leads to a field of this event that can key a message; the
// error is a *KeyFieldError naming what is wrong. It says nothing about
// personal data: see CheckKeyFieldNotPII.
func (e *Event) CheckKeyField(path string) error {
	_, err := resolveFieldPath(e.Schema, path)
	return err
}

// KeyAt is KeyOf for a key field other than the registry's default, as a
// producer configuration may choose.
func (e *Event) KeyAt(v any, path string) (string, error) {
	return keyAt(e.Type, path, v)
}

// IsPIIKeyField reports whether the dotted path has a segment "pii", the
// record in which openedx-events keeps a user's personal data (username,
// email, full name).
func IsPIIKeyField(path string) bool {
	for _, seg := range strings.Split(path, ".") {
		if seg == "pii" {
			return true
		}
	}
	return false
}

// CheckKeyFieldNotPII returns a *KeyFieldError when path is under pii: a
// message key travels in the clear (broker logs, topic stats, the partition
// it routes to), so personal data does not belong there. Whether a
// deployment may override that is the producer configuration's business.
func CheckKeyFieldNotPII(path string) error {
	if IsPIIKeyField(path) {
		return &KeyFieldError{Path: path, Reason: "is personal data (a field under pii); key on an id or a course key instead"}
	}
	return nil
}
