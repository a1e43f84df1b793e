"""
Stand-in written from upstream's source: mirrors openedx_events/exceptions.py
(the two exceptions tooling.py raises).
"""


class OpenEdxEventException(Exception):
    """Base of the openedx-events exceptions; str() is the message."""

    def __init__(self, message=""):
        super().__init__()
        self.message = message

    def __str__(self):
        return self.message


class InstantiationError(OpenEdxEventException):
    """An event could not be defined."""

    def __init__(self, event_type="", message=""):
        super().__init__(message=f"InstantiationError {event_type}: {message}")


class SenderValidationError(OpenEdxEventException):
    """The arguments of a send do not match the event's data definition."""

    def __init__(self, event_type="", message=""):
        super().__init__(message=f"SenderValidationError {event_type}: {message}")
