"""
Stand-in written from upstream's source: mirrors openedx_events/utils.py
(format_responses: pretty-prints a send_robust result, tracebacks included).
"""
import traceback
from pprint import PrettyPrinter


class ResponsePrettyPrinter(PrettyPrinter):
    """Prints receivers by dotted name and exceptions with their traceback."""

    def _format(self, obj, stream, indent, allowance, context, level):  # pylint: disable=too-many-arguments
        if isinstance(obj, Exception):
            obj = "".join(traceback.format_exception(type(obj), obj, obj.__traceback__))
        elif callable(obj):
            obj = f"{obj.__module__}.{getattr(obj, '__name__', repr(obj))}"
        return super()._format(obj, stream, indent, allowance, context, level)


def format_responses(obj, indent=1, width=80, depth=None, *, compact=False, sort_dicts=True):
    """Format a Django signal's responses for a log line."""
    return ResponsePrettyPrinter(indent=indent, width=width, depth=depth, compact=compact,
                                 sort_dicts=sort_dicts).pformat(obj)
