"""
The EVENT_BUS_CONSUMER side: events pushed by `edxbus consume --deliver-to`.

edxbus consumes the Pulsar topic itself (shared subscription, Redis dedupe,
retries, dead letters) and delivers each event as one HTTP request to the
service that owns the data. consume_indefinitely() runs the small threaded
HTTP server that receives those requests and, per request, does what
openedx-events' Kafka and Redis consumers do per message: prepare the Django
state, find the signal by ce-type, deserialize with openedx-events' own
deserializer, rebuild EventsMetadata and send the signal with it; the answer
says whether every receiver succeeded. The push contract is in the package
README.

What it deliberately does not do: retry, dedupe or order events (edxbus does;
receivers still dedupe on ce-id, see the README), or read from Pulsar.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
import signal as signals
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from openedx_events import tooling
from openedx_events.event_bus import EventBusConsumer
from openedx_events.event_bus.avro.deserializer import AvroSignalDeserializer, deserialize_bytes_to_event_data
from openedx_events.exceptions import SenderValidationError
from openedx_events.tooling import OpenEdxPublicSignal

from . import conf
from .headers import HeaderError, metadata_from_headers

log = logging.getLogger(__name__)

HEADER_TOPIC = "Edxbus-Topic"
HEADER_SUBSCRIPTION = "Edxbus-Subscription"
HEADER_DELIVERY = "Edxbus-Delivery"
EVENT_PATHS = ("/", "/events")
HEALTH_PATH = "/healthz"
AVRO_TYPES = ("application/avro", "avro/binary")
JSON_TYPE = "application/json"
# Tokens shorter than this are refused at start-up, as edxbus's ingest does:
# a guessable token is no lock.
MIN_TOKEN_LENGTH = 16
DEFAULT_LISTEN = "127.0.0.1:8093"
DEFAULT_MAX_BODY_BYTES = 4 << 20


class EdxbusConsumer(EventBusConsumer):
    """An openedx-events EventBusConsumer fed by edxbus's push delivery.

    Made by openedx-events' make_single_consumer(topic=..., group_id=...,
    **extra) from `consume_events -t TOPIC -g GROUP [--extra JSON]`; extra
    may set listen (overrides EDXBUS_CONSUMER_LISTEN).
    """

    def __init__(self, topic, group_id, *, listen=None):
        self.topic = topic
        self.group_id = group_id
        self.full_topic = conf.full_topic(topic)
        self.listen = listen or conf.str_setting("EDXBUS_CONSUMER_LISTEN", DEFAULT_LISTEN)
        self._token, self._token_file = conf.one_token_source("EDXBUS_CONSUMER_TOKEN", "EDXBUS_CONSUMER_TOKEN_FILE")
        self.max_body_bytes = conf.int_setting("EDXBUS_CONSUMER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, minimum=1)
        self.ready = threading.Event()  # set once the server listens
        self.server_address = None  # (host, port) actually bound
        self._stop = threading.Event()

    def consume_indefinitely(self):
        """Serve pushed events until SIGTERM, KeyboardInterrupt or stop();
        requests in flight are finished before it returns."""
        if not conf.bool_setting("EDXBUS_CONSUMERS_ENABLED", True):
            log.info("edxbus consumer: EDXBUS_CONSUMERS_ENABLED is false; not consuming %s", self.full_topic)
            return
        host, port = parse_listen(self.listen)
        self._check_auth_config(host)
        tooling.load_all_signals()  # as consume_events does, for callers that skip it
        server_class = _Server6 if ":" in host else _Server
        server = server_class((host, port), _Handler, consumer=self)
        self.server_address = server.server_address[:2]
        restore = self._on_sigterm()
        serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                   name="edxbus-consumer-server", daemon=True)
        serving.start()
        log.info("edxbus consumer: listening on http://%s:%d/ for topic %s (group %s)%s",
                 self.server_address[0], self.server_address[1], self.full_topic, self.group_id,
                 "" if self._auth_enabled() else ", no token (loopback only)")
        self.ready.set()
        try:
            while not self._stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            log.info("edxbus consumer: interrupted")
        finally:
            log.info("edxbus consumer: shutting down; finishing the requests in flight")
            server.drain()
            server.shutdown()
            server.close_idle_connections()
            server.server_close()  # joins the request threads
            serving.join()
            restore()
            log.info("edxbus consumer: stopped")

    def stop(self):
        """Ask consume_indefinitely to return (as SIGTERM does)."""
        self._stop.set()

    def _on_sigterm(self):
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # only the main thread may set signal handlers
        previous = signals.signal(signals.SIGTERM, lambda _signum, _frame: self._stop.set())
        return lambda: signals.signal(signals.SIGTERM, previous)

    # --- authentication -----------------------------------------------------

    def _auth_enabled(self):
        return bool(self._token or self._token_file)

    def _check_auth_config(self, host):
        if not self._auth_enabled():
            if not is_loopback(host):
                raise ValueError(f"EDXBUS_CONSUMER_LISTEN is {self.listen}, not a loopback address: set "
                                 "EDXBUS_CONSUMER_TOKEN or EDXBUS_CONSUMER_TOKEN_FILE so that only edxbus "
                                 "can deliver events")
            log.warning("edxbus consumer: no EDXBUS_CONSUMER_TOKEN(_FILE); accepting deliveries without a token "
                        "on loopback %s", host)
            return
        for token in self._tokens():  # a missing or empty file fails here, at start-up
            if len(token) < MIN_TOKEN_LENGTH:
                raise ValueError(f"the consumer token must be at least {MIN_TOKEN_LENGTH} characters")

    def _tokens(self):
        if self._token:
            return [self._token]
        return conf.read_tokens(self._token_file)  # re-read per request: rotation needs no restart

    def authorized(self, values):
        """Whether the Authorization header values carry a valid bearer token."""
        if not self._auth_enabled():
            return True
        if not values or len(values) != 1:
            return False
        scheme, _, presented = values[0].strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return False
        # Compare digests in constant time, against every token without
        # stopping at a match, so timing tells nothing about any of them.
        digest = hashlib.sha256(presented.strip().encode("utf-8")).digest()
        ok = False
        for token in self._tokens():
            ok |= hmac.compare_digest(digest, hashlib.sha256(token.encode("utf-8")).digest())
        return ok

    # --- one event ------------------------------------------------------------

    def handle_event(self, headers, content_type, body):
        """Process one pushed event: (status, JSON answer). headers is the
        request's email.message.Message (get_all is case-insensitive)."""
        topics = headers.get_all(HEADER_TOPIC) or []
        if len(topics) != 1 or not topics[0].strip():
            return 400, {"error": f"{HEADER_TOPIC} missing or given more than once", "field": HEADER_TOPIC}
        if topics[0].strip() != self.full_topic:
            return 409, {"error": f"this consumer serves topic {self.full_topic}, not {topics[0].strip()}",
                         "field": HEADER_TOPIC}
        try:
            metadata = metadata_from_headers(lambda name: [_utf8(v) for v in headers.get_all(name) or []])
        except HeaderError as e:
            return 400, {"error": str(e), "field": e.header}
        event_id, event_type = str(metadata.id), metadata.event_type
        try:
            signal = OpenEdxPublicSignal.get_signal_by_type(event_type)
        except KeyError:
            return 400, {"error": f"unknown event type {event_type}", "field": "ce-type", "id": event_id}
        if content_type not in AVRO_TYPES and content_type != JSON_TYPE:
            return 415, {"error": f"Content-Type must be application/avro or application/json, not {content_type!r}",
                         "id": event_id}
        context = (f"event {event_id} of type {event_type} (subscription "
                   f"{headers.get(HEADER_SUBSCRIPTION)}, delivery {headers.get(HEADER_DELIVERY)})")

        try:
            tooling.prepare_for_new_work_cycle()
        except Exception as e:  # pylint: disable=broad-except
            log.exception("edxbus consumer: could not prepare for %s", context)
            return 500, {"error": f"could not prepare for the event: {_describe(e)}", "id": event_id}
        try:
            data = _decode(signal, content_type, body)
        except Exception as e:  # pylint: disable=broad-except
            log.error("edxbus consumer: %s is undecodable: %s", context, _describe(e))
            return 400, {"error": f"body is not a {event_type} event as {content_type}: {_describe(e)}",
                         "id": event_id}
        try:
            responses = signal.send_event_with_custom_metadata(metadata, **data)
        except SenderValidationError as e:
            log.error("edxbus consumer: %s does not fit its signal: %s", context, e)
            return 400, {"error": f"event data does not fit the signal: {_describe(e)}", "id": event_id}
        except Exception as e:  # pylint: disable=broad-except
            # Plain send (settings.DEBUG, allow_send_event_failure) lets a
            # receiver's exception through instead of returning it.
            log.exception("edxbus consumer: a receiver raised on %s", context)
            return 500, {"error": f"a receiver raised {_describe(e)}", "id": event_id}

        failures = [(receiver, response) for receiver, response in responses if isinstance(response, Exception)]
        for receiver, error in failures:
            log.error("edxbus consumer: receiver %s raised on %s", _name(receiver), context,
                      exc_info=(type(error), error, error.__traceback__))
        if failures:
            reasons = "; ".join(f"receiver {_name(r)} raised {_describe(e)}" for r, e in failures)
            return 500, {"error": reasons, "id": event_id}
        log.info("edxbus consumer: %s from topic %s handled by %d receiver(s)", context, self.full_topic,
                 len(responses))
        return 200, {"id": event_id, "receivers": len(responses)}


