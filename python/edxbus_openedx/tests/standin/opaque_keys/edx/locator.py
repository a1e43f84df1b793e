"""
Stand-in for edx-opaque-keys, written from upstream's source: mirrors
opaque_keys/edx/locator.py (CourseLocator only, without branch/version).
"""
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey


class CourseLocator(CourseKey):
    """A ``course-v1:org+course+run`` key; equal and hashed by its string form."""

    def __init__(self, org, course, run):
        for part in (org, course, run):
            if not part or any(c in part for c in "+:/ "):
                raise InvalidKeyError(CourseLocator, f"{org}+{course}+{run}")
        self.org, self.course, self.run = org, course, run

    @classmethod
    def from_string(cls, serialized):
        if not isinstance(serialized, str):
            raise InvalidKeyError(cls, serialized)
        namespace, sep, rest = serialized.partition(":")
        parts = rest.split("+")
        if sep != ":" or namespace != cls.CANONICAL_NAMESPACE or len(parts) != 3:
            raise InvalidKeyError(cls, serialized)
        return cls(*parts)

    def __str__(self):
        return f"{self.CANONICAL_NAMESPACE}:{self.org}+{self.course}+{self.run}"

    def __repr__(self):
        return f"CourseLocator({str(self)!r})"

    def __eq__(self, other):
        return isinstance(other, CourseLocator) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))
