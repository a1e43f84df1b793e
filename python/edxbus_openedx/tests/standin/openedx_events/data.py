"""
Stand-in written from upstream's source: mirrors openedx_events/data.py
(EventsMetadata and how its defaults are computed).
"""
import json
import socket
from datetime import datetime, timezone
from uuid import UUID, uuid1

import attr
from django.conf import settings

import openedx_events


def _ensure_utc_time(_, attribute, value):
    """Upstream accepts only datetimes whose tzinfo equals timezone.utc."""
    if value.tzinfo and value.tzinfo == timezone.utc:
        return
    raise ValueError(f"'{attribute.name}' must have timezone.utc")


def get_service_name():
    """EVENTS_SERVICE_NAME, else SERVICE_VARIANT, else None."""
    return getattr(settings, "EVENTS_SERVICE_NAME", None) or getattr(settings, "SERVICE_VARIANT", None)


def _get_source():
    return f"openedx/{get_service_name() or 'SERVICE_NAME_UNSET'}/web"


def _library_version():
    return tuple(int(part) for part in openedx_events.__version__.split("."))


@attr.s(frozen=True)
class EventsMetadata:
    """The OEP-41 subset of CloudEvents attributes an event carries."""

    event_type = attr.ib(type=str, validator=attr.validators.instance_of(str))
    id = attr.ib(type=UUID, default=None,
                 converter=attr.converters.default_if_none(attr.Factory(uuid1)),
                 validator=attr.validators.instance_of(UUID))
    minorversion = attr.ib(type=int, default=None,
                           converter=attr.converters.default_if_none(0),
                           validator=attr.validators.instance_of(int))
    source = attr.ib(type=str, default=None,
                     converter=attr.converters.default_if_none(attr.Factory(_get_source)),
                     validator=attr.validators.instance_of(str))
    sourcehost = attr.ib(type=str, default=None,
                         converter=attr.converters.default_if_none(attr.Factory(socket.gethostname)),
                         validator=attr.validators.instance_of(str))
    time = attr.ib(type=datetime, default=None,
                   converter=attr.converters.default_if_none(attr.Factory(lambda: datetime.now(timezone.utc))),
                   validator=[attr.validators.instance_of(datetime), _ensure_utc_time])
    sourcelib = attr.ib(type=tuple, default=None,
                        converter=attr.converters.default_if_none(attr.Factory(_library_version)),
                        validator=attr.validators.instance_of(tuple))

    def to_json_data(self):
        """A JSON-compatible dict (UUID and datetime as strings)."""
        def as_json(_inst, _field, value):
            if isinstance(value, UUID):
                return str(value)
            if isinstance(value, datetime):
                return value.isoformat()
            return value
        return attr.asdict(self, value_serializer=as_json)

    def to_json(self):
        """The metadata as a JSON string."""
        return json.dumps(self.to_json_data())