def _utf8(value):
    """A header value as sent: http.server decodes header bytes as Latin-1,
    CloudEvents (and edxbus) write UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _decode(signal, content_type, body):
    if content_type in AVRO_TYPES:
        return deserialize_bytes_to_event_data(body, signal)
    record = json.loads(body.decode("utf-8"))
    if not isinstance(record, dict):
        raise ValueError("the JSON body is not an object")
    # The JSON is the Avro record dict openedx-events' serializer makes:
    # its deserializer turns it into the data classes.
    return AvroSignalDeserializer(signal).from_dict(record)


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def _describe(error, limit=300):
    """An exception for a log line or an answer, with quoted values hidden:
    they are event data, which can be personal, and the answer ends up in
    edxbus's logs and dead letters."""
    text = " ".join(_QUOTED.sub("'…'", str(error)).split())
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def _name(receiver):
    module = getattr(receiver, "__module__", None)
    name = getattr(receiver, "__qualname__", None) or getattr(receiver, "__name__", None) or repr(receiver)
    return f"{module}.{name}" if module else name


def parse_listen(listen):
    """(host, port) from "host:port" or "[v6]:port"."""
    text = listen.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"EDXBUS_CONSUMER_LISTEN must be host:port, got {listen!r}")
    return host, int(port)


