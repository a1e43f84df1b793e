"""
Stand-in written from upstream's source: mirrors
openedx_events/event_bus/avro/deserializer.py. Upstream reads with
fastavro.schemaless_reader, the reader's own schema as the writer's; this
stand-in does the same with Apache Avro's DatumReader. The falsy-value quirk
(a falsy wire value of an attribute with a default becomes the default) is
kept, as upstream has it.
"""
import io
import json
from typing import get_args, get_origin

import attr
import avro.io
import avro.schema

from .custom_serializers import DEFAULT_CUSTOM_SERIALIZERS
from .schema import schema_from_signal
from .types import PYTHON_TYPE_TO_AVRO_MAPPING, SIMPLE_PYTHON_TYPE_TO_AVRO_MAPPING

DEFAULT_DESERIALIZERS = {serializer.cls: serializer.deserialize for serializer in DEFAULT_CUSTOM_SERIALIZERS}


def _deserialized_avro_record_dict_to_object(data, data_type, deserializers=None):
    """The instance of data_type an Avro record dict (or value) stands for."""
    all_deserializers = {**DEFAULT_DESERIALIZERS, **(deserializers or {})}
    origin = get_origin(data_type)
    if deserializer := all_deserializers.get(data_type, None):
        return deserializer(data)
    if data_type in PYTHON_TYPE_TO_AVRO_MAPPING:
        return data
    if origin is list:
        args = get_args(data_type)
        if not args:
            raise TypeError("List without annotation type is not supported.")
        if args[0] in SIMPLE_PYTHON_TYPE_TO_AVRO_MAPPING:
            return data
        return [_deserialized_avro_record_dict_to_object(item, args[0], deserializers) for item in data]
    if origin is dict:
        args = get_args(data_type)
        if not args:
            raise TypeError("Dict without annotation type is not supported.")
        if all(arg in SIMPLE_PYTHON_TYPE_TO_AVRO_MAPPING for arg in args):
            return data
        if args[0] is not str:
            raise TypeError("Avro maps only support string keys. The key type must be 'str'.")
        return {key: _deserialized_avro_record_dict_to_object(value, args[1], deserializers)
                for key, value in data.items()}
    if hasattr(data_type, "__attrs_attrs__"):
        kwargs = {}
        for attribute in data_type.__attrs_attrs__:
            if attribute.name in data:
                value = data[attribute.name]
                if value or attribute.default is attr.NOTHING:
                    kwargs[attribute.name] = _deserialized_avro_record_dict_to_object(
                        value, attribute.type, deserializers=deserializers)
        return data_type(**kwargs)
    raise TypeError(f"Unable to deserialize {data_type} data, please add CustomTypeAvroSerializer for custom data type")


def _avro_record_dict_to_event_data(signal, avro_record_dict, deserializers=None):
    """The send_event kwargs an Avro record dict stands for."""
    return {key: _deserialized_avro_record_dict_to_object(avro_record_dict[key], data_type, deserializers)
            for key, data_type in signal.init_data.items()}


def deserialize_bytes_to_event_data(bytes_from_wire, signal):
    """The event data of a plain Avro binary in signal's schema."""
    deserializer = AvroSignalDeserializer(signal)
    parsed = avro.schema.parse(json.dumps(deserializer.schema))
    as_dict = avro.io.DatumReader(parsed, parsed).read(avro.io.BinaryDecoder(io.BytesIO(bytes_from_wire)))
    return deserializer.from_dict(as_dict)


class AvroSignalDeserializer:
    """Avro record dict -> event data, with the signal's schema."""

    def __init__(self, signal):
        self.signal = signal
        self.deserializers = {ext.cls: ext.deserialize for ext in self.custom_type_serializers()}
        self.custom_types = {ext.cls: ext.field_type for ext in self.custom_type_serializers()}
        self.schema = schema_from_signal(self.signal, custom_type_to_avro_type=self.custom_types)

    def schema_string(self):
        """The schema as a JSON string."""
        return json.dumps(self.schema, sort_keys=True)

    def from_dict(self, avro_record_dict):
        """The event data of an Avro record dict."""
        return _avro_record_dict_to_event_data(self.signal, avro_record_dict, self.deserializers)

    def custom_type_serializers(self):
        """Override to add deserializers (BaseCustomTypeAvroSerializer subclasses)."""
        return []
