"""Stand-in written from upstream's source: mirrors openedx_events/management/commands/__init__.py."""
