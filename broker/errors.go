package broker

import (
	"errors"
	"fmt"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

// Error is a refusal the broker sends to a client as a Pulsar ServerError
// code plus message. Internal methods (used by the admin layer) return it so
// that callers can map codes to HTTP statuses.
type Error struct {
	Code    wire.ServerError
	Message string
	cause   error // what the refusal was made from, for errors.As; may be nil
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Unwrap returns the error the refusal was made from (e.g. a
// *schemareg.InvalidSchemaError behind IncompatibleSchema), or nil.
func (e *Error) Unwrap() error { return e.cause }

// CodeName is the Pulsar name of the error code (e.g. "TopicNotFound").
func (e *Error) CodeName() string { return e.Code.String() }

func errorf(code wire.ServerError, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// toServerError maps any error to the code and message sent on the wire.
func toServerError(err error) (wire.ServerError, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Message
	}
	return wire.ServerError_UnknownError, err.Error()
}

// ErrorCode returns the Pulsar error name carried by err ("" when err is not
// a broker refusal).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code.String()
	}
	return ""
}
