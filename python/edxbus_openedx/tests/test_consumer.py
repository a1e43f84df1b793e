"""The consumer's HTTP endpoint, with real requests to its running server."""
import http.client
import json
import os
import tempfile
import threading
import unittest
import uuid

from django.test import override_settings
from openedx_events import tooling
from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED
from openedx_events.event_bus.avro.serializer import AvroSignalSerializer, serialize_event_data_to_bytes

from edxbus_openedx import EdxbusConsumer
from edxbus_openedx.headers import headers_from_metadata

from .support import CATALOG_TYPE, TOKEN, catalog_event

TOPIC = "course-catalog-info-changed"
FULL_TOPIC = "dev-course-catalog-info-changed"
LOGGER = "edxbus_openedx.consumer"


def push_headers(metadata, *, token=TOKEN, content_type="application/avro", topic=FULL_TOPIC, delivery=1):
    """The headers `edxbus consume --deliver-to` sends."""
    headers = headers_from_metadata(metadata)
    headers.update({"Content-Type": content_type, "Edxbus-Topic": topic, "Edxbus-Subscription": "discovery",
                    "Edxbus-Delivery": str(delivery)})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


class RunningConsumer:
    """consume_indefinitely() in a thread, on a free loopback port."""

    def __init__(self, test, **settings):
        values = {"EDXBUS_CONSUMER_LISTEN": "127.0.0.1:0", "EDXBUS_CONSUMER_TOKEN": TOKEN,
                  "EVENT_BUS_TOPIC_PREFIX": "dev", **settings}
        with override_settings(**values):
            self.consumer = EdxbusConsumer(topic=TOPIC, group_id="discovery")
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.consumer.ready.wait(10):
            raise AssertionError(f"the consumer did not start: {self.error!r}")
        self.host, self.port = self.consumer.server_address
        test.addCleanup(self.stop)

    def _run(self):
        try:
            self.consumer.consume_indefinitely()
        except Exception as e:  # pylint: disable=broad-except
            self.error = e
            self.consumer.ready.set()

    def stop(self):
        self.consumer.stop()
        self.thread.join(20)

    def connection(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=20)

    def post(self, body, headers, path="/", conn=None):
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, (json.loads(data) if data else None)
        finally:
            if own:
                conn.close()


