"""
Stand-in written from upstream's source: mirrors openedx_events/tooling.py
(OpenEdxPublicSignal, load_all_signals, prepare_for_new_work_cycle).
Upstream's prepare_for_new_work_cycle also clears edx-django-utils'
RequestCache, which is not available here.
"""
import pkgutil
import warnings
from importlib import import_module
from logging import getLogger

from django.conf import settings
from django.db import connection
from django.dispatch import Signal

from openedx_events.data import EventsMetadata
from openedx_events.exceptions import SenderValidationError
from openedx_events.utils import format_responses

log = getLogger(__name__)

KNOWN_UNSERIALIZABLE_SIGNALS = [
    "org.openedx.content_authoring.course.certificate_config.changed.v1",
    "org.openedx.content_authoring.course.certificate_config.deleted.v1",
    "org.openedx.learning.external_grader.score.submitted.v1",
]

SIGNAL_PROCESSED_FROM_EVENT_BUS = "from_event_bus"


class OpenEdxPublicSignal(Signal):
    """A Django signal with an event type, a data definition and metadata."""

    _mapping = {}
    instances = []

    def __init__(self, event_type, data, minor_version=0):
        self.init_data = data
        self.event_type = event_type
        self.minor_version = minor_version
        self._allow_events = True
        self._allow_send_event_failure = False
        self.__class__.instances.append(self)
        self.__class__._mapping[self.event_type] = self
        super().__init__()

    def __repr__(self):
        return f"<OpenEdxPublicSignal: {self.event_type}>"

    @classmethod
    def all_events(cls):
        """Every signal defined so far."""
        return cls.instances

    @classmethod
    def get_signal_by_type(cls, event_type):
        """The signal of event_type; KeyError when there is none."""
        return cls._mapping[event_type]

    def generate_signal_metadata(self, time=None):
        """Fresh metadata for an event of this signal."""
        return EventsMetadata(event_type=self.event_type, minorversion=self.minor_version, time=time)

    def _send_event_with_metadata(self, metadata, send_robust=True, from_event_bus=False, **kwargs):
        if not self._allow_events:
            return []
        if len(kwargs) != len(self.init_data):
            raise SenderValidationError(
                event_type=self.event_type,
                message="There's a mismatch between initialization data and send_event arguments")
        for key, cls in self.init_data.items():
            value = kwargs.get(key)
            if not value:
                raise SenderValidationError(event_type=self.event_type,
                                            message=f"Missing required argument '{key}'")
            if not isinstance(value, cls):
                raise SenderValidationError(
                    event_type=self.event_type,
                    message=f"The argument '{key}' is not instance of the Class Attribute '{cls.__class__.__name__}'")
        kwargs["metadata"] = metadata
        kwargs[SIGNAL_PROCESSED_FROM_EVENT_BUS] = from_event_bus
        if self._allow_send_event_failure or settings.DEBUG or not send_robust:
            return super().send(sender=None, **kwargs)
        responses = super().send_robust(sender=None, **kwargs)
        log.info(f"Responses of the Open edX Event <{self.event_type}>: \n{format_responses(responses, depth=2)}")
        return responses

    def send_event(self, send_robust=True, time=None, **kwargs):
        """Validate kwargs, generate metadata and send to every receiver."""
        metadata = self.generate_signal_metadata(time=time)
        return self._send_event_with_metadata(metadata=metadata, send_robust=send_robust, **kwargs)

    def send_event_with_custom_metadata(self, metadata, /, *, send_robust=True, **kwargs):
        """As send_event with the given metadata; marks the event as coming from the event bus."""
        return self._send_event_with_metadata(metadata=metadata, send_robust=send_robust,
                                              from_event_bus=True, **kwargs)

    def send(self, sender, **kwargs):  # pylint: disable=unused-argument
        warnings.warn("Please, use 'send_event' when triggering an Open edX event.")

    def send_robust(self, sender, **kwargs):  # pylint: disable=unused-argument
        warnings.warn("Please, use 'send_event' with send_robust equals to True when triggering an Open edX event.")

    def enable(self):
        """send_event sends again."""
        self._allow_events = True

    def disable(self):
        """send_event does nothing."""
        self._allow_events = False

    def allow_send_event_failure(self):
        """Use plain send: receiver exceptions propagate."""
        self._allow_send_event_failure = True


def load_all_signals():
    """Import every non-test ``*.signals`` module of the package."""
    root = import_module("openedx_events")
    for module in pkgutil.walk_packages(root.__path__, root.__name__ + "."):
        name = module.name
        if "tests" in name.split(".") or ".test_" in name:
            continue
        if name.endswith(".signals"):
            import_module(name)


def _reconnect_to_db_if_needed():
    if connection.connection and not connection.is_usable():
        connection.connect()


def prepare_for_new_work_cycle():
    """Make the Django state fit for one more unit of work outside a request."""
    _reconnect_to_db_if_needed()
