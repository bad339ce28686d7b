"""Feature-map storage of FM codes that reads a 2x2 block in one cycle."""

from amaranth.hdl import Module
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .params import check_maps, check_positive_int

__all__ = ["FeatureMapMemory"]


class FeatureMapMemory(wiring.Component):
    """A feature map of ``width``-bit words per (pixel, channel group) in 4 banks.

    Pixel ``(y, x)`` lives in bank ``(y % 2) * 2 + x % 2`` at address
    ``(group * half_width + y // 2) * half_width + x // 2`` (``half_width`` = map width / 2, an
    input that may change between maps), so the 2x2 block ``(2i .. 2i+1, 2j .. 2j+1)`` of a
    stride-2 shortcut reads in one cycle, and so does any single pixel.

    Write: when ``write.en`` is high, ``write.data`` goes to pixel ``(write.y, write.x)``,
    group ``write.group``.

    Read: a one-stage pipeline that moves on cycles with ``read.en`` high. ``read.block_y``,
    ``read.block_x`` name the block (pixel coordinates halved) and ``read.group`` the group; one
    enabled cycle later ``block[k]`` holds pixel ``(2 * block_y + k // 2, 2 * block_x + k % 2)``.
    A write and a read of the same word in one cycle return the old word.

    Parameters: ``width`` (bits per word) and ``maps``, the (size, channel groups) of every map
    the memory will hold (rows = cols = size, even): they set the depth.
    """

    def __init__(self, width, maps):
        check_positive_int("FeatureMapMemory", "width", width)
        maps = check_maps("FeatureMapMemory", maps, minimum_size=2)
        for size, _ in maps:
            if size % 2:
                raise ValueError(f"FeatureMapMemory map size must be even, not {size}")
        self.width = width
        size = max(size for size, _ in maps)
        groups = max(groups for _, groups in maps)
        self.depth = max(groups * (size // 2) ** 2 for size, groups in maps)
        super().__init__({
            "half_width": In(range(size // 2 + 1)),
            "write": In(data.StructLayout({
                "en": 1, "y": range(size), "x": range(size), "group": range(groups),
                "data": width})),
            "read": In(data.StructLayout({
                "en": 1, "block_y": range(size // 2), "block_x": range(size // 2),
                "group": range(groups)})),
            "block": Out(data.ArrayLayout(width, 4)),
        })

    def _address(self, group, block_y, block_x):
        return (group * self.half_width + block_y) * self.half_width + block_x

    def elaborate(self, platform):
        m = Module()
        write, read = self.write, self.read
        for bank in range(4):
            mem = memory.Memory(shape=self.width, depth=self.depth, init=[])
            m.submodules[f"bank{bank}"] = mem
            write_port = mem.write_port()
            m.d.comb += [
                write_port.addr.eq(self._address(write.group, write.y >> 1, write.x >> 1)),
                write_port.data.eq(write.data),
                write_port.en.eq(write.en & (write.y[0] == bank // 2) & (write.x[0] == bank % 2)),
            ]
            read_port = mem.read_port(transparent_for=())
            m.d.comb += [
                read_port.en.eq(read.en),
                read_port.addr.eq(self._address(read.group, read.block_y, read.block_x)),
                self.block[bank].eq(read_port.data),
            ]
        return m
