package schema

// CheckKeyField reports whether path (dotted, like an EVENT_BUS_PRODUCER_CONFIG
// event_key_field) leads to a field of this event that can key a message; the
// error is a *KeyFieldError naming what is wrong.
func (e *Event) CheckKeyField(path string) error {
	_, err := resolveFieldPath(e.Schema, path)
	return err
}

// KeyAt is KeyOf for a key field other than the registry's default, as a
// producer configuration may choose.
func (e *Event) KeyAt(v any, path string) (string, error) {
	return keyAt(e.Type, path, v)
}
