#!/usr/bin/env python3
"""
The Discovery side of the end-to-end test: a COURSE_CATALOG_INFO_CHANGED
receiver behind the edxbus consumer backend, run as consume_events runs it.

    EDXBUS_E2E_OUT=/tmp/received.jsonl discovery.py -t course-catalog-info-changed -g discovery [--via-command]

The receiver appends one JSON line per delivery to $EDXBUS_E2E_OUT:
{"id": ce-id, "course_key", "name", "from_event_bus"}; it does not dedupe,
so a redelivery shows as a second line with the same id. With
EDXBUS_E2E_FAIL_FIRST=N the first N deliveries raise (answered 500) before
any line is written, to exercise edxbus's retries.

Settings come from the environment: EDXBUS_CONSUMER_LISTEN (default
127.0.0.1:8093), EDXBUS_CONSUMER_TOKEN or EDXBUS_CONSUMER_TOKEN_FILE,
EVENT_BUS_TOPIC_PREFIX. Without --via-command it builds the consumer with
openedx-events' make_single_consumer (what consume_events does) and prints
"LISTENING http://host:port/" on stdout once it listens; with --via-command
it runs the consume_events management command itself. Either way GET
/healthz answers 200 once it is ready, and SIGTERM stops it cleanly (exit 0).
"""
import argparse
import json
import logging
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.dirname(os.path.dirname(HERE))
for path in (os.path.join(PACKAGE_DIR, "src"), os.path.join(PACKAGE_DIR, "tests", "standin")):
    if path not in sys.path:
        sys.path.insert(0, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-t", "--topic", default="course-catalog-info-changed")
    parser.add_argument("-g", "--group_id", default="discovery")
    parser.add_argument("--via-command", action="store_true", help="run manage.py consume_events's command")
    args = parser.parse_args(argv)
    out_path = os.environ.get("EDXBUS_E2E_OUT")
    if not out_path:
        parser.error("EDXBUS_E2E_OUT (the file receivers append to) is required")
    fail_first = int(os.environ.get("EDXBUS_E2E_FAIL_FIRST", "0"))

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    import django  # pylint: disable=import-outside-toplevel
    from django.conf import settings  # pylint: disable=import-outside-toplevel

    settings.configure(
        DEBUG=False,
        EVENTS_SERVICE_NAME="discovery",
        INSTALLED_APPS=["openedx_events"],
        EVENT_BUS_CONSUMER="edxbus_openedx.EdxbusConsumer",
        LOGGING_CONFIG=None,
    )
    django.setup()

    # pylint: disable=import-outside-toplevel
    from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED

    lock = threading.Lock()
    calls = {"n": 0}

    def update_course_data_from_event(**kwargs):
        with lock:
            calls["n"] += 1
            if calls["n"] <= fail_first:
                raise RuntimeError(f"failing delivery {calls['n']} of the first {fail_first} on purpose")
            info = kwargs["catalog_info"]
            line = {"id": str(kwargs["metadata"].id), "course_key": str(info.course_key), "name": info.name,
                    "from_event_bus": kwargs.get("from_event_bus")}
            with open(out_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")

    COURSE_CATALOG_INFO_CHANGED.connect(update_course_data_from_event, weak=False)

    if args.via_command:
        from django.core.management import call_command
        call_command("consume_events", "-t", args.topic, "-g", args.group_id)
        return 0

    from openedx_events.event_bus import make_single_consumer

    import edxbus_openedx
    consumer = make_single_consumer(topic=args.topic, group_id=args.group_id)
    if not isinstance(consumer, edxbus_openedx.EdxbusConsumer):
        print("discovery.py: EVENT_BUS_CONSUMER did not load (see the warning above)", file=sys.stderr)
        return 2

    def announce():
        if consumer.ready.wait(60) and consumer.server_address:
            host, port = consumer.server_address
            print(f"LISTENING http://{host}:{port}/", flush=True)
    threading.Thread(target=announce, daemon=True).start()
    consumer.consume_indefinitely()
    return 0


if __name__ == "__main__":
    sys.exit(main())
