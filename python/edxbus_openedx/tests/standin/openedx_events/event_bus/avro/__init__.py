"""Stand-in written from upstream's source: mirrors openedx_events/event_bus/avro/__init__.py."""