class ConsumerTest(unittest.TestCase):
    def setUp(self):
        self.received = []
        self.fail_with = None
        self.entered = threading.Event()
        self.release = None

        def receiver(**kwargs):
            self.entered.set()
            if self.release is not None:
                self.release.wait(20)
            self.received.append(kwargs)
            if self.fail_with is not None:
                raise self.fail_with
            return "ok"
        self.receiver = receiver
        COURSE_CATALOG_INFO_CHANGED.connect(receiver)
        self.addCleanup(COURSE_CATALOG_INFO_CHANGED.disconnect, receiver)

    def event(self, n=1, **kwargs):
        data, metadata = catalog_event(n)
        return data, metadata, serialize_event_data_to_bytes(data, COURSE_CATALOG_INFO_CHANGED)

    def test_delivers_to_the_receiver_with_data_and_metadata(self):
        running = RunningConsumer(self)
        data, metadata, body = self.event()
        prepared = []
        original = tooling.prepare_for_new_work_cycle

        def counting():
            prepared.append(1)
            original()
        tooling.prepare_for_new_work_cycle = counting
        self.addCleanup(setattr, tooling, "prepare_for_new_work_cycle", original)
        with self.assertLogs(LOGGER, level="INFO") as logs:
            status, answer = running.post(body, push_headers(metadata))
        self.assertEqual((status, answer), (200, {"id": str(metadata.id), "receivers": 1}))
        (kwargs,) = self.received
        self.assertEqual(kwargs["catalog_info"], data["catalog_info"])
        self.assertEqual(kwargs["metadata"], metadata)
        self.assertIs(kwargs["from_event_bus"], True)
        self.assertEqual(prepared, [1], "prepare_for_new_work_cycle once per event")
        self.assertIn(str(metadata.id), logs.output[-1])

    def test_json_body_and_events_path(self):
        running = RunningConsumer(self)
        data, metadata = catalog_event(2)
        body = json.dumps(AvroSignalSerializer(COURSE_CATALOG_INFO_CHANGED).to_dict(data)).encode()
        status, _ = running.post(body, push_headers(metadata, content_type="application/json"), path="/events")
        self.assertEqual(status, 200)
        self.assertEqual(self.received[0]["catalog_info"], data["catalog_info"])

    def test_keep_alive_connection_serves_several_events(self):
        running = RunningConsumer(self)
        conn = running.connection()
        self.addCleanup(conn.close)
        for n in range(3):
            _, metadata, body = self.event(n)
            self.assertEqual(running.post(body, push_headers(metadata, delivery=n + 1), conn=conn)[0], 200)
        self.assertEqual(len(self.received), 3)

    def test_receiver_exception_is_500_and_logged(self):
        running = RunningConsumer(self)
        self.fail_with = RuntimeError("database is locked for 'secret value'")
        _, metadata, body = self.event()
        with self.assertLogs(LOGGER, level="ERROR") as logs:
            status, answer = running.post(body, push_headers(metadata))
        self.assertEqual(status, 500)
        self.assertIn("receiver tests.test_consumer.ConsumerTest.setUp.<locals>.receiver", answer["error"])
        self.assertIn("raised RuntimeError: database is locked for '…'", answer["error"])
        self.assertNotIn("secret value", answer["error"], "quoted values are hidden")
        self.assertEqual(answer["id"], str(metadata.id))
        self.assertIn(str(metadata.id), logs.records[0].getMessage())
        self.assertIsNotNone(logs.records[0].exc_info, "the traceback is logged")

    def test_receiver_exception_under_debug_is_500(self):
        running = RunningConsumer(self)
        self.fail_with = ValueError("boom")
        _, metadata, body = self.event()
        with override_settings(DEBUG=True), self.assertLogs(LOGGER, level="ERROR"):
            status, answer = running.post(body, push_headers(metadata))
        self.assertEqual(status, 500)
        self.assertIn("ValueError: boom", answer["error"])

    def test_refusals(self):
        running = RunningConsumer(self)
        _, metadata, body = self.event()
        unknown = push_headers(metadata)
        unknown["ce-type"] = "org.openedx.nothing.such.v1"
        no_id = push_headers(metadata)
        del no_id["ce-id"]
        bad_time = push_headers(metadata)
        bad_time["ce-time"] = "yesterday"
        naive_time = push_headers(metadata)
        naive_time["ce-time"] = "2026-02-02T18:24:31"
        bad_spec = push_headers(metadata)
        bad_spec["ce-specversion"] = "0.3"
        no_topic = push_headers(metadata)
        del no_topic["Edxbus-Topic"]
        cases = [
            ("wrong token", body, push_headers(metadata, token="x" * 30), "/", 401),
            ("no token", body, push_headers(metadata, token=None), "/", 401),
            ("undecodable avro", b"\xff\xff\xff", push_headers(metadata), "/", 400),
            ("undecodable json", b"{not json", push_headers(metadata, content_type="application/json"), "/", 400),
            ("wrong topic", body, push_headers(metadata, topic="dev-other-topic"), "/", 409),
            ("unprefixed topic", body, push_headers(metadata, topic=TOPIC), "/", 409),
            ("unknown type", body, unknown, "/", 400),
            ("no ce-id", body, no_id, "/", 400),
            ("bad ce-time", body, bad_time, "/", 400),
            ("ce-time without offset", body, naive_time, "/", 400),
            ("bad ce-specversion", body, bad_spec, "/", 400),
            ("no topic header", body, no_topic, "/", 400),
            ("other content type", body, push_headers(metadata, content_type="text/plain"), "/", 415),
            ("other path", body, push_headers(metadata), "/v1/other", 404),
        ]
        for name, payload, headers, path, expected in cases:
            with self.subTest(name), self.assertLogs(LOGGER, level="WARNING") as logs:
                status, answer = running.post(payload, headers, path=path)
                self.assertEqual(status, expected, answer)
                self.assertIsInstance(answer["error"], str)
                self.assertIn(f"answered {expected}", logs.output[-1])
        self.assertEqual(self.received, [], "no refused event reached a receiver")

    def test_underscored_headers_and_other_utc_offsets_are_read(self):
        running = RunningConsumer(self)
        _, metadata, body = self.event()
        headers = {k.replace("ce-", "ce_"): v for k, v in push_headers(metadata).items()}
        headers["ce_time"] = "2026-02-02T20:24:31.123456+02:00"
        self.assertEqual(running.post(body, headers)[0], 200)
        self.assertEqual(self.received[0]["metadata"].time, metadata.time)

    def test_utf8_header_values(self):
        running = RunningConsumer(self)
        _, metadata, body = self.event()
        headers = {k: v.encode("utf-8") for k, v in push_headers(metadata).items()}
        headers["ce-source"] = "openedx/cms/wéb".encode("utf-8")
        headers["ce-sourcehost"] = "stüdio.例え".encode("utf-8")
        self.assertEqual(running.post(body, headers)[0], 200)
        got = self.received[0]["metadata"]
        self.assertEqual((got.source, got.sourcehost), ("openedx/cms/wéb", "stüdio.例え"))

    def test_token_file_with_two_tokens(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tokens")
            with open(path, "w", encoding="utf-8") as f:
                f.write(f"{TOKEN}\nnext-token-0123456789abcdef\n")
            running = RunningConsumer(self, EDXBUS_CONSUMER_TOKEN=None, EDXBUS_CONSUMER_TOKEN_FILE=path)
            _, metadata, body = self.event()
            for token, expected in ((TOKEN, 200), ("next-token-0123456789abcdef", 200), ("x" * 20, 401)):
                self.assertEqual(running.post(body, push_headers(metadata, token=token))[0], expected)

    def test_stop_finishes_the_request_in_flight(self):
        running = RunningConsumer(self)
        _, metadata, body = self.event()
        # An idle keep-alive connection must not hold the shutdown up (the
        # handler's idle timeout, 60 s, is longer than the joins below).
        idle = running.connection()
        self.addCleanup(idle.close)
        self.assertEqual(running.post(body, push_headers(metadata), conn=idle)[0], 200)
        self.received.clear()
        self.entered.clear()
        self.release = threading.Event()
        result = {}
        client = threading.Thread(target=lambda: result.update(answer=running.post(body, push_headers(metadata))))
        client.start()
        self.assertTrue(self.entered.wait(10))
        stopper = threading.Thread(target=running.stop)
        stopper.start()
        self.release.set()
        client.join(20)
        stopper.join(20)
        self.assertEqual(result["answer"][0], 200)
        self.assertFalse(running.thread.is_alive(), "consume_indefinitely returned")
        with self.assertRaises(OSError):
            running.post(body, push_headers(metadata))

    def test_healthz(self):
        running = RunningConsumer(self)
        conn = running.connection()
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        self.assertEqual((response.status, json.loads(response.read())["status"]), (200, "ok"))
        conn.close()

    def test_no_token_only_on_loopback(self):
        running = RunningConsumer(self, EDXBUS_CONSUMER_TOKEN=None)
        _, metadata, body = self.event()
        self.assertEqual(running.post(body, push_headers(metadata, token=None))[0], 200)
        with override_settings(EDXBUS_CONSUMER_LISTEN="0.0.0.0:0", EDXBUS_CONSUMER_TOKEN=None):
            with self.assertRaisesRegex(ValueError, "not a loopback address"):
                EdxbusConsumer(topic=TOPIC, group_id="g").consume_indefinitely()

    def test_short_token_refused_at_start(self):
        with override_settings(EDXBUS_CONSUMER_LISTEN="127.0.0.1:0", EDXBUS_CONSUMER_TOKEN="short"):
            with self.assertRaisesRegex(ValueError, "at least 16"):
                EdxbusConsumer(topic=TOPIC, group_id="g").consume_indefinitely()

    def test_disabled(self):
        with override_settings(EDXBUS_CONSUMERS_ENABLED=False, EDXBUS_CONSUMER_LISTEN="127.0.0.1:0"):
            consumer = EdxbusConsumer(topic=TOPIC, group_id="g")
            consumer.consume_indefinitely()  # returns at once
        self.assertIsNone(consumer.server_address)


class HeadersTest(unittest.TestCase):
    def test_round_trip(self):
        from edxbus_openedx.headers import metadata_from_headers
        import email.message
        _, metadata = catalog_event()
        message = email.message.Message()
        for k, v in headers_from_metadata(metadata).items():
            message[k] = v
        self.assertEqual(metadata_from_headers(message.get_all), metadata)

    def test_repeated_header_is_refused(self):
        from edxbus_openedx.headers import HeaderError, metadata_from_headers
        import email.message
        _, metadata = catalog_event()
        message = email.message.Message()
        for k, v in headers_from_metadata(metadata).items():
            message[k] = v
        message["ce_id"] = str(uuid.uuid4())
        with self.assertRaisesRegex(HeaderError, "ce-id: given more than once"):
            metadata_from_headers(message.get_all)

    def test_listen_parsing(self):
        from edxbus_openedx.consumer import is_loopback, parse_listen
        self.assertEqual(parse_listen("127.0.0.1:8093"), ("127.0.0.1", 8093))
        self.assertEqual(parse_listen("[::1]:0"), ("::1", 0))
        self.assertEqual(parse_listen(":8093"), ("", 8093))
        for bad in ("8093", "host:", "host:99999", "host:port"):
            with self.assertRaises(ValueError):
                parse_listen(bad)
        self.assertTrue(all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "localhost"])))
        self.assertFalse(any(map(is_loopback, ["", "0.0.0.0", "10.0.0.1", "example.com"])))


if __name__ == "__main__":
    unittest.main()
