"""Validation of elaboration-time parameters, shared by the components."""

import numpy as np

from fracbnn_golden.fixedpoint import WT_MAX, WT_MIN

__all__ = ["check_maps", "check_positive_int", "check_wt_codes"]


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


def check_wt_codes(component, name, values):
    """Raise a clear TypeError/ValueError unless the array ``values`` holds integer WT codes
    (:data:`fracbnn_golden.fixedpoint.WT_MIN` .. ``WT_MAX``)."""
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"{component} {name} must be integer WT codes, not {values.dtype} values")
    if values.size and (values.min() < WT_MIN or values.max() > WT_MAX):
        raise ValueError(f"{component} {name} must be WT codes in [{WT_MIN}, {WT_MAX}]")
