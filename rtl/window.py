"""Feature-map storage that reads a whole 3x3 window in one cycle."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.conv import TAPS

from .address import ADDRESS_LATENCY, map_address
from .interfaces import PortSignature
from .params import check_maps, check_positive_int
from .pipeline import delay_line

__all__ = ["WindowMemory", "divmod3_layout"]


def divmod3_layout(size):
    """A coordinate kept as ``(quotient, remainder)`` of a division by 3, for ``0 <= v < size``."""
    return data.StructLayout({"quotient": range(max(1, -(-size // 3))), "remainder": range(3)})


def _parts(component, name, width, part_width):
    """How many ``part_width``-bit parts a ``width``-bit word has: a power of two, so that a
    group number splits into the word's group and the part by its bits."""
    check_positive_int(component, name, part_width)
    parts = width // part_width
    if width % part_width or parts & (parts - 1):
        raise ValueError(f"{component} {name}={part_width} must divide width={width} a power "
                         f"of two times")
    return parts


class WindowMemory(wiring.Component):
    """A feature map of ``width``-bit words per (pixel, channel group) in 9 banks, read a whole
    3x3 window per cycle.

    Pixel ``(y, x)`` lives in bank ``(y % 3) * 3 + x % 3`` at address
    ``(group * row_length + y // 3) * row_length + x // 3``, so the nine pixels of any 3x3 window
    sit in nine different banks and the whole window is read in one cycle, at any position and
    in any order (stride 2 and channel groups need no line buffers). Coordinates come as
    ``(quotient, remainder)`` pairs of a division by 3 (:func:`divmod3_layout`), which a
    scanning sequencer keeps with adders instead of dividers.

    The ports may read and write parts of a word (``read_width``, ``write_width``): a port's
    ``group`` then counts parts, part ``group % parts`` of word ``group // parts`` (bits
    ``part * port width`` upwards), so that a producer and a consumer of different widths share
    the map (the accelerator's quantiser writes ``pe`` channels, its arrays read
    ``simd_channels``).

    Parameters
    ----------
    width : int
        Bits per stored word.
    maps : iterable of (int, int)
        The (size, channel groups) of every map the memory will hold (rows = cols = size; groups
        of ``width``-bit words): they set the depth and the ports' coordinate ranges.
    read_width, write_width : int or None
        Bits per read (of each tap) and per write; each divides ``width`` a power of two times
        (default: ``width``).

    Members
    -------
    row_length : In(range(ceil(size / 3) + 1))
        ``ceil(map width / 3)`` of the stored map; it may change between maps.
    write : Out(WindowMemory.WritePort.Signature(size=..., groups=..., width=...))
        The write port.
    read : Out(WindowMemory.ReadPort.Signature(size=..., groups=..., width=...))
        The read port.

    Protocol
    --------
    Write: when ``write.en`` is high, ``write.data`` goes to pixel ``(write.y, write.x)``,
    group ``write.group``.

    Read: a three-stage pipeline that moves on cycles with ``read.en`` high (a lock-step
    pipeline's advance). ``read.y``, ``read.x`` name the window's centre and ``read.group`` the
    channel group; ``read.data[t]`` then holds the word of tap ``t = ky * 3 + kx`` (pixel
    ``(y + ky - 1, x + kx - 1)``). Taps outside the map hold unspecified data: the consumer masks
    them. Writes and reads reach the banks :data:`rtl.address.ADDRESS_LATENCY` cycles after
    they are presented, so a write and a read of the same word presented in one cycle return
    the old word, and a read presented after a write returns the new one.

    Latency
    -------
    :attr:`latency` = 4: the window is on ``read.data`` four enabled cycles after its read
    (the banks' addresses are computed in :data:`rtl.address.ADDRESS_LATENCY` = 2 register
    stages, :func:`rtl.address.map_address`; the banks are read; the taps, and the part read of
    each, are picked from the banks and registered).
    """

    latency = ADDRESS_LATENCY + 2

    class ReadPort(wiring.PureInterface):
        """A read port of a :class:`WindowMemory`, as its :class:`Signature` makes it."""

        class Signature(PortSignature):
            """Signature of a :class:`WindowMemory` read port (the memory's side).

            Parameters
            ----------
            size : int
                The largest map size: the window's centre (and its edge rows and columns, which
                may lie outside the map) ranges over ``0 .. size + 1``.
            groups : int
                The most channel groups of a map, in words read.
            width : int
                Bits per word read.

            Members
            -------
            en : In(1, init=1)
                Read enable: the read pipeline advances in cycles where it is high.
            y, x : In(divmod3_layout(size + 2))
                The window's centre as (quotient, remainder) of a division by 3.
            group : In(range(groups))
                The channel group.
            data : Out(ArrayLayout(width, 9))
                The window's words, ``data[ky * 3 + kx]`` the word of pixel
                ``(y + ky - 1, x + kx - 1)``, :attr:`WindowMemory.latency` enabled cycles after
                the read.
            """

            def __init__(self, *, size, groups, width):
                coordinate = divmod3_layout(size + 2)
                super().__init__({
                    "en": In(1, init=1),
                    "y": In(coordinate),
                    "x": In(coordinate),
                    "group": In(range(groups)),
                    "data": Out(data.ArrayLayout(width, TAPS)),
                }, size=size, groups=groups, width=width)

    class WritePort(wiring.PureInterface):
        """A write port of a :class:`WindowMemory`, as its :class:`Signature` makes it."""

        class Signature(PortSignature):
            """Signature of a :class:`WindowMemory` write port (the memory's side).

            Parameters
            ----------
            size : int
                The largest map size.
            groups : int
                The most channel groups of a map, in words written.
            width : int
                Bits per word written.

            Members
            -------
            en : In(1)
                Write enable.
            y, x : In(divmod3_layout(size + 2))
                The pixel as (quotient, remainder) of a division by 3.
            group : In(range(groups))
                The channel group.
            data : In(width)
                The word written.
            """

            def __init__(self, *, size, groups, width):
                coordinate = divmod3_layout(size + 2)
                super().__init__({
                    "en": In(1),
                    "y": In(coordinate),
                    "x": In(coordinate),
                    "group": In(range(groups)),
                    "data": In(width),
                }, size=size, groups=groups, width=width)

    # What the signatures' ``create`` makes (the classes exist only once their bodies end).
    ReadPort.Signature.interface = ReadPort
    WritePort.Signature.interface = WritePort

    def __init__(self, width, maps, *, read_width=None, write_width=None):
        check_positive_int("WindowMemory", "width", width)
        maps = check_maps("WindowMemory", maps)
        read_width = width if read_width is None else read_width
        write_width = width if write_width is None else write_width
        self.width, self.read_width, self.write_width = width, read_width, write_width
        self.read_parts = _parts("WindowMemory", "read_width", width, read_width)
        self.write_parts = _parts("WindowMemory", "write_width", width, write_width)
        size = max(size for size, _ in maps)
        groups = max(groups for _, groups in maps)
        self.row_length_max = -(-size // 3)
        self.depth = max(groups * (-(-size // 3)) ** 2 for size, groups in maps)
        super().__init__({
            "row_length": In(range(self.row_length_max + 1)),
            "write": Out(self.WritePort.Signature(size=size, groups=groups * self.write_parts,
                                                  width=write_width)),
            "read": Out(self.ReadPort.Signature(size=size, groups=groups * self.read_parts,
                                                width=read_width)),
        })

    def elaborate(self, platform):
        m = Module()
        write, read = self.write, self.read
        # A port's group is the word's group and the part in its low bits (the parts are a
        # power of two).
        write_part_bits, read_part_bits = (parts.bit_length() - 1
                                           for parts in (self.write_parts, self.read_parts))
        # A write goes to the bank of its pixel, with the address of its quotients; it waits for
        # the address, as reads do. Its data is repeated over the word's parts, and the part's
        # write enable picks the one written.
        write_address = map_address(m, 1, write.group >> write_part_bits, write.y.quotient,
                                    write.x.quotient, self.row_length, "write_address")
        write_data = delay_line(m, Cat(write.data for _ in range(self.write_parts)),
                                ADDRESS_LATENCY, "write_data")[-1]
        write_part = Cat(write.group[:write_part_bits] == part
                         for part in range(self.write_parts))
        bank_data = []
        for bank in range(TAPS):
            bank_y, bank_x = divmod(bank, 3)
            mem = memory.Memory(shape=unsigned(self.width), depth=self.depth, init=[])
            m.submodules[f"bank{bank}"] = mem
            write_port = mem.write_port(granularity=self.write_width)
            write_en = delay_line(m, Mux(write.en & (write.y.remainder == bank_y)
                                         & (write.x.remainder == bank_x), write_part, 0),
                                  ADDRESS_LATENCY, f"write_en{bank}")[-1]
            m.d.comb += [
                write_port.addr.eq(write_address),
                write_port.data.eq(write_data),
                write_port.en.eq(write_en),
            ]
            read_port = mem.read_port(transparent_for=())
            m.d.comb += [
                read_port.en.eq(read.en),
                read_port.addr.eq(map_address(
                    m, read.en, read.group >> read_part_bits,
                    self._window_quotient(read.y, bank_y), self._window_quotient(read.x, bank_x),
                    self.row_length, f"read_address{bank}")),
            ]
            bank_data.append(read_port.data)

        # The bank of tap (ky, kx) depends on the centre's remainders, the bits of each tap's
        # word on the part read; they travel with the read (past the address stages and the
        # banks).
        selects = Signal(data.StructLayout({"y": range(3), "x": range(3),
                                            "part": range(self.read_parts)}))
        m.d.comb += [selects.y.eq(read.y.remainder), selects.x.eq(read.x.remainder),
                     selects.part.eq(read.group[:read_part_bits])]
        for stage in range(ADDRESS_LATENCY + 1):
            later = Signal.like(selects, name=f"selects{stage + 1}")
            with m.If(read.en):
                m.d.sync += later.eq(selects)
            selects = later
        banks = Array(bank_data)
        with m.If(read.en):
            for tap in range(TAPS):
                ky, kx = divmod(tap, 3)
                bank_y = self._bank_of(selects.y, ky)
                bank_x = self._bank_of(selects.x, kx)
                word = banks[bank_y * 3 + bank_x]
                m.d.sync += read.data[tap].eq(word.word_select(selects.part, self.read_width))
        return m

    @staticmethod
    def _window_quotient(centre, bank_remainder):
        """Quotient of the one window row (or column) ``centre - 1 .. centre + 1`` in a bank.

        Rows ``c - 1, c, c + 1`` have the three remainders once each; the row with remainder
        ``b`` is ``c - 1`` (``b == r - 1``, or ``r == 0`` and ``b == 2``), ``c`` or ``c + 1``
        (``r == 2`` and ``b == 0``) for the centre's ``(q, r)``.
        """
        q, r = centre.quotient, centre.remainder
        if bank_remainder == 0:
            return Mux(r == 2, q + 1, q)
        if bank_remainder == 2:
            return Mux(r == 0, q - 1, q)
        return q

    @staticmethod
    def _bank_of(remainder, offset):
        """Bank row (or column) of window offset ``offset`` (0..2) for a centre remainder."""
        return Array(Const((r + offset + 2) % 3, 2) for r in range(3))[remainder]
