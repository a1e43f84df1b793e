"""The bytes the producer sends are openedx-events' Avro binary in the schema
edxbus embeds (schema/avsc), checked with Apache Avro against the .avsc file
itself, not against the stand-in's own schema."""
import io
import json
import os
import unittest

import avro.io
import avro.schema
from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED
from openedx_events.event_bus.avro.schema import schema_from_signal

from edxbus_openedx.producer import EdxbusProducer, ProducerConfig

from .support import CATALOG_SCHEMA_FILE, RecordingServer, catalog_event, schema_dir, unavailable


def _load_avsc(test):
    path = os.path.join(schema_dir(), CATALOG_SCHEMA_FILE)
    if not os.path.exists(path):
        unavailable(test, f"no schema file {path} (set EDXBUS_SCHEMA_DIR)")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return json.loads(text), avro.schema.parse(text)


def _expected_record(data):
    info = data["catalog_info"]
    s = info.schedule_data
    iso = lambda d: None if d is None else d.isoformat()  # noqa: E731
    return {"catalog_info": {
        "course_key": str(info.course_key), "name": info.name,
        "schedule_data": {"start": iso(s.start), "pacing": s.pacing, "end": iso(s.end),
                          "enrollment_start": iso(s.enrollment_start), "enrollment_end": iso(s.enrollment_end)},
        "hidden": info.hidden, "invitation_only": info.invitation_only,
    }}


class SchemaBytesTest(unittest.TestCase):
    def test_standin_schema_is_the_embedded_schema(self):
        avsc_json, _ = _load_avsc(self)
        self.assertEqual(schema_from_signal(COURSE_CATALOG_INFO_CHANGED), avsc_json)

    def test_sent_bytes_decode_with_the_avsc_and_reencode_identically(self):
        _, avsc = _load_avsc(self)
        server = RecordingServer()
        self.addCleanup(server.close)
        producer = EdxbusProducer(ProducerConfig(ingest_url=server.url))
        self.addCleanup(producer.close, 0)
        events = [catalog_event(1, optional=True), catalog_event(2, optional=False)]
        for data, metadata in events:
            producer.send(signal=COURSE_CATALOG_INFO_CHANGED, topic="course-catalog-info-changed",
                          event_key_field="catalog_info.course_key", event_data=data, event_metadata=metadata)
        self.assertTrue(producer.flush(20))
        sent = server.wait_for(2)
        for (data, _), request in zip(events, sent):
            decoded = avro.io.DatumReader(avsc, avsc).read(avro.io.BinaryDecoder(io.BytesIO(request.body)))
            self.assertEqual(decoded, _expected_record(data))
            out = io.BytesIO()
            avro.io.DatumWriter(avsc).write(_expected_record(data), avro.io.BinaryEncoder(out))
            self.assertEqual(out.getvalue(), request.body, "not byte-for-byte the .avsc's encoding")


if __name__ == "__main__":
    unittest.main()
