"""Shared pieces of the tests: a recording HTTP server, sample events, paths."""
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opaque_keys.edx.keys import CourseKey
from openedx_events.content_authoring.data import CourseCatalogData, CourseScheduleData
from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED
from openedx_events.data import EventsMetadata

from . import PACKAGE_DIR, SRC_DIR, STANDIN_DIR

REPO_ROOT = os.path.dirname(os.path.dirname(PACKAGE_DIR))
CATALOG_TYPE = COURSE_CATALOG_INFO_CHANGED.event_type
CATALOG_SCHEMA_FILE = "org+openedx+content_authoring+course+catalog_info+changed+v1_schema.avsc"
TOKEN = "test-token-0123456789abcdef"


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(test, reason):
    """Skip, or fail under CI=true, where nothing may be skipped."""
    if in_ci():
        test.fail(f"CI=true but a test dependency is missing: {reason}")
    test.skipTest(reason)


def schema_dir():
    """The Avro schemas edxbus embeds (identical to shared/openedx-schemas/generated)."""
    return os.environ.get("EDXBUS_SCHEMA_DIR") or os.path.join(REPO_ROOT, "schema", "avsc")


def catalog_event(n=1, *, optional=True, event_id=None):
    """(event_data, metadata) of a COURSE_CATALOG_INFO_CHANGED event."""
    schedule = CourseScheduleData(
        start=datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc),
        pacing="instructor",
        end=datetime(2026, 6, 30, 17, 0, 0, 123456, tzinfo=timezone.utc) if optional else None,
        enrollment_start=datetime(2026, 1, 15, tzinfo=timezone.utc) if optional else None,
        enrollment_end=None,
    )
    data = {"catalog_info": CourseCatalogData(
        course_key=CourseKey.from_string(f"course-v1:edX+Test{n}+2026"),
        name=f"Test course {n} — ünïcode",
        schedule_data=schedule,
        hidden=optional,
        invitation_only=False,
    )}
    metadata = EventsMetadata(
        event_type=CATALOG_TYPE,
        id=event_id or uuid.uuid1(),
        minorversion=0,
        source="openedx/cms/web",
        sourcehost="studio.example",
        time=datetime(2026, 2, 2, 18, 24, 31, 123456, tzinfo=timezone.utc),
        sourcelib=(11, 2, 0),
    )
    return data, metadata


class Recorded:
    """One request the recording server received."""

    def __init__(self, method, path, headers, body):
        self.method, self.path, self.headers, self.body = method, path, headers, body

    def header(self, name):
        return self.headers.get(name)


class RecordingServer:
    """A real HTTP server in a thread that records every request and answers
    from a script: respond(recorded) -> (status, body_dict, headers) or None
    for the default 202 ingest answer."""

    def __init__(self, respond=None, *, close_after_response=False):
        self.requests = []
        self.respond = respond
        self.close_after_response = close_after_response
        self._lock = threading.Lock()
        self.received = threading.Condition(self._lock)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = -1  # one segment per answer (see the consumer's handler)

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                rec = Recorded("POST", self.path, self.headers, body)
                with outer._lock:
                    outer.requests.append(rec)
                    outer.received.notify_all()
                answer = outer.respond(rec) if outer.respond else None
                if answer is None:
                    answer = (202, {"id": rec.header("ce-id"), "topics": [rec.header("Edxbus-Topic")],
                                    "duplicate": False}, {})
                status, payload, headers = answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                try:
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a timeout test)
                    return
                if outer.close_after_response:
                    # Close without saying so, as a server timing out an idle
                    # keep-alive connection does.
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def wait_for(self, n, timeout=20):
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} requests, got {len(self.requests)}")
                self.received.wait(left)
            return list(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def python_env(**extra):
    """The environment of a child Python that sees src/ and the stand-in."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([STANDIN_DIR, SRC_DIR] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_python(args, *, env=None, timeout=60, **kwargs):
    """Run sys.executable with args; returns the CompletedProcess."""
    return subprocess.run([sys.executable, *args], env=env or python_env(), capture_output=True, text=True,
                          timeout=timeout, check=False, **kwargs)
