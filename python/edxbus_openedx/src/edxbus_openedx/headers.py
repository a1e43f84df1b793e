"""
Event metadata as CloudEvents HTTP binary-mode headers, both ways.

The values are formatted as event-bus-kafka formats its ce_* headers (id as
str(UUID), time as isoformat(), minorversion as a decimal, sourcelib as the
dotted version), under the dashed names of the CloudEvents HTTP binding:
proxies such as nginx drop headers with underscores by default.
"""
from datetime import datetime, timezone
from uuid import UUID

from openedx_events.data import EventsMetadata

SPEC_VERSION = "1.0"


def headers_from_metadata(metadata):
    """The ce-* headers of an event's EventsMetadata."""
    return {
        "ce-id": str(metadata.id),
        "ce-type": metadata.event_type,
        "ce-source": metadata.source,
        "ce-specversion": SPEC_VERSION,
        "ce-time": metadata.time.isoformat(),
        "ce-minorversion": str(metadata.minorversion),
        "ce-sourcehost": metadata.sourcehost,
        "ce-sourcelib": ".".join(str(part) for part in metadata.sourcelib),
    }


class HeaderError(ValueError):
    """A ce-* header is missing, repeated or malformed."""

    def __init__(self, header, message):
        super().__init__(f"{header}: {message}")
        self.header = header


# (header, alternative names, required). The alternatives are the ce_*
# spelling and, for the two non-CloudEvents attributes, Kafka's bare names.
_HEADERS = [
    ("ce-id", ("ce_id",), True),
    ("ce-type", ("ce_type",), True),
    ("ce-source", ("ce_source",), True),
    ("ce-specversion", ("ce_specversion",), True),
    ("ce-time", ("ce_time",), True),
    ("ce-minorversion", ("ce_minorversion",), False),
    ("ce-sourcehost", ("ce_sourcehost", "sourcehost"), False),
    ("ce-sourcelib", ("ce_sourcelib", "sourcelib"), False),
]


def _values(get_all, header, alternatives):
    values = []
    for name in (header, *alternatives):
        values.extend(get_all(name) or [])
    return values


def metadata_from_headers(get_all):
    """The EventsMetadata a request's ce-* headers describe.

    get_all(name) returns every value of a header (case-insensitively), as
    email.message.Message.get_all does. Raises HeaderError for a missing
    required header, one given more than once (as event-bus-kafka refuses),
    or a malformed value.
    """
    raw = {}
    for header, alternatives, required in _HEADERS:
        values = _values(get_all, header, alternatives)
        if len(values) > 1:
            raise HeaderError(header, "given more than once")
        if not values or values[0].strip() == "":
            if required:
                raise HeaderError(header, "missing")
            continue
        raw[header] = values[0].strip()

    if raw["ce-specversion"] != SPEC_VERSION:
        raise HeaderError("ce-specversion", f"must be {SPEC_VERSION}")
    kwargs = {
        "event_type": raw["ce-type"],
        "id": _parse(raw, "ce-id", UUID, "not a UUID"),
        "source": raw["ce-source"],
        "time": _parse(raw, "ce-time", _parse_time, "not an ISO 8601 time with a UTC offset"),
    }
    if "ce-minorversion" in raw:
        kwargs["minorversion"] = _parse(raw, "ce-minorversion", _parse_minorversion, "not a non-negative integer")
    if "ce-sourcehost" in raw:
        kwargs["sourcehost"] = raw["ce-sourcehost"]
    if "ce-sourcelib" in raw:
        kwargs["sourcelib"] = _parse(raw, "ce-sourcelib", _parse_sourcelib, "not a dotted version such as 11.2.0")
    try:
        return EventsMetadata(**kwargs)
    except (TypeError, ValueError) as e:
        raise HeaderError("ce-*", f"not valid event metadata: {e}") from e


def _parse(raw, header, parse, message):
    try:
        return parse(raw[header])
    except (TypeError, ValueError):
        raise HeaderError(header, message) from None


def _parse_time(text):
    # Python before 3.11 does not read a trailing Z.
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("no UTC offset")
    # EventsMetadata accepts only tzinfo == timezone.utc; another offset is
    # the same instant, so it is converted rather than refused.
    return moment.astimezone(timezone.utc)


def _parse_minorversion(text):
    number = int(text)
    if number < 0 or not text.isdigit():
        raise ValueError(text)
    return number


def _parse_sourcelib(text):
    parts = text.split(".")
    if not all(part.isdigit() for part in parts):
        raise ValueError(text)
    return tuple(int(part) for part in parts)
