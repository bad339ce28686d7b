"""Constant tables indexed by a signal."""

from amaranth.hdl import Array, Const, unsigned

__all__ = ["constant_table"]


def constant_table(values):
    """The non-negative integers ``values`` as an :class:`~amaranth.hdl.Array` of constants of
    one width (enough for the largest), to be indexed by a signal: a ROM in logic."""
    values = [int(v) for v in values]
    # The width by bit length: a ``range`` of a value past 2**63 has no length in Python.
    width = max(values).bit_length()
    return Array(Const(v, unsigned(width)) for v in values)
