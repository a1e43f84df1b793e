package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

// conn is one client connection: a reader goroutine that handles commands in
// arrival order and a writer goroutine that drains an unbounded outgoing
// buffer, so handlers never block on a slow client (MESSAGE volume is bounded
// by the consumers' permits instead).
type conn struct {
	b   *Broker
	nc  net.Conn
	log zerolog.Logger

	wmu     sync.Mutex
	wcond   *sync.Cond
	wbuf    []byte
	wclosed bool
	wdrain  bool // close once wbuf is written (closeAfterFlush)

	// fenced: a write failed on this connection; nothing it sends from now
	// on may be persisted ahead of the client's in-order resend.
	fenced atomic.Bool

	closeOnce sync.Once
	closed    chan struct{}

	lastRecv  atomic.Int64 // unix nanos of the last frame received
	connected atomic.Bool
	clientVer string
	lookupURL string

	// Authentication (auth.go): who the client is, and the pending
	// re-authentication when its credentials expire.
	id            atomic.Pointer[identity]
	authRefresh   bool // the client supports AUTH_CHALLENGE
	authTimer     *time.Timer
	authMu        sync.Mutex
	challengeSent atomic.Bool

	mu        sync.Mutex
	producers map[uint64]*producer
	consumers map[uint64]*consumer
}

func newConn(b *Broker, nc net.Conn) *conn {
	c := &conn{
		b:         b,
		nc:        nc,
		log:       b.log.With().Str("remote", nc.RemoteAddr().String()).Logger(),
		closed:    make(chan struct{}),
		producers: map[uint64]*producer{},
		consumers: map[uint64]*consumer{},
	}
	c.wcond = sync.NewCond(&c.wmu)
	c.lookupURL = b.scheme() + nc.LocalAddr().String()
	return c
}

func (c *conn) serve() {
	defer c.cleanup()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.writeLoop() }()
	go func() { defer wg.Done(); c.keepAliveLoop() }()
	defer wg.Wait()
	defer c.closeAfterFlush() // replies queued before the end still reach the client

	if tc, ok := c.nc.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(context.Background(), c.b.cfg.keepAlive)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.log.Warn().Str("reason", err.Error()).Msg("TLS handshake failed")
			return
		}
	}
	r := bufio.NewReaderSize(c.nc, 64*1024)
	maxFrame := c.b.cfg.maxMessageSize + wire.FramePadding
	_ = c.nc.SetReadDeadline(time.Now().Add(c.b.cfg.keepAlive))
	for {
		f, err := wire.ReadFrame(r, maxFrame)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.log.Debug().Err(err).Msg("closing connection")
			}
			return
		}
		c.lastRecv.Store(time.Now().UnixNano())
		if !c.connected.Load() {
			if f.Cmd.GetType() != wire.BaseCommand_CONNECT || f.Cmd.Connect == nil {
				c.log.Debug().Stringer("type", f.Cmd.GetType()).Msg("first command is not CONNECT")
				return
			}
			if !c.handleConnect(f.Cmd.Connect) {
				return
			}
			_ = c.nc.SetReadDeadline(time.Time{})
			continue
		}
		if !c.handle(f) {
			return
		}
	}
}

// close shuts the socket; serve's deferred cleanup detaches producers and
// consumers.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.closed)
		_ = c.nc.Close()
		c.wmu.Lock()
		c.wclosed = true
		c.wmu.Unlock()
		c.wcond.Broadcast()
	})
}

// closeAfterFlush closes the connection once the frames already queued are
// written (a SEND_ERROR or ERROR that explains the close), waiting at most 5 s
// for a client that does not read.
func (c *conn) closeAfterFlush() {
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.wmu.Lock()
	c.wdrain = true
	c.wmu.Unlock()
	c.wcond.Broadcast()
}

// fence stops persisting this connection's sends and closes it after the
// queued replies, as Pulsar fences a topic after a failed write: the client
// reconnects and resends everything pending, in order.
func (c *conn) fence() {
	c.fenced.Store(true)
	c.closeAfterFlush()
}

func (c *conn) cleanup() {
	c.stopAuth()
	c.mu.Lock()
	prods := make([]*producer, 0, len(c.producers))
	for _, p := range c.producers {
		prods = append(prods, p)
	}
	cons := make([]*consumer, 0, len(c.consumers))
	for _, k := range c.consumers {
		cons = append(cons, k)
	}
	c.producers = map[uint64]*producer{}
	c.consumers = map[uint64]*consumer{}
	c.mu.Unlock()
	for _, p := range prods {
		p.topic.removeProducer(p)
	}
	for _, k := range cons {
		k.sub.removeConsumer(k)
	}
}

// send queues one frame; it never blocks on the network.
func (c *conn) send(cmd *wire.BaseCommand, payload []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return
	}
	buf, err := wire.AppendFrame(c.wbuf, cmd, payload)
	if err != nil {
		// A command we cannot encode is a broker bug; dropping the frame would
		// leave the client waiting, so close the connection instead.
		c.log.Error().Err(err).Msg("encode frame")
		go c.close()
		return
	}
	c.wbuf = buf
	c.wcond.Signal()
}

func (c *conn) writeLoop() {
	var spare []byte
	for {
		c.wmu.Lock()
		for len(c.wbuf) == 0 && !c.wclosed && !c.wdrain {
			c.wcond.Wait()
		}
		if c.wclosed {
			c.wmu.Unlock()
			return
		}
		if len(c.wbuf) == 0 && c.wdrain {
			c.wmu.Unlock()
			c.close()
			return
		}
		out := c.wbuf
		c.wbuf = spare[:0]
		c.wmu.Unlock()
		if _, err := c.nc.Write(out); err != nil {
			c.close()
			return
		}
		if cap(out) <= 1<<20 {
			spare = out
		} else {
			spare = nil
		}
	}
}

// keepAliveLoop pings the client every interval and closes a connection on
// which nothing arrived since the previous unanswered ping, as Pulsar does.
func (c *conn) keepAliveLoop() {
	t := time.NewTicker(c.b.cfg.keepAlive)
	defer t.Stop()
	pinged := false
	var lastSeen int64
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
			if !c.connected.Load() {
				c.close()
				return
			}
			seen := c.lastRecv.Load()
			if pinged && seen == lastSeen {
				c.log.Debug().Msg("keep-alive timeout")
				c.close()
				return
			}
			lastSeen = seen
			pinged = true
			c.send(&wire.BaseCommand{Type: wire.BaseCommand_PING.Enum(), Ping: &wire.CommandPing{}}, nil)
		}
	}
}

// sendError answers a request with CommandError.
func (c *conn) sendError(requestID uint64, err error) {
	code, msg := toServerError(err)
	c.send(&wire.BaseCommand{
		Type:  wire.BaseCommand_ERROR.Enum(),
		Error: &wire.CommandError{RequestId: &requestID, Error: code.Enum(), Message: &msg},
	}, nil)
}

func (c *conn) sendSuccess(requestID uint64) {
	c.send(&wire.BaseCommand{
		Type:    wire.BaseCommand_SUCCESS.Enum(),
		Success: &wire.CommandSuccess{RequestId: &requestID},
	}, nil)
}

func (c *conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *conn) producer(id uint64) *producer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.producers[id]
}

func (c *conn) consumer(id uint64) *consumer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.consumers[id]
}
