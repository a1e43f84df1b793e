"""
The EVENT_BUS_PRODUCER side: events to edxbus's HTTP ingest.

send() serializes the event with openedx-events' own Avro serializer, builds
the request and puts it on a small bounded in-memory queue; one daemon thread
POSTs the queued requests in order, retrying transient failures with capped
exponential backoff. So a request thread of the Django service never waits
on the ingest, at most EDXBUS_PRODUCER_BLOCK_SECONDS on a full queue.

What it deliberately does not do: keep events anywhere but in memory. The
ingest's outbox is the durable store; until it answered 202 an event exists
only in this process (see the package README for the exact guarantees).
"""
from __future__ import annotations

import atexit
import collections
import http.client
import json
import logging
import os
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote, urlsplit

from openedx_events.event_bus import EventBusProducer
from openedx_events.event_bus.avro.serializer import serialize_event_data_to_bytes

from . import conf
from .headers import headers_from_metadata

log = logging.getLogger(__name__)

HEADER_TOPIC = "Edxbus-Topic"
HEADER_KEY_FIELD = "Edxbus-Event-Key-Field"
CONTENT_TYPE_AVRO = "application/avro"

# While a flush waits, retries of a failing event pause this long at most,
# so the flush's bounded wait is spent trying rather than sleeping.
_HURRY_PAUSE = 0.1
_STOP = object()


@dataclass(frozen=True)
class ProducerConfig:
    """How the producer reaches the ingest; see the README for each setting."""

    ingest_url: str
    token: Optional[str] = None
    token_file: Optional[str] = None
    timeout: float = 5.0
    queue_size: int = 1000
    block_seconds: float = 0.5
    flush_seconds: float = 5.0
    max_attempts: int = 10
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    topic_prefix: Optional[str] = None

    @classmethod
    def from_settings(cls, settings=None):
        """The configuration from Django settings, else environment variables."""
        url = conf.str_setting("EDXBUS_INGEST_URL", settings=settings)
        if not url:
            raise ValueError("EDXBUS_INGEST_URL is not set: the edxbus producer needs the ingest's base URL, "
                             "e.g. http://edxbus-ingest:8090")
        token, token_file = conf.one_token_source("EDXBUS_INGEST_TOKEN", "EDXBUS_INGEST_TOKEN_FILE",
                                                  settings=settings)
        return cls(
            ingest_url=url,
            token=token,
            token_file=token_file,
            timeout=conf.float_setting("EDXBUS_INGEST_TIMEOUT", 5.0, minimum=0.001, settings=settings),
            queue_size=conf.int_setting("EDXBUS_PRODUCER_QUEUE_SIZE", 1000, minimum=1, settings=settings),
            block_seconds=conf.float_setting("EDXBUS_PRODUCER_BLOCK_SECONDS", 0.5, minimum=0, settings=settings),
            flush_seconds=conf.float_setting("EDXBUS_PRODUCER_FLUSH_SECONDS", 5.0, minimum=0, settings=settings),
            max_attempts=conf.int_setting("EDXBUS_PRODUCER_MAX_ATTEMPTS", 10, minimum=1, settings=settings),
            backoff_seconds=conf.float_setting("EDXBUS_PRODUCER_BACKOFF_SECONDS", 0.5, minimum=0,
                                               settings=settings),
            backoff_max_seconds=conf.float_setting("EDXBUS_PRODUCER_BACKOFF_MAX_SECONDS", 30.0, minimum=0,
                                                   settings=settings),
            topic_prefix=conf.str_setting("EVENT_BUS_TOPIC_PREFIX", settings=settings),
        )

    def full_topic(self, topic):
        """topic with EVENT_BUS_TOPIC_PREFIX applied ("<prefix>-<topic>")."""
        return f"{self.topic_prefix}-{topic}" if self.topic_prefix else topic


def create_producer():
    """The EVENT_BUS_PRODUCER entry point: an EdxbusProducer configured from settings.

    openedx-events calls it once per process (get_producer is cached); a
    configuration error raises, and openedx-events then warns and uses its
    no-op producer.
    """
    return EdxbusProducer(ProducerConfig.from_settings())


