"""Addresses of words in maps stored row by row, computed in a pipeline."""

from amaranth.hdl import Signal

__all__ = ["ADDRESS_LATENCY", "map_address"]

# Register stages between the coordinates and the address: one multiply-add each.
ADDRESS_LATENCY = 2


def map_address(m, enable, group, row, column, length, name):
    """The address ``(group * length + row) * length + column`` of a word of a map stored with
    ``length`` words per row and ``length`` rows per channel group, as a register
    :data:`ADDRESS_LATENCY` cycles with ``enable`` high after its inputs.

    The two multiply-adds by ``length`` (a row length that may change between maps) are in two
    register stages, each one small multiplier and an adder: in one cycle they were the longest
    path in front of the block RAMs. ``column`` and ``length`` travel through the first stage
    with the partial sum, so the address is consistent when ``length`` changes.
    """
    rows = Signal.like(group * length + row, name=f"{name}_rows")
    late_column = Signal.like(column, name=f"{name}_column")
    late_length = Signal.like(length, name=f"{name}_length")
    address = Signal.like(rows * late_length + late_column, name=name)
    with m.If(enable):
        m.d.sync += [
            rows.eq(group * length + row),
            late_column.eq(column),
            late_length.eq(length),
            address.eq(rows * late_length + late_column),
        ]
    return address
