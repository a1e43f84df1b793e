"""Stand-in written from upstream's source: mirrors openedx_events/content_authoring/__init__.py."""
