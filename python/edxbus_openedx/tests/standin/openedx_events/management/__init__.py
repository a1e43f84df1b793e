"""Stand-in written from upstream's source: mirrors openedx_events/management/__init__.py."""
