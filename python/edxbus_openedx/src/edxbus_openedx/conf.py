"""
Settings of the edxbus backend.

Each setting is read from django.conf.settings when Django is configured and
the setting is defined there (not None); otherwise from the environment
variable of the same name. So a Django service configures the backend like
any other, and a script or test without Django can use the environment.
"""
import os


def _django_settings():
    try:
        from django.conf import settings  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    return settings


def raw_setting(name, *, settings=None):
    """The setting's value, or None when neither Django nor the environment sets it.

    settings: a django.conf settings object to read instead of the global one
    (tests pass an unconfigured LazySettings).
    """
    if settings is None:
        settings = _django_settings()
    if settings is not None and settings.configured:
        value = getattr(settings, name, None)
        if value is not None:
            return value
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value


def str_setting(name, default=None, *, settings=None):
    """A string setting."""
    value = raw_setting(name, settings=settings)
    return default if value is None else str(value)


def int_setting(name, default, *, minimum, settings=None):
    """An integer setting of at least minimum."""
    value = raw_setting(name, settings=settings)
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}")
    return number


def float_setting(name, default, *, minimum, settings=None):
    """A number-of-seconds setting of at least minimum."""
    value = raw_setting(name, settings=settings)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not number >= minimum:  # also refuses NaN
        raise ValueError(f"{name} must be at least {minimum}, got {number}")
    return number


def bool_setting(name, default, *, settings=None):
    """A boolean setting; the environment spells it true/false, 1/0, yes/no, on/off."""
    value = raw_setting(name, settings=settings)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be a boolean, got {value!r}")


def full_topic(topic, *, settings=None):
    """The topic with EVENT_BUS_TOPIC_PREFIX applied, as event-bus-kafka's and
    event-bus-redis's get_full_topic do: "<prefix>-<topic>", or the topic itself
    when no prefix is set."""
    prefix = str_setting("EVENT_BUS_TOPIC_PREFIX", settings=settings)
    return f"{prefix}-{topic}" if prefix else topic


def one_token_source(token_setting, file_setting, *, settings=None):
    """(token, token_file) from a pair of settings, refusing both at once:
    which one wins would be a guess."""
    token = str_setting(token_setting, settings=settings)
    token_file = str_setting(file_setting, settings=settings)
    if token and token_file:
        raise ValueError(f"set {token_setting} or {file_setting}, not both")
    return (token.strip() if token else None), token_file


def read_tokens(path):
    """The tokens in a token file: one per line; blank lines and lines starting
    with # are ignored. Several lines let a token be rotated without a gap."""
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f.read().splitlines()]
    tokens = [line for line in lines if line and not line.startswith("#")]
    if not tokens:
        raise ValueError(f"token file {path} holds no token")
    return tokens
