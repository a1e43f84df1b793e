"""The end-to-end scripts, in real child processes: studio.py against a
recording ingest, then what it sent pushed (as `edxbus consume --deliver-to`
would) to discovery.py, both as make_single_consumer and via consume_events."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

from .support import CATALOG_TYPE, TOKEN, RecordingServer, python_env, run_python

E2E_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e")
STUDIO = os.path.join(E2E_DIR, "studio.py")
DISCOVERY = os.path.join(E2E_DIR, "discovery.py")
TOPIC = "course-catalog-info-changed"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push(port, recorded, delivery=1, token=TOKEN):
    """Deliver a request the ingest received, as edxbus's push delivery does."""
    headers = {k: v for k, v in recorded.headers.items() if k.lower().startswith("ce-")}
    headers.update({"Content-Type": "application/avro", "Edxbus-Topic": recorded.header("Edxbus-Topic"),
                    "Edxbus-Subscription": "discovery", "Edxbus-Delivery": str(delivery),
                    "Authorization": f"Bearer {token}"})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("POST", "/", body=recorded.body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


class E2EScriptsTest(unittest.TestCase):
    def studio(self, *args, respond=None):
        server = RecordingServer(respond)
        self.addCleanup(server.close)
        proc = run_python([STUDIO, "--ingest-url", server.url, "--topic-prefix", "dev", "--flush-seconds", "10",
                           *args], env=python_env(EDXBUS_PRODUCER_MAX_ATTEMPTS="2",
                                                  EDXBUS_PRODUCER_BACKOFF_SECONDS="0.01"))
        sent = [json.loads(line) for line in proc.stdout.splitlines()]
        return proc, sent, server.requests

    def start_discovery(self, out, *args, listen="127.0.0.1:0", **env):
        proc = subprocess.Popen([sys.executable, DISCOVERY, "-t", TOPIC, "-g", "discovery", *args],
                                env=python_env(EDXBUS_E2E_OUT=out, EDXBUS_CONSUMER_LISTEN=listen,
                                               EDXBUS_CONSUMER_TOKEN=TOKEN, EVENT_BUS_TOPIC_PREFIX="dev", **env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def stop(self, proc):
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, stderr)
        self.assertIn("edxbus consumer: stopped", stderr)
        return stderr

    def test_studio_sends_known_ids(self):
        proc, sent, requests = self.studio("--count", "3", "--run", "r1")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        expected = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://edxbus.invalid/e2e/r1/{i}")) for i in range(3)]
        self.assertEqual([e["id"] for e in sent], expected)
        self.assertEqual([r.header("ce-id") for r in requests], expected)
        self.assertEqual({r.header("Edxbus-Topic") for r in requests}, {f"dev-{TOPIC}"})
        self.assertEqual({r.path for r in requests}, {f"/v1/events/{CATALOG_TYPE}"})

    def test_studio_via_signal(self):
        proc, sent, requests = self.studio("--count", "2", "--via-signal")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual([e["id"] for e in sent], [r.header("ce-id") for r in requests])
        self.assertEqual({r.header("ce-source") for r in requests}, {"openedx/cms/web"})

    def test_studio_fails_when_the_ingest_refuses(self):
        proc, _, _ = self.studio("--count", "1", respond=lambda rec: (400, {"error": "no"}, {}))
        self.assertEqual(proc.returncode, 1)
        self.assertIn("refused", proc.stderr)

    def test_studio_to_discovery(self):
        proc, sent, requests = self.studio("--count", "3")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "received.jsonl")
            discovery = self.start_discovery(out, EDXBUS_E2E_FAIL_FIRST="1")
            line = discovery.stdout.readline()
            if not line.startswith("LISTENING http://127.0.0.1:"):
                discovery.kill()
                self.fail(f"discovery.py did not announce its address: {line!r} {discovery.communicate()[1]}")
            port = int(line.rsplit(":", 1)[1].strip("/\n"))
            self.assertEqual(push(port, requests[0])[0], 500, "the first delivery fails on purpose")
            for n, recorded in enumerate(requests):
                status, answer = push(port, recorded, delivery=2 if n == 0 else 1)
                self.assertEqual((status, answer["id"]), (200, recorded.header("ce-id")))
            self.assertEqual(push(port, requests[0], token="wrong-token-0123456789")[0], 401)
            stderr = self.stop(discovery)
            with open(out, encoding="utf-8") as f:
                received = [json.loads(line) for line in f]
        self.assertEqual([{k: r[k] for k in ("id", "course_key", "name")} for r in received], sent)
        self.assertTrue(all(r["from_event_bus"] is True for r in received))
        self.assertIn(f"update_course_data_from_event raised on event {requests[0].header('ce-id')}", stderr)
        self.assertIn("answered 401", stderr)

    def test_discovery_via_consume_events_command(self):
        _, _, requests = self.studio("--count", "1")
        port = free_port()
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "received.jsonl")
            discovery = self.start_discovery(out, "--via-command", listen=f"127.0.0.1:{port}")
            self.wait_healthy(port, discovery)
            self.assertEqual(push(port, requests[0])[0], 200)
            self.stop(discovery)
            with open(out, encoding="utf-8") as f:
                self.assertEqual(len(f.readlines()), 1)

    def wait_healthy(self, port, proc):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.fail(f"discovery.py exited: {proc.stderr.read()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                time.sleep(0.1)
        self.fail("discovery.py never became healthy")


if __name__ == "__main__":
    unittest.main()
