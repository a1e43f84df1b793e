"""
Stand-in written from upstream's source: mirrors
openedx_events/event_bus/avro/schema.py (schema_from_signal and the field
rules: custom types, simple types, typed lists and dicts, attrs records
defined once then referenced by name, default=None as ["null", T]).
"""
from typing import get_args, get_origin

from .custom_serializers import DEFAULT_CUSTOM_SERIALIZERS
from .types import PYTHON_TYPE_TO_AVRO_MAPPING, SIMPLE_PYTHON_TYPE_TO_AVRO_MAPPING

DEFAULT_FIELD_TYPES = {serializer.cls: serializer.field_type for serializer in DEFAULT_CUSTOM_SERIALIZERS}


def schema_from_signal(signal, custom_type_to_avro_type=None):
    """The Avro schema (a dict) of the events of signal."""
    overrides = {**DEFAULT_FIELD_TYPES, **(custom_type_to_avro_type or {})}
    seen = set()
    return {
        "name": "CloudEvent",
        "type": "record",
        "doc": "Avro Event Format for CloudEvents created with openedx_events/schema",
        "fields": [_create_avro_field_definition(key, data_type, seen, custom_type_to_avro_type=overrides)
                   for key, data_type in signal.init_data.items()],
        "namespace": signal.event_type,
    }


def _create_avro_field_definition(data_key, data_type, previously_seen_types,
                                  custom_type_to_avro_type=None, default_is_none=False):
    """One Avro field: {"name": data_key, "type": ...}."""
    field = {"name": data_key}
    overrides = custom_type_to_avro_type or {}
    origin = get_origin(data_type)
    if field_type := overrides.get(data_type, None):
        field["type"] = field_type
    elif data_type in PYTHON_TYPE_TO_AVRO_MAPPING:
        if PYTHON_TYPE_TO_AVRO_MAPPING[data_type] in ("map", "array"):
            raise Exception(  # pylint: disable=broad-exception-raised
                "Unable to generate Avro schema for dict or array fields without annotation types.")
        field["type"] = PYTHON_TYPE_TO_AVRO_MAPPING[data_type]
    elif origin is list:
        field["type"] = {"type": "array", "items": _item_type(data_type, 0, previously_seen_types, overrides)}
    elif origin is dict:
        field["type"] = {"type": "map", "values": _item_type(data_type, 1, previously_seen_types, overrides)}
    elif hasattr(data_type, "__attrs_attrs__"):
        if data_type.__name__ in previously_seen_types:
            field["type"] = data_type.__name__
        else:
            previously_seen_types.add(data_type.__name__)
            field["type"] = {
                "name": data_type.__name__,
                "type": "record",
                "fields": [_create_avro_field_definition(a.name, a.type, previously_seen_types,
                                                         custom_type_to_avro_type=overrides,
                                                         default_is_none=a.default is None)
                           for a in data_type.__attrs_attrs__],
            }
    else:
        raise TypeError(f"Data type {data_type} is not supported.")
    if default_is_none:
        field["default"] = None
        field["type"] = ["null", field["type"]]
    return field


def _item_type(container_type, arg_index, previously_seen_types, overrides):
    """The Avro type of a typed list's items (arg 0) or a typed dict's values (arg 1)."""
    args = get_args(container_type)
    if not args:
        raise TypeError(f"{container_type} without annotation type is not supported.")
    item = args[arg_index]
    if (simple := SIMPLE_PYTHON_TYPE_TO_AVRO_MAPPING.get(item)) is not None:
        return simple
    if get_origin(item) in (dict, list) or hasattr(item, "__attrs_attrs__"):
        return _create_avro_field_definition("temp", item, previously_seen_types, overrides)["type"]
    raise TypeError(f"Type {item} is not supported as a list item or dict value.")