@dataclass
class _Outgoing:
    """One prepared ingest request."""

    event_id: str
    event_type: str
    path: str
    body: bytes
    headers: dict


@dataclass
class _Result:
    """The outcome of one attempt."""

    ok: bool = False
    permanent: bool = False
    detail: str = ""
    retry_after: float = 0.0
    answer: Optional[dict] = None


class EdxbusProducer(EventBusProducer):
    """An openedx-events EventBusProducer that POSTs events to edxbus's ingest.

    Thread-safe; one background thread per process sends, in the order send()
    was called. A process that forks starts afresh in the child (its copy of
    the parent's queue is discarded: the parent sends those).
    """

    def __init__(self, config: ProducerConfig):
        url = urlsplit(config.ingest_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"EDXBUS_INGEST_URL must be an http:// or https:// URL, got {config.ingest_url!r}")
        if url.query or url.fragment:
            raise ValueError("EDXBUS_INGEST_URL must not have a query or fragment")
        self.config = config
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port
        self._base_path = url.path.rstrip("/")
        self._reset_state()
        atexit.register(self._flush_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset_state)
        log.info("edxbus producer: sending to %s (queue %d, %d attempts per event)",
                 config.ingest_url, config.queue_size, config.max_attempts)

    def _reset_state(self):
        # Also run in a forked child: the parent's worker thread does not
        # exist there, and the parent's lock may have been held at the fork.
        # The child's copy of the parent's connection is closed (closing a
        # copy of a socket leaves the parent's connection open).
        if getattr(self, "_conn", None) is not None:
            self._close_connection()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)  # notified when _pending drops
        self._pending = 0  # queued or being sent
        self._queue = None
        self._worker = None
        self._current = None
        self._closed = False
        self._conn = None  # the worker's keep-alive connection
        self._hurry = threading.Event()  # a flush is waiting
        self._stopping = threading.Event()  # closed: the worker abandons its retries
        self._counts = collections.Counter()

    # --- the request thread's side ---------------------------------------

    def send(self, *, signal, topic, event_key_field, event_data, event_metadata):
        """Queue the event for the ingest; never raises, at most block_seconds' wait."""
        event_id = str(getattr(event_metadata, "id", "?"))
        event_type = getattr(signal, "event_type", "?")
        try:
            item = self._prepare(signal, topic, event_key_field, event_data, event_metadata)
        except Exception:  # pylint: disable=broad-except
            # As event-bus-kafka: a producing failure must not break the
            # request that emitted the event, so it is logged, not raised.
            log.exception("edxbus: dropped event %s of type %s: it could not be serialized for the ingest",
                          event_id, event_type)
            self._count("dropped")
            return
        self._enqueue(item)

    def _prepare(self, signal, topic, event_key_field, event_data, event_metadata):
        body = serialize_event_data_to_bytes(event_data, signal)
        headers = headers_from_metadata(event_metadata)
        # The ingest as it stands reads the two non-CloudEvents attributes
        # under Kafka's bare names; sending both spellings costs nothing.
        headers["sourcehost"] = headers["ce-sourcehost"]
        headers["sourcelib"] = headers["ce-sourcelib"]
        headers.update({
            "Content-Type": CONTENT_TYPE_AVRO,
            HEADER_TOPIC: self.config.full_topic(topic),
            HEADER_KEY_FIELD: event_key_field,
            "User-Agent": "edxbus-openedx",
        })
        path = f"{self._base_path}/v1/events/{quote(signal.event_type, safe='')}"
        return _Outgoing(event_id=str(event_metadata.id), event_type=signal.event_type, path=path, body=body,
                         headers={name: _header_value(name, value) for name, value in headers.items()})

    def _enqueue(self, item):
        with self._lock:
            closed = self._closed
            if not closed:
                if self._worker is None:
                    self._queue = queue.Queue(maxsize=self.config.queue_size)
                    self._worker = threading.Thread(target=self._run, args=(self._queue,),
                                                    name="edxbus-producer", daemon=True)
                    self._worker.start()
                self._pending += 1
                q = self._queue
        if closed:
            log.error("edxbus: dropped event %s of type %s: the producer is closed (the process is exiting)",
                      item.event_id, item.event_type)
            self._count("dropped")
            return
        try:
            q.put(item, timeout=self.config.block_seconds)
        except queue.Full:
            with self._lock:
                self._pending -= 1
                self._counts["dropped"] += 1
                self._settled.notify_all()
            log.error("edxbus: dropped event %s of type %s: the queue for the ingest (%d events) stayed full "
                      "for %.2fs; is the ingest at %s down or slow?", item.event_id, item.event_type,
                      self.config.queue_size, self.config.block_seconds, self.config.ingest_url)

    def _count(self, outcome):
        with self._lock:
            self._counts[outcome] += 1

    # --- flushing and closing ----------------------------------------------

    def flush(self, timeout=None):
        """Wait until every queued event is settled (accepted, refused or given
        up), at most timeout seconds (default EDXBUS_PRODUCER_FLUSH_SECONDS).
        True when nothing is left; retries are not delayed while it waits."""
        timeout = self.config.flush_seconds if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self._hurry.set()
        try:
            with self._lock:
                while self._pending > 0:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._settled.wait(left)
                return self._pending == 0
        finally:
            with self._lock:
                if not self._closed:
                    self._hurry.clear()

    def close(self, timeout=None):
        """Flush (bounded by timeout), then stop: every event still queued or
        being retried is logged as lost with its id. True when none was."""
        settled = self.flush(timeout)
        with self._lock:
            if self._closed:
                return settled
            self._closed = True
            self._hurry.set()
            self._stopping.set()
            current, q = self._current, self._queue
        queued = []
        while q is not None:
            try:
                queued.append(q.get_nowait())
            except queue.Empty:
                break
        if q is not None:
            q.put_nowait(_STOP)  # the queue was just emptied: there is room
        if current is not None:
            log.error("edxbus: event %s of type %s may be lost: it was still being sent (or retried) when the "
                      "producer closed; a resend of the same id would be answered as a duplicate",
                      current.event_id, current.event_type)
        for item in queued:
            log.error("edxbus: event %s of type %s is lost: it was still queued for the ingest when the "
                      "producer closed", item.event_id, item.event_type)
        lost = len(queued) + (current is not None)
        with self._lock:
            self._pending -= len(queued)
            self._counts["lost"] += lost
        atexit.unregister(self._flush_at_exit)
        return lost == 0

    def _flush_at_exit(self):
        with self._lock:
            pending = self._pending
        if pending:
            log.info("edxbus: flushing %d event(s) to the ingest before exit (up to %.1fs)",
                     pending, self.config.flush_seconds)
        self.close(self.config.flush_seconds)

    def stats(self):
        """Counts of this process's events by outcome, and how many are queued."""
        with self._lock:
            counts = {k: self._counts[k] for k in ("delivered", "refused", "given_up", "dropped", "lost")}
            counts["queued"] = self._pending
            return counts

    # --- the worker thread ---------------------------------------------------

    def _run(self, q):
        while True:
            item = q.get()
            with self._lock:
                stopped = self._closed or item is _STOP
                if not stopped:
                    self._current = item
            if stopped:
                if item is not _STOP:
                    log.error("edxbus: event %s of type %s is lost: it was still queued for the ingest when "
                              "the producer closed", item.event_id, item.event_type)
                    with self._lock:
                        self._pending -= 1
                        self._counts["lost"] += 1
                self._close_connection()
                return
            try:
                outcome = self._deliver(item)
            except Exception:  # pylint: disable=broad-except
                # A bug must cost this event, not the thread that sends them all.
                log.exception("edxbus: gave up on event %s of type %s: unexpected error while sending it",
                              item.event_id, item.event_type)
                outcome = "given_up"
            with self._lock:
                self._current = None
                self._pending -= 1
                if outcome and not self._closed:
                    self._counts[outcome] += 1
                self._settled.notify_all()

    def _deliver(self, item):
        """Send one event until it is accepted, refused or out of attempts.
        Returns the outcome to count (None when close() already logged it)."""
        cfg = self.config
        backoff = cfg.backoff_seconds
        for attempt in range(1, cfg.max_attempts + 1):
            result = self._attempt(item)
            if result.ok:
                answer = result.answer or {}
                log.info("edxbus: event %s of type %s accepted by the ingest (topics %s%s)",
                         item.event_id, item.event_type, answer.get("topics"),
                         ", a duplicate of one it already had" if answer.get("duplicate") else "")
                return "delivered"
            if result.permanent:
                log.error("edxbus: the ingest refused event %s of type %s for good, not retrying: %s",
                          item.event_id, item.event_type, result.detail)
                return "refused"
            if attempt == cfg.max_attempts:
                log.error("edxbus: gave up on event %s of type %s after %d attempts; last failure: %s",
                          item.event_id, item.event_type, attempt, result.detail)
                return "given_up"
            # Full jitter on the exponential step, but never sooner than the
            # server's Retry-After (itself capped, like the backoff).
            pause = min(max(backoff * random.uniform(0.5, 1.0), result.retry_after), cfg.backoff_max_seconds)
            log.warning("edxbus: attempt %d of %d to send event %s of type %s failed (%s); retrying in %.2fs",
                        attempt, cfg.max_attempts, item.event_id, item.event_type, result.detail, pause)
            if self._pause(pause):
                return None  # closing: close() logs it as lost
            backoff = min(backoff * 2, cfg.backoff_max_seconds)
        return "given_up"  # not reached: max_attempts >= 1

    def _pause(self, seconds):
        """Sleep before a retry, shortened while a flush waits. True when closing."""
        end = time.monotonic() + seconds
        while True:
            if self._stopping.is_set():
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            if self._hurry.is_set():
                end = time.monotonic() + min(left, _HURRY_PAUSE)
                self._stopping.wait(min(left, _HURRY_PAUSE))
            else:
                self._hurry.wait(left)

    def _attempt(self, item):
        headers = dict(item.headers)
        try:
            token = self._token()
        except (OSError, ValueError) as e:
            # A token file being rotated may be briefly missing: transient.
            return _Result(detail=f"EDXBUS_INGEST_TOKEN_FILE: {e}")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            status, response_headers, body = self._post(item.path, item.body, headers)
        except (OSError, http.client.HTTPException) as e:
            return _Result(detail=f"{type(e).__name__}: {e}")
        if 200 <= status < 300:
            return _Result(ok=True, answer=_json_object(body))
        detail = f"HTTP {status}: {_error_text(body)}"
        # 401 and 403 are retried like edxbus's own push deliveries: they
        # usually mean a token being rotated, not an event the ingest refuses.
        if status in (401, 403, 408, 429) or status >= 500:
            return _Result(detail=detail, retry_after=_retry_after(response_headers.get("Retry-After")))
        return _Result(permanent=True, detail=detail)

    def _token(self):
        if self.config.token:
            return self.config.token
        if self.config.token_file:
            return conf.read_tokens(self.config.token_file)[0]
        return None

    def _post(self, path, body, headers):
        """One POST on the keep-alive connection. If a reused connection turns
        out closed by the server, the request is sent once more on a new one:
        the ingest answers a resend of an id it stored as a duplicate."""
        while True:
            reused = self._conn is not None
            if not reused:
                cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                self._conn = cls(self._host, self._port, timeout=self.config.timeout)
            try:
                self._conn.request("POST", path, body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._close_connection()
                if reused:
                    continue
                raise
            except BaseException:
                self._close_connection()
                raise
            if response.will_close:
                self._close_connection()
            return response.status, response.headers, data

    def _close_connection(self):
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def _header_value(name, value):
    """A header value as UTF-8 bytes (http.client would encode a str as
    Latin-1 and fail on anything else); a line break is refused here, in
    send(), rather than in the worker."""
    data = str(value).encode("utf-8")
    if b"\r" in data or b"\n" in data:
        raise ValueError(f"header {name} contains a line break")
    return data


def _json_object(body):
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _error_text(body):
    """The ingest's {"error", "field"} answer, or the start of another body."""
    answer = _json_object(body)
    if answer and isinstance(answer.get("error"), str):
        field = answer.get("field")
        return f"{answer['error']} (field {field})" if field else answer["error"]
    text = " ".join(body[:300].decode("utf-8", "replace").split())
    return text or "(empty body)"


def _retry_after(value):
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 0.0  # absent, or an HTTP date: the backoff decides
