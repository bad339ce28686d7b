"""Validation of elaboration-time parameters, shared by the components."""

__all__ = ["check_maps", "check_positive_int"]


def check_positive_int(component, name, value, minimum=1):
    """Raise a clear TypeError/ValueError unless ``value`` is an int of at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{component} parameter {name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{component} parameter {name} must be at least {minimum}, not {value}")


def check_maps(component, maps, minimum_size=1):
    """The ``(size, channel groups)`` pairs of a feature-map memory as a list, checked."""
    maps = list(maps)
    if not maps:
        raise ValueError(f"{component} needs at least one (size, groups) map")
    for size, groups in maps:
        check_positive_int(component, "map size", size, minimum=minimum_size)
        check_positive_int(component, "map groups", groups)
    return maps
