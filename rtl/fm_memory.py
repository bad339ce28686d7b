"""Feature-map storage of FM codes that reads a 2x2 block in one cycle."""

from amaranth.hdl import Module
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .address import ADDRESS_LATENCY, map_address
from .interfaces import PortSignature
from .params import check_maps, check_positive_int
from .pipeline import delay_line

__all__ = ["FeatureMapMemory"]


class FeatureMapMemory(wiring.Component):
    """A feature map of ``width``-bit words per (pixel, channel group) in 4 banks, read a 2x2
    block per cycle.

    Pixel ``(y, x)`` lives in bank ``(y % 2) * 2 + x % 2`` at address
    ``(group * half_width + y // 2) * half_width + x // 2``, so the 2x2 block
    ``(2i .. 2i+1, 2j .. 2j+1)`` of a stride-2 shortcut reads in one cycle, and so does any
    single pixel. With ``pixels = 2`` a write takes the two pixels ``(y, x)``, ``(y, x + 1)`` of
    an even ``x``: they lie in one block, in two banks, at one address.

    Parameters
    ----------
    width : int
        Bits per word.
    maps : iterable of (int, int)
        The (size, channel groups) of every map the memory will hold (rows = cols = size, even):
        they set the depth and the ports' coordinate ranges.
    pixels : int
        Pixels per write, along a row: 1 (default) or 2.

    Members
    -------
    half_width : In(range(size // 2 + 1))
        Map width / 2 of the stored map; it may change between maps.
    write : Out(FeatureMapMemory.WritePort.Signature(size=..., groups=..., width=...,
                pixels=...))
        The write port.
    read : Out(FeatureMapMemory.ReadPort.Signature(size=..., groups=..., width=...))
        The read port.

    Protocol
    --------
    Write: ``write.data[p]`` goes to pixel ``(write.y, write.x + p)``, group ``write.group``,
    for each ``p`` with ``write.en[p]`` high; with two pixels the lowest bit of ``write.x`` is
    not read (pixel ``p`` goes to column ``2 * (write.x // 2) + p``), so a single pixel in an
    odd column is written as the second (``write.en`` = 0b10, ``write.data[1]``).

    Read: a four-stage pipeline that moves on cycles with ``read.en`` high. ``read.block_y``,
    ``read.block_x`` name the block (pixel coordinates halved) and ``read.group`` the group;
    ``read.data[k]`` then holds pixel ``(2 * block_y + k // 2, 2 * block_x + k % 2)``. Writes
    and reads reach the banks :data:`rtl.address.ADDRESS_LATENCY` cycles after they are
    presented, so a write and a read of the same word presented in one cycle return the old
    word, and a read presented after a write returns the new one.

    Latency
    -------
    :attr:`latency` = 4: the block is on ``read.data`` four enabled cycles after its read (the
    banks' addresses are computed in :data:`rtl.address.ADDRESS_LATENCY` = 2 register stages,
    :func:`rtl.address.map_address`; the banks are read; their words are registered, so that
    no logic follows a block RAM's output).
    """

    latency = ADDRESS_LATENCY + 2

    class ReadPort(wiring.PureInterface):
        """A read port of a :class:`FeatureMapMemory`, as its :class:`Signature` makes it."""

        class Signature(PortSignature):
            """Signature of a :class:`FeatureMapMemory` read port (the memory's side).

            Parameters
            ----------
            size : int
                The largest map size.
            groups : int
                The most channel groups of a map.
            width : int
                Bits per word.

            Members
            -------
            en : In(1, init=1)
                Read enable: the read pipeline advances in cycles where it is high.
            block_y, block_x : In(range(size // 2))
                The 2x2 block: pixel coordinates halved.
            group : In(range(groups))
                The channel group.
            data : Out(ArrayLayout(width, 4))
                The block's words, ``data[k]`` the word of pixel
                ``(2 * block_y + k // 2, 2 * block_x + k % 2)``,
                :attr:`FeatureMapMemory.latency` enabled cycles after the read.
            """

            def __init__(self, *, size, groups, width):
                super().__init__({
                    "en": In(1, init=1),
                    "block_y": In(range(size // 2)),
                    "block_x": In(range(size // 2)),
                    "group": In(range(groups)),
                    "data": Out(data.ArrayLayout(width, 4)),
                }, size=size, groups=groups, width=width)

    class WritePort(wiring.PureInterface):
        """A write port of a :class:`FeatureMapMemory`, as its :class:`Signature` makes it."""

        class Signature(PortSignature):
            """Signature of a :class:`FeatureMapMemory` write port (the memory's side).

            Parameters
            ----------
            size : int
                The largest map size.
            groups : int
                The most channel groups of a map.
            width : int
                Bits per word.
            pixels : int
                Pixels per write (default 1).

            Members
            -------
            en : In(pixels)
                Write enables: bit ``p`` writes pixel ``(y, x + p)``.
            y, x : In(range(size))
                The first pixel (``x`` even with two pixels).
            group : In(range(groups))
                The channel group.
            data : In(ArrayLayout(width, pixels))
                The words written, ``data[p]`` that of pixel ``(y, x + p)``.
            """

            def __init__(self, *, size, groups, width, pixels=1):
                super().__init__({
                    "en": In(pixels),
                    "y": In(range(size)),
                    "x": In(range(size)),
                    "group": In(range(groups)),
                    "data": In(data.ArrayLayout(width, pixels)),
                }, size=size, groups=groups, width=width, pixels=pixels)

    # What the signatures' ``create`` makes (the classes exist only once their bodies end).
    ReadPort.Signature.interface = ReadPort
    WritePort.Signature.interface = WritePort

    def __init__(self, width, maps, pixels=1):
        check_positive_int("FeatureMapMemory", "width", width)
        maps = check_maps("FeatureMapMemory", maps, minimum_size=2)
        for size, _ in maps:
            if size % 2:
                raise ValueError(f"FeatureMapMemory map size must be even, not {size}")
        check_positive_int("FeatureMapMemory", "pixels", pixels)
        if pixels > 2:
            # Two pixels of a row fill a block's row; more would span blocks.
            raise ValueError(f"FeatureMapMemory parameter pixels must be 1 or 2, not {pixels}")
        self.width, self.pixels = width, pixels
        size = max(size for size, _ in maps)
        groups = max(groups for _, groups in maps)
        self.depth = max(groups * (size // 2) ** 2 for size, groups in maps)
        super().__init__({
            "half_width": In(range(size // 2 + 1)),
            "write": Out(self.WritePort.Signature(size=size, groups=groups, width=width,
                                                  pixels=pixels)),
            "read": Out(self.ReadPort.Signature(size=size, groups=groups, width=width)),
        })

    def elaborate(self, platform):
        m = Module()
        write, read = self.write, self.read
        # Writes wait for their address, as reads do; every bank reads the same block address.
        write_address = map_address(m, 1, write.group, write.y >> 1, write.x >> 1,
                                    self.half_width, "write_address")
        write_data = delay_line(m, write.data, ADDRESS_LATENCY, "write_data")[-1]
        read_address = map_address(m, read.en, read.group, read.block_y, read.block_x,
                                   self.half_width, "read_address")
        for bank in range(4):
            bank_y, bank_x = divmod(bank, 2)
            mem = memory.Memory(shape=self.width, depth=self.depth, init=[])
            m.submodules[f"bank{bank}"] = mem
            write_port = mem.write_port()
            # One pixel goes to the bank of its column; two fill the block's row, pixel p in
            # column p.
            pixel = 0 if self.pixels == 1 else bank_x
            column = write.x[0] == bank_x if self.pixels == 1 else 1
            write_en = delay_line(m, write.en[pixel] & (write.y[0] == bank_y) & column,
                                  ADDRESS_LATENCY, f"write_en{bank}")[-1]
            m.d.comb += [
                write_port.addr.eq(write_address),
                write_port.data.eq(write_data[pixel]),
                write_port.en.eq(write_en),
            ]
            read_port = mem.read_port(transparent_for=())
            m.d.comb += [read_port.en.eq(read.en), read_port.addr.eq(read_address)]
            with m.If(read.en):
                m.d.sync += read.data[bank].eq(read_port.data)
        return m
