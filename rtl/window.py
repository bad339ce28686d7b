"""Feature-map storage that reads whole 3x3 windows in one cycle."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.conv import TAPS

from .address import ADDRESS_LATENCY, map_address
from .interfaces import PortSignature
from .params import check_maps, check_positive_int
from .pipeline import delay_line

__all__ = ["WindowMemory", "divmod_layout"]


def divmod_layout(size, divisor):
    """A coordinate kept as ``(quotient, remainder)`` of a division by ``divisor``, for
    ``0 <= v < size``."""
    return data.StructLayout({"quotient": range(max(1, -(-size // divisor))),
                              "remainder": range(divisor)})


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
    """A feature map of ``width``-bit words per (pixel, channel group) in ``3 * (pixels + 2)``
    banks, read ``pixels`` horizontally adjacent 3x3 windows per cycle.

    With ``C = pixels + 2`` bank columns, pixel ``(y, x)`` lives in bank ``(y % 3) * C + x % C``
    at address ``(group * row_length + y // 3) * row_length + x // C``, so the ``3 x C`` pixels
    of the windows centred at ``(y, x) .. (y, x + pixels - 1)`` sit in ``3 * C`` different banks
    and are read in one cycle, at any position and in any order (stride 2 and channel groups
    need no line buffers). Coordinates come as ``(quotient, remainder)`` pairs of a division by
    3 (rows) and by ``C`` (columns, :func:`divmod_layout`), which a scanning sequencer keeps
    with adders instead of dividers. A bank row holds ``row_length = ceil(map width / 3)`` words
    whatever ``C``: ``ceil(map width / C)`` would do, but the spare words cost no block RAM at
    the accelerator's sizes and the memory keeps one row length.

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
    pixels : int
        Windows per read and pixels per write, along a row (default 1).

    Members
    -------
    row_length : In(range(ceil(size / 3) + 1))
        ``ceil(map width / 3)`` of the stored map; it may change between maps.
    write : Out(WindowMemory.WritePort.Signature(size=..., groups=..., width=..., pixels=...))
        The write port.
    read : Out(WindowMemory.ReadPort.Signature(size=..., groups=..., width=..., pixels=...))
        The read port.

    Protocol
    --------
    Write: ``write.data[p]`` goes to pixel ``(write.y, write.x + p)``, group ``write.group``,
    for each ``p`` with ``write.en[p]`` high. The pixels lie in different banks (their columns
    modulo ``C`` differ), so every bank takes at most one write per cycle.

    Read: a three-stage pipeline that moves on cycles with ``read.en`` high (a lock-step
    pipeline's advance). ``read.y``, ``read.x`` name the first window's centre and
    ``read.group`` the channel group; ``read.data[p][t]`` then holds the word of tap
    ``t = ky * 3 + kx`` of window ``p`` (pixel ``(y + ky - 1, x + p + kx - 1)``). Taps outside
    the map hold unspecified data: the consumer masks them. Writes and reads reach the banks
    :data:`rtl.address.ADDRESS_LATENCY` cycles after they are presented, so a write and a read
    of the same word presented in one cycle return the old word, and a read presented after a
    write returns the new one.

    Latency
    -------
    :attr:`latency` = 4: the windows are on ``read.data`` four enabled cycles after their read
    (the banks' addresses are computed in :data:`rtl.address.ADDRESS_LATENCY` = 2 register
    stages, :func:`rtl.address.map_address`; the banks are read; the ``3 x C`` words of the
    windows, and the part read of each, are picked from the banks and registered).
    """

    latency = ADDRESS_LATENCY + 2

    class ReadPort(wiring.PureInterface):
        """A read port of a :class:`WindowMemory`, as its :class:`Signature` makes it."""

        class Signature(PortSignature):
            """Signature of a :class:`WindowMemory` read port (the memory's side).

            Parameters
            ----------
            size : int
                The largest map size: the windows' centres (and their edge rows and columns,
                which may lie outside the map) range over ``0 .. size + 1``.
            groups : int
                The most channel groups of a map, in words read.
            width : int
                Bits per word read.
            pixels : int
                Windows per read (default 1).

            Members
            -------
            en : In(1, init=1)
                Read enable: the read pipeline advances in cycles where it is high.
            y : In(divmod_layout(size + 2, 3))
                The windows' centre row as (quotient, remainder) of a division by 3.
            x : In(divmod_layout(size + 2, pixels + 2))
                The first window's centre column as (quotient, remainder) of a division by
                ``pixels + 2``.
            group : In(range(groups))
                The channel group.
            data : Out(ArrayLayout(ArrayLayout(width, 9), pixels))
                The windows' words, ``data[p][ky * 3 + kx]`` the word of pixel
                ``(y + ky - 1, x + p + kx - 1)``, :attr:`WindowMemory.latency` enabled cycles
                after the read.
            """

            def __init__(self, *, size, groups, width, pixels=1):
                super().__init__({
                    "en": In(1, init=1),
                    "y": In(divmod_layout(size + 2, 3)),
                    "x": In(divmod_layout(size + 2, pixels + 2)),
                    "group": In(range(groups)),
                    "data": Out(data.ArrayLayout(data.ArrayLayout(width, TAPS), pixels)),
                }, size=size, groups=groups, width=width, pixels=pixels)

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
            pixels : int
                Pixels per write (default 1).

            Members
            -------
            en : In(pixels)
                Write enables: bit ``p`` writes pixel ``(y, x + p)``.
            y : In(divmod_layout(size + 2, 3))
                The pixels' row as (quotient, remainder) of a division by 3.
            x : In(divmod_layout(size + 2, pixels + 2))
                The first pixel's column as (quotient, remainder) of a division by
                ``pixels + 2``.
            group : In(range(groups))
                The channel group.
            data : In(ArrayLayout(width, pixels))
                The words written, ``data[p]`` that of pixel ``(y, x + p)``.
            """

            def __init__(self, *, size, groups, width, pixels=1):
                super().__init__({
                    "en": In(pixels),
                    "y": In(divmod_layout(size + 2, 3)),
                    "x": In(divmod_layout(size + 2, pixels + 2)),
                    "group": In(range(groups)),
                    "data": In(data.ArrayLayout(width, pixels)),
                }, size=size, groups=groups, width=width, pixels=pixels)

    # What the signatures' ``create`` makes (the classes exist only once their bodies end).
    ReadPort.Signature.interface = ReadPort
    WritePort.Signature.interface = WritePort

    def __init__(self, width, maps, *, read_width=None, write_width=None, pixels=1):
        check_positive_int("WindowMemory", "width", width)
        maps = check_maps("WindowMemory", maps)
        check_positive_int("WindowMemory", "pixels", pixels)
        read_width = width if read_width is None else read_width
        write_width = width if write_width is None else write_width
        self.width, self.read_width, self.write_width = width, read_width, write_width
        self.read_parts = _parts("WindowMemory", "read_width", width, read_width)
        self.write_parts = _parts("WindowMemory", "write_width", width, write_width)
        self.pixels = pixels
        self.columns = pixels + 2
        size = max(size for size, _ in maps)
        groups = max(groups for _, groups in maps)
        self.row_length_max = -(-size // 3)
        self.depth = max(groups * (-(-size // 3)) ** 2 for size, groups in maps)
        super().__init__({
            "row_length": In(range(self.row_length_max + 1)),
            "write": Out(self.WritePort.Signature(size=size, groups=groups * self.write_parts,
                                                  width=write_width, pixels=pixels)),
            "read": Out(self.ReadPort.Signature(size=size, groups=groups * self.read_parts,
                                                width=read_width, pixels=pixels)),
        })

    def elaborate(self, platform):
        m = Module()
        write, read = self.write, self.read
        columns = self.columns
        # A port's group is the word's group and the part in its low bits (the parts are a
        # power of two).
        write_part_bits, read_part_bits = (parts.bit_length() - 1
                                           for parts in (self.write_parts, self.read_parts))
        # A write goes to the banks of its pixels, with the address of their quotients; it
        # waits for the address, as reads do. Pixel p of a write at column (q, r) is in bank
        # column (r + p) % C, with quotient q + 1 where r + p wraps: only bank columns below
        # pixels - 1 take a wrapped pixel, and they alone need an address of their own. Each
        # pixel's data is repeated over the word's parts, and the part's write enable picks the
        # one written; the bank column's pixel is picked behind the delay, from the data and the
        # remainder delayed.
        write_address = map_address(m, 1, write.group >> write_part_bits, write.y.quotient,
                                    write.x.quotient, self.row_length, "write_address")
        write_addresses = [map_address(m, 1, write.group >> write_part_bits, write.y.quotient,
                                       Mux(write.x.remainder > bank_x, write.x.quotient + 1,
                                           write.x.quotient),
                                       self.row_length, f"write_address_column{bank_x}")
                           for bank_x in range(self.pixels - 1)]
        write_addresses += [write_address] * (columns - len(write_addresses))
        write_words = delay_line(m, Cat(Cat(write.data[pixel] for _ in range(self.write_parts))
                                        for pixel in range(self.pixels)),
                                 ADDRESS_LATENCY, "write_data")[-1]
        write_words = [write_words.word_select(pixel, self.width) for pixel in range(self.pixels)]
        write_column = delay_line(m, write.x.remainder, ADDRESS_LATENCY,
                                  "write_column")[-1] if self.pixels > 1 else None
        write_part = Cat(write.group[:write_part_bits] == part
                         for part in range(self.write_parts))
        bank_data = []
        for bank in range(3 * columns):
            bank_y, bank_x = divmod(bank, columns)
            mem = memory.Memory(shape=unsigned(self.width), depth=self.depth, init=[])
            m.submodules[f"bank{bank}"] = mem
            write_port = mem.write_port(granularity=self.write_width)
            # The pixel of this bank column for each remainder of the write's column.
            hit = Cat(write.en[pixel] & (write.x.remainder == (bank_x - pixel) % columns)
                      for pixel in range(self.pixels)).any()
            write_en = delay_line(m, Mux(hit & (write.y.remainder == bank_y), write_part, 0),
                                  ADDRESS_LATENCY, f"write_en{bank}")[-1]
            word = write_words[-1]
            for pixel in reversed(range(self.pixels - 1)):
                word = Mux(write_column == (bank_x - pixel) % columns, write_words[pixel], word)
            m.d.comb += [
                write_port.addr.eq(write_addresses[bank_x]),
                write_port.data.eq(word),
                write_port.en.eq(write_en),
            ]
            read_port = mem.read_port(transparent_for=())
            m.d.comb += [
                read_port.en.eq(read.en),
                read_port.addr.eq(map_address(
                    m, read.en, read.group >> read_part_bits,
                    self._region_quotient(read.y, bank_y, 3),
                    self._region_quotient(read.x, bank_x, columns),
                    self.row_length, f"read_address{bank}")),
            ]
            bank_data.append(read_port.data)

        # The bank of each word of the 3 x C region the windows cover depends on the first
        # centre's remainders, the bits of each word on the part read; they travel with the read
        # (past the address stages and the banks). The windows share the region's words. Each
        # word picks its bank row, then its bank column: two small multiplexers (3 and C words)
        # instead of one of 3 * C words.
        selects = Signal(data.StructLayout({"y": range(3), "x": range(columns),
                                            "part": range(self.read_parts)}))
        m.d.comb += [selects.y.eq(read.y.remainder), selects.x.eq(read.x.remainder),
                     selects.part.eq(read.group[:read_part_bits])]
        for stage in range(ADDRESS_LATENCY + 1):
            later = Signal.like(selects, name=f"selects{stage + 1}")
            with m.If(read.en):
                m.d.sync += later.eq(selects)
            selects = later
        region = Signal(data.ArrayLayout(data.ArrayLayout(self.read_width, columns), 3))
        with m.If(read.en):
            for row in range(3):
                bank_y = self._bank_of(selects.y, row, 3)
                row_words = Array(Array(bank_data[y * columns + x] for y in range(3))[bank_y]
                                  for x in range(columns))
                for column in range(columns):
                    word = row_words[self._bank_of(selects.x, column, columns)]
                    m.d.sync += region[row][column].eq(
                        word.word_select(selects.part, self.read_width))
        for pixel in range(self.pixels):
            for tap in range(TAPS):
                ky, kx = divmod(tap, 3)
                m.d.comb += read.data[pixel][tap].eq(region[ky][pixel + kx])
        return m

    @staticmethod
    def _region_quotient(first, bank_remainder, divisor):
        """Quotient of the one region row (or column) ``first - 1 .. first + divisor - 2`` in a
        bank of remainder ``bank_remainder`` by ``divisor``.

        The ``divisor`` rows from ``c - 1`` have every remainder once; for the first centre's
        ``(q, r)``, the row with remainder ``b`` is ``c - 1`` with quotient ``q - 1`` if
        ``r == 0`` and ``b == divisor - 1``, in the next quotient ``q + 1`` if it wraps past
        ``b == divisor - 1`` (``r`` one of ``b + 2 .. divisor - 1``), and else has quotient
        ``q``.
        """
        q, r = first.quotient, first.remainder
        if bank_remainder == divisor - 1:
            return Mux(r == 0, q - 1, q)
        if bank_remainder < divisor - 2:
            return Mux(r.matches(*range(bank_remainder + 2, divisor)), q + 1, q)
        return q

    @staticmethod
    def _bank_of(remainder, offset, divisor):
        """Bank row (or column) of region offset ``offset`` (0 .. divisor - 1) for a first
        centre's remainder by ``divisor``."""
        return Array(Const((r + offset + divisor - 1) % divisor, range(divisor))
                     for r in range(divisor))[remainder]
