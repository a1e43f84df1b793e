"""
Tests of edxbus_openedx, run with Debian's interpreter (python3-avro,
python3-django, python3-attr) from python/:

    /usr/bin/python3 -m unittest discover -s edxbus_openedx/tests -t edxbus_openedx

Importing this package puts src/ and the openedx-events stand-in
(tests/standin/) on sys.path and configures Django minimally.
"""
import logging
import os
import sys

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC_DIR = os.path.join(PACKAGE_DIR, "src")
STANDIN_DIR = os.path.join(PACKAGE_DIR, "tests", "standin")

for _path in (STANDIN_DIR, SRC_DIR):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from django.conf import settings  # noqa: E402  pylint: disable=wrong-import-position

if not settings.configured:
    settings.configure(DEBUG=False, INSTALLED_APPS=[], EVENTS_SERVICE_NAME="tests", LOGGING_CONFIG=None)

# Keep the expected warnings and errors out of the test output; assertLogs
# still sees them.
for _name in ("edxbus_openedx", "openedx_events", "django.dispatch"):
    logging.getLogger(_name).addHandler(logging.NullHandler())
    logging.getLogger(_name).propagate = False
