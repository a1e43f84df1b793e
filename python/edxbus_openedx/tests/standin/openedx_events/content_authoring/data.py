"""
Stand-in written from upstream's source: mirrors
openedx_events/content_authoring/data.py (CourseScheduleData and
CourseCatalogData only; same attributes, types, defaults and order).
"""
from datetime import datetime

import attr
from opaque_keys.edx.keys import CourseKey


@attr.s(frozen=True)
class CourseScheduleData:
    """Scheduling information of a course run."""

    start = attr.ib(type=datetime)
    pacing = attr.ib(type=str)
    end = attr.ib(type=datetime, default=None)
    enrollment_start = attr.ib(type=datetime, default=None)
    enrollment_end = attr.ib(type=datetime, default=None)


@attr.s(frozen=True)
class CourseCatalogData:
    """What catalog consumers need to know about a course run."""

    course_key = attr.ib(type=CourseKey)
    name = attr.ib(type=str)
    schedule_data = attr.ib(type=CourseScheduleData)
    hidden = attr.ib(type=bool, default=False)
    invitation_only = attr.ib(type=bool, default=False)
