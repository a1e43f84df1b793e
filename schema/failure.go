package schema

import "errors"

// PermanentError marks a failure that no retry can fix: bad input, an event
// that violates its schema, a handler that rejects the event for good. The
// consumer sends such events straight to the dead-letter topic; every other
// error is treated as transient (nack, back off, retry).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError (nil stays nil).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or any error it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
