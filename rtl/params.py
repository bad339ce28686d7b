"""Validation of elaboration-time parameters, shared by the components."""

__all__ = ["check_positive_int"]


def check_positive_int(component, name, value, minimum=1):
    """Raise a clear TypeError/ValueError unless ``value`` is an int of at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{component} parameter {name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{component} parameter {name} must be at least {minimum}, not {value}")
