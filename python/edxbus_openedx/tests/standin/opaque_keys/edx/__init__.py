"""Stand-in for edx-opaque-keys (mirrors opaque_keys/edx/__init__.py, empty)."""
