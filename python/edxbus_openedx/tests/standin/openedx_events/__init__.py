"""
Stand-in for openedx-events, written from upstream's source: mirrors
openedx_events/__init__.py of openedx/openedx-events (11.2.0). See
../README.md for what the stand-ins cover.
"""

__version__ = "11.2.0"
