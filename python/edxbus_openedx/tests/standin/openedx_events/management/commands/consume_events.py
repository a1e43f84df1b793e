"""
Stand-in written from upstream's source: mirrors
openedx_events/management/commands/consume_events.py (same flags; like
upstream it logs any exception and returns normally).
"""
import json
import logging

from django.core.management.base import BaseCommand

from openedx_events.event_bus import make_single_consumer
from openedx_events.tooling import load_all_signals

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    """Consume a topic and emit its events as signals."""

    help = "Consume messages from a topic and emit their data with the correct signal."

    def add_arguments(self, parser):
        parser.add_argument("-t", "--topic", nargs=1, required=True, help="Topic to consume (without environment prefix)")
        parser.add_argument("-g", "--group_id", nargs=1, required=True, help="Consumer group id")
        parser.add_argument("--extra", nargs="?", type=str, required=False,
                            help="JSON object to pass additional arguments to the consumer.")

    def handle(self, *args, **options):
        try:
            extra = json.loads(options.get("extra") or "{}")
            load_all_signals()
            consumer = make_single_consumer(topic=options["topic"][0], group_id=options["group_id"][0], **extra)
            consumer.consume_indefinitely()
        except Exception:  # pylint: disable=broad-except
            logger.exception("Error consuming events")
