#!/usr/bin/env python3
"""
The Studio side of the end-to-end test: send COURSE_CATALOG_INFO_CHANGED
events with known ids through the edxbus producer backend, then flush.

    studio.py --count 5 --ingest-url http://127.0.0.1:8090 [--topic-prefix dev] [--run NAME] [--via-signal]

Settings not given as flags come from the environment (EDXBUS_INGEST_URL,
EDXBUS_INGEST_TOKEN or EDXBUS_INGEST_TOKEN_FILE, EVENT_BUS_TOPIC_PREFIX, any
EDXBUS_PRODUCER_*). Event i (0-based) has id uuid5(NAMESPACE_URL,
"https://edxbus.invalid/e2e/<run>/<i>"), course key
course-v1:edX+E2E<i>+<run> and name "E2E course <i>", unless --via-signal,
where openedx-events generates the ids (Studio's real path: send_event ->
EVENT_BUS_PRODUCER_CONFIG -> get_producer().send).

Prints one JSON line per event sent: {"id", "course_key", "name"}. Exits 0
when the ingest accepted every event before the flush timed out, 1 otherwise.
"""
import argparse
import json
import logging
import os
import sys
import uuid
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.dirname(os.path.dirname(HERE))
for path in (os.path.join(PACKAGE_DIR, "src"), os.path.join(PACKAGE_DIR, "tests", "standin")):
    if path not in sys.path:
        sys.path.insert(0, path)

CATALOG_TYPE = "org.openedx.content_authoring.course.catalog_info.changed.v1"


def event_id(run, i):
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://edxbus.invalid/e2e/{run}/{i}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=int(os.environ.get("EDXBUS_E2E_COUNT", "3")))
    parser.add_argument("--ingest-url", default=os.environ.get("EDXBUS_INGEST_URL"))
    parser.add_argument("--topic", default="course-catalog-info-changed")
    parser.add_argument("--topic-prefix", default=os.environ.get("EVENT_BUS_TOPIC_PREFIX"))
    parser.add_argument("--run", default=os.environ.get("EDXBUS_E2E_RUN", "e2e"))
    parser.add_argument("--flush-seconds", type=float, default=30.0)
    parser.add_argument("--via-signal", action="store_true",
                        help="send through COURSE_CATALOG_INFO_CHANGED.send_event and EVENT_BUS_PRODUCER_CONFIG")
    args = parser.parse_args(argv)
    if not args.ingest_url:
        parser.error("--ingest-url or EDXBUS_INGEST_URL is required")

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    import django  # pylint: disable=import-outside-toplevel
    from django.conf import settings  # pylint: disable=import-outside-toplevel

    settings.configure(
        DEBUG=False,
        EVENTS_SERVICE_NAME="cms",
        INSTALLED_APPS=["openedx_events"] if args.via_signal else [],
        EDXBUS_INGEST_URL=args.ingest_url,
        EVENT_BUS_TOPIC_PREFIX=args.topic_prefix or None,
        EVENT_BUS_PRODUCER="edxbus_openedx.create_producer",
        EVENT_BUS_PRODUCER_CONFIG={CATALOG_TYPE: {args.topic: {"event_key_field": "catalog_info.course_key",
                                                               "enabled": True}}},
        LOGGING_CONFIG=None,
    )
    django.setup()

    # pylint: disable=import-outside-toplevel
    from opaque_keys.edx.keys import CourseKey
    from openedx_events.content_authoring.data import CourseCatalogData, CourseScheduleData
    from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED
    from openedx_events.data import EventsMetadata

    if args.via_signal:
        from openedx_events.event_bus import get_producer
        producer = get_producer()
    else:
        import edxbus_openedx
        producer = edxbus_openedx.create_producer()

    sent = []
    if args.via_signal:
        # Learn the ids openedx-events generates, as any receiver could.
        def record(**kwargs):
            sent.append(str(kwargs["metadata"].id))
        COURSE_CATALOG_INFO_CHANGED.connect(record, weak=False)

    for i in range(args.count):
        info = CourseCatalogData(
            course_key=CourseKey.from_string(f"course-v1:edX+E2E{i}+{args.run}"),
            name=f"E2E course {i}",
            schedule_data=CourseScheduleData(start=datetime(2026, 9, 1, tzinfo=timezone.utc), pacing="self",
                                             end=datetime(2026, 12, 18, tzinfo=timezone.utc)),
        )
        if args.via_signal:
            COURSE_CATALOG_INFO_CHANGED.send_event(catalog_info=info)
            this_id = sent[-1]
        else:
            metadata = EventsMetadata(event_type=CATALOG_TYPE, id=event_id(args.run, i), source="openedx/cms/web")
            producer.send(signal=COURSE_CATALOG_INFO_CHANGED, topic=args.topic,
                          event_key_field="catalog_info.course_key", event_data={"catalog_info": info},
                          event_metadata=metadata)
            this_id = str(metadata.id)
        print(json.dumps({"id": this_id, "course_key": str(info.course_key), "name": info.name}), flush=True)

    producer.flush(args.flush_seconds)
    stats = producer.stats()
    logging.info("studio.py: %s", stats)
    return 0 if stats["delivered"] == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
