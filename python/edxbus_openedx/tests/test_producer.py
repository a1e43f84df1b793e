"""The producer against a real local HTTP server standing in for the ingest."""
import os
import socket
import tempfile
import textwrap
import threading
import time
import unittest
import uuid

import attr
from django.conf import LazySettings
from django.test import override_settings
from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED
from openedx_events.event_bus.avro.serializer import serialize_event_data_to_bytes

import edxbus_openedx
from edxbus_openedx.producer import EdxbusProducer, ProducerConfig

from .support import CATALOG_TYPE, TOKEN, RecordingServer, catalog_event, python_env, run_python, unavailable

TOPIC = "course-catalog-info-changed"
KEY_FIELD = "catalog_info.course_key"
LOGGER = "edxbus_openedx.producer"


def fast_config(url, **overrides):
    """A configuration with short waits, for tests."""
    values = dict(ingest_url=url, timeout=2.0, queue_size=100, block_seconds=0.5, flush_seconds=5.0,
                  max_attempts=4, backoff_seconds=0.01, backoff_max_seconds=0.05)
    values.update(overrides)
    return ProducerConfig(**values)


def send(producer, n=1, **kwargs):
    data, metadata = catalog_event(n, **kwargs)
    producer.send(signal=COURSE_CATALOG_INFO_CHANGED, topic=TOPIC, event_key_field=KEY_FIELD,
                  event_data=data, event_metadata=metadata)
    return data, metadata


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProducerTest(unittest.TestCase):
    def server(self, respond=None, **kwargs):
        server = RecordingServer(respond, **kwargs)
        self.addCleanup(server.close)
        return server

    def producer(self, config):
        producer = EdxbusProducer(config)
        self.addCleanup(producer.close, 0)
        return producer

    def test_request_headers_and_body(self):
        server = self.server()
        producer = self.producer(fast_config(server.url + "/base/", token=TOKEN, topic_prefix="dev"))
        data, metadata = send(producer)
        self.assertTrue(producer.flush(10))
        (req,) = server.wait_for(1)
        self.assertEqual(req.path, f"/base/v1/events/{CATALOG_TYPE}")
        self.assertEqual(req.body, serialize_event_data_to_bytes(data, COURSE_CATALOG_INFO_CHANGED))
        expected = {
            "Content-Type": "application/avro",
            "ce-id": str(metadata.id),
            "ce-type": CATALOG_TYPE,
            "ce-source": "openedx/cms/web",
            "ce-specversion": "1.0",
            "ce-time": "2026-02-02T18:24:31.123456+00:00",
            "ce-minorversion": "0",
            "ce-sourcehost": "studio.example",
            "ce-sourcelib": "11.2.0",
            "sourcehost": "studio.example",
            "sourcelib": "11.2.0",
            "Edxbus-Topic": "dev-course-catalog-info-changed",
            "Edxbus-Event-Key-Field": KEY_FIELD,
            "Authorization": f"Bearer {TOKEN}",
        }
        for name, value in expected.items():
            self.assertEqual(req.header(name), value, name)
        self.assertFalse([h for h in req.headers.keys() if h.lower().startswith("ce_")],
                         "underscored headers are dropped by nginx")
        self.assertEqual(producer.stats()["delivered"], 1)

    def test_non_ascii_metadata_is_sent_as_utf8_and_line_breaks_are_refused(self):
        server = self.server()
        producer = self.producer(fast_config(server.url))
        data, metadata = catalog_event()
        metadata = attr.evolve(metadata, source="openedx/cms/wéb", sourcehost="stüdio.例え")
        producer.send(signal=COURSE_CATALOG_INFO_CHANGED, topic=TOPIC, event_key_field=KEY_FIELD,
                      event_data=data, event_metadata=metadata)
        bad = attr.evolve(catalog_event()[1], sourcehost="evil\r\nX-Injected: 1")
        with self.assertLogs(LOGGER, level="ERROR") as logs:
            producer.send(signal=COURSE_CATALOG_INFO_CHANGED, topic=TOPIC, event_key_field=KEY_FIELD,
                          event_data=data, event_metadata=bad)
        self.assertIn(f"dropped event {bad.id}", logs.records[0].getMessage())
        _, after = send(producer, 2)  # the worker is alive
        self.assertTrue(producer.flush(10))
        first, second = server.wait_for(2)
        as_sent = lambda value: value.encode("latin-1").decode("utf-8")  # noqa: E731
        self.assertEqual(as_sent(first.header("ce-source")), "openedx/cms/wéb")
        self.assertEqual(as_sent(first.header("ce-sourcehost")), "stüdio.例え")
        self.assertEqual(second.header("ce-id"), str(after.id))

    def test_no_prefix_no_token(self):
        server = self.server()
        producer = self.producer(fast_config(server.url))
        send(producer)
        producer.flush(10)
        (req,) = server.wait_for(1)
        self.assertEqual(req.header("Edxbus-Topic"), TOPIC)
        self.assertIsNone(req.header("Authorization"))

    def test_retries_503_then_succeeds(self):
        def respond(rec):
            if len(server.requests) <= 2:
                return 503, {"error": "outbox full: the broker is not keeping up; retry later"}, {"Retry-After": "0"}
            return None
        server = self.server(respond)
        producer = self.producer(fast_config(server.url))
        with self.assertLogs(LOGGER, level="INFO") as logs:
            _, metadata = send(producer)
            self.assertTrue(producer.flush(10))
        reqs = server.wait_for(3)
        self.assertEqual(len(reqs), 3)
        self.assertEqual({r.header("ce-id") for r in reqs}, {str(metadata.id)}, "a retry resends the same id")
        self.assertEqual(len({r.body for r in reqs}), 1)
        warnings = [r for r in logs.records if r.levelname == "WARNING"]
        self.assertEqual(len(warnings), 2)
        self.assertIn(str(metadata.id), warnings[0].getMessage())
        self.assertIn("HTTP 503: outbox full", warnings[0].getMessage())
        self.assertIn("accepted by the ingest", logs.records[-1].getMessage())
        self.assertEqual(producer.stats()["delivered"], 1)

    def test_408_429_and_500_are_retried(self):
        statuses = [408, 429, 500]

        def respond(rec):
            return (statuses.pop(0), {"error": "later"}, {}) if statuses else None
        server = self.server(respond)
        producer = self.producer(fast_config(server.url))
        with self.assertLogs(LOGGER, level="WARNING"):
            send(producer)
            self.assertTrue(producer.flush(10))
        self.assertEqual(len(server.wait_for(4)), 4)
        self.assertEqual(producer.stats()["delivered"], 1)

    def test_400_is_refused_for_good(self):
        server = self.server(lambda rec: (400, {"error": "catalog_info.name: missing", "field": "catalog_info.name"}, {}))
        producer = self.producer(fast_config(server.url))
        with self.assertLogs(LOGGER, level="ERROR") as logs:
            _, metadata = send(producer)
            self.assertTrue(producer.flush(10))
        self.assertEqual(len(server.requests), 1, "a 4xx is not retried")
        (record,) = logs.records
        message = record.getMessage()
        self.assertEqual(record.levelname, "ERROR")
        self.assertIn(str(metadata.id), message)
        self.assertIn(CATALOG_TYPE, message)
        self.assertIn("HTTP 400: catalog_info.name: missing (field catalog_info.name)", message)
        self.assertEqual(producer.stats()["refused"], 1)

    def test_401_is_retried_then_given_up(self):
        # A token being rotated: retried within the attempts budget, then given up on with the id.
        statuses = [401, 403]

        def respond(rec):
            return (statuses.pop(0), {"error": "unauthorized"}, {}) if statuses else None
        server = self.server(respond)
        producer = self.producer(fast_config(server.url, token="rotating-token-0123456789"))
        with self.assertLogs(LOGGER, level="WARNING") as logs:
            send(producer)
            self.assertTrue(producer.flush(10))
        self.assertEqual(len(server.wait_for(3)), 3)
        self.assertEqual(producer.stats()["delivered"], 1)
        self.assertNotIn("rotating-token", "\n".join(logs.output), "the token is never logged")

        always = self.server(lambda rec: (401, {"error": "unauthorized"}, {}))
        producer = self.producer(fast_config(always.url, token="wrong-token-0123456789", max_attempts=2))
        with self.assertLogs(LOGGER, level="WARNING") as logs:
            _, metadata = send(producer)
            producer.flush(10)
        self.assertEqual(len(always.wait_for(2)), 2)
        self.assertTrue(any(str(metadata.id) in r.getMessage() and r.levelname == "ERROR" for r in logs.records))
        self.assertIn("HTTP 401: unauthorized", "\n".join(logs.output))
        self.assertNotIn("wrong-token", "\n".join(logs.output), "the token is never logged")

    def test_gives_up_after_max_attempts_on_connection_errors(self):
        producer = self.producer(fast_config(f"http://127.0.0.1:{free_port()}", max_attempts=3))
        with self.assertLogs(LOGGER, level="WARNING") as logs:
            _, metadata = send(producer)
            self.assertTrue(producer.flush(10))
        errors = [r for r in logs.records if r.levelname == "ERROR"]
        self.assertEqual(len(errors), 1)
        self.assertIn(f"gave up on event {metadata.id}", errors[0].getMessage())
        self.assertIn("after 3 attempts", errors[0].getMessage())
        self.assertEqual(len([r for r in logs.records if r.levelname == "WARNING"]), 2)
        self.assertEqual(producer.stats()["given_up"], 1)

    def test_timeout_is_retried(self):
        release = threading.Event()
        calls = []

        def respond(rec):
            calls.append(1)
            if len(calls) == 1:
                release.wait(5)  # longer than the client's timeout
            return None
        server = self.server(respond)
        self.addCleanup(release.set)
        producer = self.producer(fast_config(server.url, timeout=0.3))
        with self.assertLogs(LOGGER, level="WARNING") as logs:
            send(producer)
            self.assertTrue(producer.flush(10))
        self.assertIn("timed out", logs.records[0].getMessage())
        self.assertEqual(producer.stats()["delivered"], 1)

    def test_token_file_is_read_on_each_attempt(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "token")
            with open(path, "w", encoding="utf-8") as f:
                f.write("# rotated by ops\nfirst-token-0123456789\n")

            def respond(rec):
                if len(server.requests) == 1:
                    with open(path, "w", encoding="utf-8") as f:
                        f.write("second-token-0123456789\n")
                    return 503, {"error": "later"}, {}
                return None
            server = self.server(respond)
            producer = self.producer(fast_config(server.url, token_file=path))
            with self.assertLogs(LOGGER, level="WARNING"):
                send(producer)
                self.assertTrue(producer.flush(10))
            first, second = server.wait_for(2)
        self.assertEqual(first.header("Authorization"), "Bearer first-token-0123456789")
        self.assertEqual(second.header("Authorization"), "Bearer second-token-0123456789")

    def test_order_is_kept(self):
        server = self.server()
        producer = self.producer(fast_config(server.url))
        ids = [str(send(producer, n)[1].id) for n in range(20)]
        self.assertTrue(producer.flush(10))
        self.assertEqual([r.header("ce-id") for r in server.wait_for(20)], ids)

    def test_queue_full_drops_with_an_error_naming_the_event(self):
        release = threading.Event()
        self.addCleanup(release.set)
        server = self.server(lambda rec: (release.wait(20), None)[1])
        producer = self.producer(fast_config(server.url, queue_size=1, block_seconds=0.05))
        send(producer, 1)
        server.wait_for(1)  # the worker holds event 1; the queue is empty
        send(producer, 2)  # fills the queue
        with self.assertLogs(LOGGER, level="ERROR") as logs:
            _, dropped = send(producer, 3)
        (record,) = logs.records
        self.assertIn(f"dropped event {dropped.id} of type {CATALOG_TYPE}", record.getMessage())
        self.assertIn("stayed full", record.getMessage())
        release.set()
        self.assertTrue(producer.flush(10))
        self.assertEqual(producer.stats()["delivered"], 2)
        self.assertEqual(producer.stats()["dropped"], 1)
        self.assertNotIn(str(dropped.id), [r.header("ce-id") for r in server.requests])

    def test_unserializable_event_is_logged_not_raised(self):
        server = self.server()
        producer = self.producer(fast_config(server.url))
        _, metadata = catalog_event()
        with self.assertLogs(LOGGER, level="ERROR") as logs:
            producer.send(signal=COURSE_CATALOG_INFO_CHANGED, topic=TOPIC, event_key_field=KEY_FIELD,
                          event_data={"catalog_info": object()}, event_metadata=metadata)
        self.assertIn(f"dropped event {metadata.id}", logs.records[0].getMessage())
        self.assertEqual(producer.stats()["dropped"], 1)

    def test_server_closing_keep_alive_connections_costs_no_attempt(self):
        server = self.server(close_after_response=True)
        producer = self.producer(fast_config(server.url, max_attempts=1))
        for n in range(3):
            send(producer, n)
            self.assertTrue(producer.flush(10))
            time.sleep(0.05)  # let the server close the connection
        self.assertEqual(len(server.wait_for(3)), 3)
        self.assertEqual(producer.stats()["delivered"], 3)

    def test_closed_producer_drops_with_an_error(self):
        server = self.server()
        producer = self.producer(fast_config(server.url))
        producer.close(1)
        with self.assertLogs(LOGGER, level="ERROR") as logs:
            _, metadata = send(producer)
        self.assertIn(f"dropped event {metadata.id}", logs.records[0].getMessage())

    def test_forked_child_sends_on_its_own(self):
        if not hasattr(os, "fork"):
            unavailable(self, "os.fork")
        server = self.server()
        producer = self.producer(fast_config(server.url))
        send(producer, 1)
        self.assertTrue(producer.flush(10))
        pid = os.fork()
        if pid == 0:  # the child: a worker thread of its own must start
            code = 1
            try:
                send(producer, 2)
                code = 0 if producer.flush(10) and producer.stats()["delivered"] == 1 else 3
            finally:
                os._exit(code)  # pylint: disable=protected-access
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertEqual(len(server.wait_for(2)), 2)


