package broker

import (
	"sync"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

// Faults injects failures for client tests, in the spirit of franz-go's
// kfake control hooks. Every method is safe to call while the broker runs.
type Faults struct {
	b *Broker

	mu           sync.Mutex
	failSends    int
	failCode     wire.ServerError
	failMsg      string
	dropReceipts int
	paused       bool
}

// FailSends answers the next n SENDs (on any producer) with SEND_ERROR
// carrying serverError, a Pulsar ServerError name such as "PersistenceError"
// or "NotAllowedError" (the client fails that message). An unknown name means
// UnknownError. A failed write (anything but NotAllowedError, ChecksumError,
// TopicTerminatedError, MetadataError) also closes the connection, as Pulsar
// fences the topic, so the client resends what was pending in order.
func (f *Faults) FailSends(n int, serverError string) {
	code, ok := wire.ServerError_value[serverError]
	if !ok {
		code = int32(wire.ServerError_UnknownError)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failSends, f.failCode, f.failMsg = n, wire.ServerError(code), "injected failure"
}

// DropReceipts stores the next n messages but never sends their receipts.
func (f *Faults) DropReceipts(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropReceipts = n
}

// CloseConnections closes every client connection (clients reconnect).
func (f *Faults) CloseConnections() {
	f.b.mu.Lock()
	conns := make([]*conn, 0, len(f.b.conns))
	for c := range f.b.conns {
		conns = append(conns, c)
	}
	f.b.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// PauseDispatch stops sending messages to consumers; everything else keeps
// working.
func (f *Faults) PauseDispatch() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = true
}

// ResumeDispatch undoes PauseDispatch.
func (f *Faults) ResumeDispatch() {
	f.mu.Lock()
	f.paused = false
	f.mu.Unlock()
	f.b.mu.Lock()
	topics := make([]*topic, 0, len(f.b.topics))
	for _, t := range f.b.topics {
		topics = append(topics, t)
	}
	f.b.mu.Unlock()
	for _, t := range topics {
		t.entryAdded()
	}
}

func (f *Faults) takeSendFailure() (wire.ServerError, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSends <= 0 {
		return 0, "", false
	}
	f.failSends--
	return f.failCode, f.failMsg, true
}

func (f *Faults) takeReceiptDrop() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dropReceipts <= 0 {
		return false
	}
	f.dropReceipts--
	return true
}

func (f *Faults) dispatchPaused() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paused
}
