"""
Stand-in for edx-opaque-keys, written from upstream's source: mirrors
opaque_keys/edx/keys.py (CourseKey only). Upstream resolves the key class
through entry points; here `course-v1:` keys are the only kind.
"""


class CourseKey:
    """An opaque key identifying a course."""

    CANONICAL_NAMESPACE = "course-v1"

    @classmethod
    def from_string(cls, serialized):
        """Parse a serialized course key, e.g. ``course-v1:edX+DemoX+Demo_Course``."""
        from opaque_keys.edx.locator import CourseLocator  # pylint: disable=import-outside-toplevel

        return CourseLocator.from_string(serialized)
