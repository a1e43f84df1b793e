"""
Stand-in written from upstream's source: mirrors
openedx_events/event_bus/avro/serializer.py. Upstream writes with
fastavro.schemaless_writer; this stand-in writes the same plain Avro binary
(no container header, no schema id) with Apache Avro's DatumWriter.
"""
import io
import json

import attr
import avro.io
import avro.schema

from .custom_serializers import DEFAULT_CUSTOM_SERIALIZERS
from .schema import schema_from_signal

DEFAULT_SERIALIZERS = {serializer.cls: serializer.serialize for serializer in DEFAULT_CUSTOM_SERIALIZERS}


def _get_non_attrs_serializer(serializers=None):
    """The value_serializer attr.asdict uses: custom types to their wire form."""
    all_serializers = {**DEFAULT_SERIALIZERS, **(serializers or {})}

    def _serialize_non_attrs_values(inst, field, value):  # pylint: disable=unused-argument
        if value is None:
            if field.default is None:
                return None  # an optional field: ["null", T]
            raise Exception(  # pylint: disable=broad-exception-raised
                "None cannot be handled by custom serializers (and default=None was not set)")
        for extended_class, serializer in all_serializers.items():
            if field and isinstance(field.type, type) and issubclass(field.type, extended_class):
                return serializer(value)
            if issubclass(type(value), extended_class):
                return serializer(value)
        return value
    return _serialize_non_attrs_values


def _event_data_to_avro_record_dict(event_data, serializers=None):
    """The Avro record dict of an event's data (via a JSON round trip, as upstream)."""
    def value_to_dict(value):
        if hasattr(value, "__attrs_attrs__"):
            return attr.asdict(value, value_serializer=_get_non_attrs_serializer(serializers))
        return _get_non_attrs_serializer(serializers)(None, None, value)
    return json.loads(json.dumps(event_data, sort_keys=True, default=value_to_dict))


def serialize_event_data_to_bytes(event_data, signal):
    """The plain Avro binary of event_data in signal's schema."""
    serializer = AvroSignalSerializer(signal)
    parsed = avro.schema.parse(json.dumps(serializer.schema))
    out = io.BytesIO()
    avro.io.DatumWriter(parsed).write(serializer.to_dict(event_data), avro.io.BinaryEncoder(out))
    return out.getvalue()


class AvroSignalSerializer:
    """Event data -> Avro record dict, with the signal's schema."""

    def __init__(self, signal):
        self.signal = signal
        self.serializers = {ext.cls: ext.serialize for ext in self.custom_type_serializers()}
        self.custom_types = {ext.cls: ext.field_type for ext in self.custom_type_serializers()}
        self.schema = schema_from_signal(self.signal, custom_type_to_avro_type=self.custom_types)

    def schema_string(self):
        """The schema as a JSON string."""
        return json.dumps(self.schema, sort_keys=True)

    def to_dict(self, event_data):
        """The Avro record dict of event_data."""
        return _event_data_to_avro_record_dict(event_data, serializers=self.serializers)

    def custom_type_serializers(self):
        """Override to add serializers (BaseCustomTypeAvroSerializer subclasses)."""
        return []
