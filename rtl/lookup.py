"""Constant tables indexed by a signal."""

from amaranth.hdl import Array, Const

__all__ = ["constant_table"]


def constant_table(values):
    """The non-negative integers ``values`` as an :class:`~amaranth.hdl.Array` of constants of
    one width (enough for the largest), to be indexed by a signal: a ROM in logic."""
    values = [int(v) for v in values]
    return Array(Const(v, range(max(values) + 1)) for v in values)