def is_loopback(host):
    """Whether host is a loopback address (only literal addresses and "localhost" count)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _close_django_connections():
    """Close this thread's database connections: each HTTP connection has a
    thread of its own, and Django only closes connections at the end of its
    own requests."""
    try:
        from django.conf import settings  # pylint: disable=import-outside-toplevel
        from django.db import connections  # pylint: disable=import-outside-toplevel
        if settings.configured:
            connections.close_all()
    except Exception:  # pylint: disable=broad-except
        log.debug("edxbus consumer: closing database connections failed", exc_info=True)


class _Server(ThreadingHTTPServer):
    """The HTTP server: a thread per connection, joined on close; tracks idle
    keep-alive connections so a shutdown does not wait on them."""

    daemon_threads = False  # server_close() waits for requests in flight
    block_on_close = True

    def __init__(self, address, handler, *, consumer):
        self.consumer = consumer
        self.draining = False
        self._lock = threading.Lock()
        self._handlers = {}  # handler -> idle
        super().__init__(address, handler)

    def server_bind(self):
        # HTTPServer.server_bind looks the host up with getfqdn, which can
        # stall on DNS; the name is only used in error pages.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]

    def drain(self):
        """From now on every request is answered 503 and its connection closed."""
        with self._lock:
            self.draining = True

    def track(self, handler, idle):
        with self._lock:
            self._handlers[handler] = idle
            return self.draining

    def untrack(self, handler):
        with self._lock:
            self._handlers.pop(handler, None)

    def close_idle_connections(self):
        """Shut the connections waiting for a next request; busy ones close
        after their answer."""
        with self._lock:
            idle = [h for h, is_idle in self._handlers.items() if is_idle]
        for handler in idle:
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: edxbus reuses its connections
    server_version = "edxbus-openedx"
    sys_version = ""
    timeout = 60  # seconds an idle keep-alive connection (or a stalled body) is kept
    # A buffered writer (http.server flushes it after each request) sends the
    # status, headers and body in one segment, and TCP_NODELAY sends it at
    # once: with separate small writes, Nagle's algorithm and the client's
    # delayed ACK cost ~40 ms per delivery on a keep-alive connection.
    wbufsize = -1

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.track(self, idle=True)

    def finish(self):
        self.server.untrack(self)
        _close_django_connections()
        super().finish()

    def handle_one_request(self):
        if self.server.track(self, idle=True):  # draining: take no further request
            self.close_connection = True
            return
        super().handle_one_request()

    def parse_request(self):
        self.server.track(self, idle=False)
        return super().parse_request()

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        log.debug("edxbus consumer: %s %s", self.address_string(), format % args)

    def send_error(self, code, message=None, explain=None):
        # Malformed requests (from http.server itself) get JSON too, and
        # their connection is closed.
        self._reply(code, {"error": message or explain or "bad request"}, close=True)

    def do_POST(self):  # pylint: disable=invalid-name
        path = self.path.split("?", 1)[0]
        if path not in EVENT_PATHS:
            return self._reply(404, {"error": f"no such path {path}: events are POSTed to / or /events"}, close=True)
        if self.server.draining:
            return self._reply(503, {"error": "shutting down; retry"}, close=True, headers={"Retry-After": "1"})
        consumer = self.server.consumer
        try:
            authorized = consumer.authorized(self.headers.get_all("Authorization"))
        except (OSError, ValueError) as e:  # the token file went missing
            log.error("edxbus consumer: cannot read the token file: %s", e)
            return self._reply(503, {"error": "the consumer cannot read its token file"}, close=True)
        if not authorized:
            return self._reply(401, {"error": "missing or wrong bearer token"}, close=True,
                               headers={"WWW-Authenticate": 'Bearer realm="edxbus-openedx"'})
        body = self._read_body(consumer.max_body_bytes)
        if body is None:
            return None
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        status, answer = consumer.handle_event(self.headers, content_type, body)
        return self._reply(status, answer)

    def do_GET(self):  # pylint: disable=invalid-name
        if self.path.split("?", 1)[0] == HEALTH_PATH:
            if self.server.draining:
                return self._reply(503, {"status": "shutting down"})
            return self._reply(200, {"status": "ok", "topic": self.server.consumer.full_topic})
        return self._method_not_allowed()

    def _method_not_allowed(self):
        self._reply(405, {"error": "events are POSTed"}, close=True, headers={"Allow": "POST"})

    do_PUT = do_DELETE = do_PATCH = do_HEAD = _method_not_allowed

    def _read_body(self, limit):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._reply(411, {"error": "send a Content-Length, not a chunked body"}, close=True)
            return None
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            self._reply(411, {"error": "Content-Length missing or invalid"}, close=True)
            return None
        if length < 0:
            self._reply(400, {"error": "negative Content-Length"}, close=True)
            return None
        if length > limit:
            self._reply(413, {"error": f"body over {limit} bytes (EDXBUS_CONSUMER_MAX_BODY_BYTES)"}, close=True)
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True  # the client went away mid-body
            return None
        return body

    def _reply(self, status, answer, *, close=False, headers=None):
        if 400 <= status < 500 and self.command == "POST":
            # Refusals are the sender's problem, but an operator needs to see
            # a wrong token or topic; 5xx were logged where they arose.
            log.warning("edxbus consumer: answered %d to a delivery from %s: %s", status, self.address_string(),
                        answer.get("error"))
        body = json.dumps(answer).encode("utf-8")
        close = close or self.server.draining
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()
