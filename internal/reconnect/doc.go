// Package reconnect is the backoff edxbus's Pulsar producers and consumers
// wait between attempts to reconnect to the broker.
//
// The Go client's own doubles up to 60 s, so after an outage of a minute or
// more an outbox full of events, or a consumer with a backlog, could sit idle
// for up to a minute after the broker is back. Capped doubles the same way
// from 100 ms, with the same up-to-20% jitter that spreads many clients'
// retries, but stops at a ceiling of the caller's choosing.
//
// It does not decide whether to retry: the client retries every error but a
// deleted or terminated topic and a fenced producer.
package reconnect