class AtExitTest(unittest.TestCase):
    """The atexit flush, in a child process that really exits."""

    SCRIPT = textwrap.dedent("""
        import logging, sys, uuid
        from django.conf import settings
        settings.configure()
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
        from datetime import datetime, timezone
        from opaque_keys.edx.keys import CourseKey
        from openedx_events.content_authoring.data import CourseCatalogData, CourseScheduleData
        from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED as SIGNAL
        from openedx_events.data import EventsMetadata
        import edxbus_openedx
        producer = edxbus_openedx.create_producer()
        for n in range(3):
            data = {"catalog_info": CourseCatalogData(
                course_key=CourseKey.from_string(f"course-v1:edX+Exit{n}+2026"), name="n",
                schedule_data=CourseScheduleData(start=datetime.now(timezone.utc), pacing="self"))}
            metadata = EventsMetadata(event_type=SIGNAL.event_type, id=uuid.UUID(int=n + 1))
            producer.send(signal=SIGNAL, topic="t", event_key_field="catalog_info.course_key",
                          event_data=data, event_metadata=metadata)
        print("sent", flush=True)
    """)

    def run_child(self, url):
        env = python_env(EDXBUS_INGEST_URL=url, EDXBUS_PRODUCER_FLUSH_SECONDS="1",
                         EDXBUS_PRODUCER_BACKOFF_SECONDS="0.01", EDXBUS_PRODUCER_BACKOFF_MAX_SECONDS="0.05",
                         EDXBUS_PRODUCER_MAX_ATTEMPTS="1000")
        return run_python(["-c", self.SCRIPT], env=env)

    def test_exit_flush_delivers_what_it_can(self):
        server = RecordingServer()
        self.addCleanup(server.close)
        proc = self.run_child(server.url)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual([r.header("ce-id") for r in server.requests],
                         [str(uuid.UUID(int=n + 1)) for n in range(3)])
        self.assertNotIn("lost", proc.stderr)

    def test_exit_logs_each_event_left_with_its_id(self):
        server = RecordingServer(lambda rec: (503, {"error": "shutting down; retry"}, {}))
        self.addCleanup(server.close)
        proc = self.run_child(server.url)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("flushing 3 event(s) to the ingest before exit", proc.stderr)
        for n in range(3):
            event_id = str(uuid.UUID(int=n + 1))
            lost = [line for line in proc.stderr.splitlines() if line.startswith("ERROR") and event_id in line]
            self.assertEqual(len(lost), 1, proc.stderr)
            self.assertIn("lost", lost[0])


