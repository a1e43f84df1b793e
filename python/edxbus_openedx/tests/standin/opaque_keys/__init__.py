"""
Stand-in for edx-opaque-keys, written from upstream's source: mirrors
opaque_keys/__init__.py of openedx/edx-opaque-keys (only InvalidKeyError).
"""


class InvalidKeyError(Exception):
    """Raised when a string cannot be parsed as the requested key type."""

    def __init__(self, key_class, serialized):
        super().__init__(f"{key_class!r}: {serialized!r}")
