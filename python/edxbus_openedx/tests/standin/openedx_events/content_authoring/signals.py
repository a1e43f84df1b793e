"""
Stand-in written from upstream's source: mirrors
openedx_events/content_authoring/signals.py (COURSE_CATALOG_INFO_CHANGED only).
"""
from openedx_events.content_authoring.data import CourseCatalogData
from openedx_events.tooling import OpenEdxPublicSignal

# .. event_type: org.openedx.content_authoring.course.catalog_info.changed.v1
# .. event_key_field: catalog_info.course_key
COURSE_CATALOG_INFO_CHANGED = OpenEdxPublicSignal(
    event_type="org.openedx.content_authoring.course.catalog_info.changed.v1",
    data={
        "catalog_info": CourseCatalogData,
    },
)
