"""
Stand-in written from upstream's source: mirrors
openedx_events/event_bus/avro/types.py (Python type -> Avro type).
"""
SIMPLE_PYTHON_TYPE_TO_AVRO_MAPPING = {
    bool: "boolean",
    int: "long",
    float: "double",
    bytes: "bytes",
    str: "string",
}
PYTHON_TYPE_TO_AVRO_MAPPING = {
    **SIMPLE_PYTHON_TYPE_TO_AVRO_MAPPING,
    None: "null",
    dict: "map",
    list: "array",
}