class CreateProducerTest(unittest.TestCase):
    def test_from_django_settings(self):
        with override_settings(EDXBUS_INGEST_URL="http://ingest:8090", EDXBUS_INGEST_TOKEN=TOKEN,
                               EDXBUS_INGEST_TIMEOUT=2, EDXBUS_PRODUCER_QUEUE_SIZE=7,
                               EDXBUS_PRODUCER_BLOCK_SECONDS=0.1, EDXBUS_PRODUCER_FLUSH_SECONDS=3,
                               EDXBUS_PRODUCER_MAX_ATTEMPTS=4, EVENT_BUS_TOPIC_PREFIX="stage"):
            producer = edxbus_openedx.create_producer()
        self.addCleanup(producer.close, 0)
        cfg = producer.config
        self.assertEqual((cfg.ingest_url, cfg.token, cfg.timeout, cfg.queue_size, cfg.block_seconds,
                          cfg.flush_seconds, cfg.max_attempts),
                         ("http://ingest:8090", TOKEN, 2.0, 7, 0.1, 3.0, 4))
        self.assertEqual(cfg.full_topic("course-catalog-info-changed"), "stage-course-catalog-info-changed")

    def test_defaults(self):
        with override_settings(EDXBUS_INGEST_URL="https://ingest.example"):
            cfg = ProducerConfig.from_settings()
        self.assertEqual((cfg.timeout, cfg.queue_size, cfg.block_seconds, cfg.flush_seconds, cfg.max_attempts),
                         (5.0, 1000, 0.5, 5.0, 10))
        self.assertEqual(cfg.full_topic("t"), "t")

    def test_environment_when_django_is_not_configured(self):
        unconfigured = LazySettings()
        env = {"EDXBUS_INGEST_URL": "http://from-env:8090", "EDXBUS_PRODUCER_QUEUE_SIZE": "3",
               "EDXBUS_INGEST_TOKEN_FILE": "/run/secrets/t", "EVENT_BUS_TOPIC_PREFIX": "env"}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            cfg = ProducerConfig.from_settings(unconfigured)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.assertEqual((cfg.ingest_url, cfg.queue_size, cfg.token_file, cfg.full_topic("t")),
                         ("http://from-env:8090", 3, "/run/secrets/t", "env-t"))

    def test_configuration_errors(self):
        cases = [
            ({}, "EDXBUS_INGEST_URL is not set"),
            ({"EDXBUS_INGEST_URL": "ftp://x"}, "http:// or https://"),
            ({"EDXBUS_INGEST_URL": "http://x", "EDXBUS_INGEST_TOKEN": "a" * 20, "EDXBUS_INGEST_TOKEN_FILE": "/f"},
             "not both"),
            ({"EDXBUS_INGEST_URL": "http://x", "EDXBUS_PRODUCER_QUEUE_SIZE": 0}, "at least 1"),
            ({"EDXBUS_INGEST_URL": "http://x", "EDXBUS_INGEST_TIMEOUT": "soon"}, "must be a number"),
        ]
        for values, message in cases:
            with self.subTest(values=values), override_settings(**values):
                with self.assertRaisesRegex(ValueError, message):
                    edxbus_openedx.create_producer()


if __name__ == "__main__":
    unittest.main()
