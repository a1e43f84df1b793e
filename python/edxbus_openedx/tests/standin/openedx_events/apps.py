"""
Stand-in written from upstream's source: mirrors openedx_events/apps.py
(general_signal_handler and the ready() wiring of EVENT_BUS_PRODUCER_CONFIG;
upstream's configuration validation is reduced to what the tests need).
"""
import logging

from django.apps import AppConfig
from django.conf import settings

from openedx_events.event_bus import get_producer
from openedx_events.tooling import SIGNAL_PROCESSED_FROM_EVENT_BUS, OpenEdxPublicSignal, load_all_signals

logger = logging.getLogger(__name__)


def general_signal_handler(sender, signal, **kwargs):  # pylint: disable=unused-argument
    """Hand an event to the configured producer, once per enabled topic."""
    if kwargs.get(SIGNAL_PROCESSED_FROM_EVENT_BUS) is True:
        return  # it came from the bus: sending it back would loop
    topics = getattr(settings, "EVENT_BUS_PRODUCER_CONFIG", {}).get(signal.event_type, {})
    event_data = {key: kwargs.get(key) for key in signal.init_data}
    for topic, config in topics.items():
        if config["enabled"] is True:
            get_producer().send(signal=signal, topic=topic, event_key_field=config["event_key_field"],
                                event_data=event_data, event_metadata=kwargs["metadata"])


class OpenedxEventsConfig(AppConfig):
    """Connects general_signal_handler to every configured signal."""

    name = "openedx_events"

    def ready(self):
        load_all_signals()
        for event_type in getattr(settings, "EVENT_BUS_PRODUCER_CONFIG", {}):
            OpenEdxPublicSignal.get_signal_by_type(event_type).connect(general_signal_handler)
