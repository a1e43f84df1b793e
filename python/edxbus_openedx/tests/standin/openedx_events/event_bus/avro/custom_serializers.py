"""
Stand-in written from upstream's source: mirrors
openedx_events/event_bus/avro/custom_serializers.py (only the serializers of
the types the stand-in data classes use: CourseKey, datetime, UUID; each is
an Avro string).
"""
from abc import ABC, abstractmethod
from datetime import datetime
from uuid import UUID

from opaque_keys.edx.keys import CourseKey

from openedx_events.event_bus.avro.types import PYTHON_TYPE_TO_AVRO_MAPPING


class BaseCustomTypeAvroSerializer(ABC):
    """A type carried on the wire as an Avro primitive."""

    cls: type
    field_type: str

    @staticmethod
    @abstractmethod
    def serialize(obj) -> str:
        """obj as its wire string."""

    @staticmethod
    @abstractmethod
    def deserialize(data: str) -> object:
        """The object a wire string stands for."""


class CourseKeyAvroSerializer(BaseCustomTypeAvroSerializer):
    """CourseKey <-> its string form."""

    cls = CourseKey
    field_type = PYTHON_TYPE_TO_AVRO_MAPPING[str]

    @staticmethod
    def serialize(obj) -> str:
        return str(obj)

    @staticmethod
    def deserialize(data: str):
        return CourseKey.from_string(data)


class DatetimeAvroSerializer(BaseCustomTypeAvroSerializer):
    """datetime <-> isoformat() (the CloudEvents Avro mapping of a timestamp)."""

    cls = datetime
    field_type = PYTHON_TYPE_TO_AVRO_MAPPING[str]

    @staticmethod
    def serialize(obj) -> str:
        return obj.isoformat()

    @staticmethod
    def deserialize(data: str):
        return datetime.fromisoformat(data)


class UuidAvroSerializer(BaseCustomTypeAvroSerializer):
    """UUID <-> its lower-case hyphenated string."""

    cls = UUID
    field_type = PYTHON_TYPE_TO_AVRO_MAPPING[str]

    @staticmethod
    def serialize(obj) -> str:
        return str(obj)

    @staticmethod
    def deserialize(data: str):
        return UUID(data)


DEFAULT_CUSTOM_SERIALIZERS = [
    CourseKeyAvroSerializer,
    DatetimeAvroSerializer,
    UuidAvroSerializer,
]
