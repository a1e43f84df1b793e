"""
Stand-in written from upstream's source: mirrors
openedx_events/event_bus/__init__.py (the producer/consumer abstract classes
and the loaders that read EVENT_BUS_PRODUCER / EVENT_BUS_CONSUMER).
"""
import warnings
from abc import ABC, abstractmethod
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from openedx_events.data import EventsMetadata
from openedx_events.tooling import OpenEdxPublicSignal


def _try_load(*, setting_name: str, args: tuple, kwargs: dict, expected_class: type, default):
    """Call the callable the setting names; the default (with a warning) on any failure."""
    constructor_path = getattr(settings, setting_name, None)
    if constructor_path is None:
        warnings.warn(f"Event Bus setting {setting_name} is missing; component will be inactive")
        return default
    try:
        instance = import_string(constructor_path)(*args, **kwargs)
    except BaseException as e:  # pylint: disable=broad-except
        warnings.warn(f"Failed to load {expected_class} from setting {setting_name}: {e!r}; "
                      "component will be inactive")
        return default
    if not isinstance(instance, expected_class):
        warnings.warn(f"{constructor_path} from {setting_name} returned unexpected type {type(instance)}; "
                      "component will be inactive")
        return default
    return instance


class EventBusProducer(ABC):
    """Parent class of event bus producers."""

    @abstractmethod
    def send(self, *, signal: OpenEdxPublicSignal, topic: str, event_key_field: str, event_data: dict,
             event_metadata: EventsMetadata) -> None:
        """Send an event to the bus under topic (without the environment prefix)."""


class NoEventBusProducer(EventBusProducer):
    """Loaded when no producer is configured: drops everything."""

    def send(self, *, signal, topic, event_key_field, event_data, event_metadata) -> None:
        """Do nothing."""


@lru_cache
def get_producer() -> EventBusProducer:
    """The configured producer, created once."""
    return _try_load(setting_name="EVENT_BUS_PRODUCER", args=(), kwargs={},
                     expected_class=EventBusProducer, default=NoEventBusProducer())


class EventBusConsumer(ABC):
    """Parent class of event bus consumers."""

    @abstractmethod
    def consume_indefinitely(self) -> None:
        """Consume events, turning them into signals, until stopped."""


class NoEventBusConsumer(EventBusConsumer):
    """Loaded when no consumer is configured."""

    def consume_indefinitely(self) -> None:
        raise Exception("Cannot consume events; no consumer configured.")  # pylint: disable=broad-exception-raised


def make_single_consumer(*, topic: str, group_id: str, **kwargs) -> EventBusConsumer:
    """A consumer of topic (without prefix) in group group_id, from EVENT_BUS_CONSUMER."""
    options = {"topic": topic, "group_id": group_id, **kwargs}
    return _try_load(setting_name="EVENT_BUS_CONSUMER", args=(), kwargs=options,
                     expected_class=EventBusConsumer, default=NoEventBusConsumer())
