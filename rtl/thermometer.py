"""The binarised input layer: thermometer encoding, the prefix-sum first conv and its BN."""

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Shape, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.conv import TAPS, THERMOMETER_BITS, thermometer_tables
from fracbnn_golden.fixedpoint import WT_FRAC

from .fixedpoint import FM_SHAPE, STEM_SUM_SHAPE, sum_shape, to_fm
from .params import check_positive_int, check_wt_codes
from .pipeline import lockstep_pipeline

__all__ = ["ThermometerEncoder", "ThermometerConv", "InputBatchNorm", "COUNT_SHAPE", "ENTRY_SHAPE",
           "PORT_CHANNELS"]

COUNT_SHAPE = Shape.cast(range(THERMOMETER_BITS + 1))       # a thermometer count, 0..32
# A ThermometerConv table entry: a table value T (-32..32, even) / 4, rounded down: -8..8.
ENTRY_SHAPE = signed(5)
# Output channels per ThermometerConv memory word: seven entries fill a block RAM's 36-bit port.
PORT_CHANNELS = 7
# Address distance between the two lookups' tables in one ThermometerConv memory.
_LOOKUP_STRIDE = 1 << COUNT_SHAPE.width


class ThermometerEncoder(wiring.Component):
    """Pixels to thermometer codes (docs/architecture.md §2.3).

    Each of the ``colours`` 8-bit values ``p`` of a transfer becomes the count
    ``n = round_half_even(p / 8)`` (0..32) and 32 thermometer bits.

    Parameters
    ----------
    colours : int
        Colour values per pixel.

    Members
    -------
    i : In(stream.Signature(StructLayout({"pixel": ArrayLayout(unsigned(8), colours)})))
        One pixel.
    o : Out(stream.Signature(StructLayout({"count", "bits"})))
        ``count[c]`` (:data:`COUNT_SHAPE`): the count of colour ``c``; ``bits``: bit
        ``c * 32 + k`` is 1 iff ``k < n`` of colour ``c``.

    Protocol
    --------
    Streams with back-pressure, a lock-step pipeline (:func:`rtl.pipeline.lockstep_pipeline`).

    Latency
    -------
    :attr:`latency` = 1 cycle.
    """

    latency = 1

    def __init__(self, colours=3):
        check_positive_int("ThermometerEncoder", "colours", colours)
        self.colours = colours
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "pixel": data.ArrayLayout(unsigned(8), colours)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "count": data.ArrayLayout(COUNT_SHAPE, colours),
                "bits": colours * THERMOMETER_BITS}))),
        })

    def elaborate(self, platform):
        m = Module()

        def encode(payload):
            counts, bits = [], []
            for colour in range(self.colours):
                pixel = payload.pixel[colour]
                quotient, remainder = pixel[3:], pixel[:3]
                # Round half to even: up above the half, and at the half when the quotient is odd.
                up = (remainder > 4) | ((remainder == 4) & quotient[0])
                count = (quotient + up)[:COUNT_SHAPE.width]
                counts.append(count)
                bits.append(Cat(count > k for k in range(THERMOMETER_BITS)))
            return {"count": counts, "bits": Cat(*bits)}

        lockstep_pipeline(m, self.i, self.o, [encode])
        return m


class ThermometerConv(wiring.Component):
    """A binary 3x3 conv on thermometer input computed from prefix-sum tables in block RAM.

    A thermometer code is a prefix of ones, so one colour's 32-bit dot product with a tap's ±1
    weights is ``T(n) = 2 * P(n) - S`` (:func:`fracbnn_golden.conv.thermometer_tables`): per
    output channel, colour and tap a 33-entry constant table indexed by the count ``n``
    replaces 32 XNOR-popcount lanes.

    ``T`` is even, and ``Q = T / 2`` (-16..16) has the parity of ``n + S / 2`` (``P(n)`` is a
    sum of ``n`` odd weights), so the tables hold ``Q >> 1`` (-8..8, :data:`ENTRY_SHAPE`) and the
    count's bit 0 gives back ``Q``'s low bit. The tables are read-only memories in block RAM: a
    memory word holds the entries of up to :data:`PORT_CHANNELS` output channels (35 bits, one
    36-bit port), and each memory holds the tables of two lookups (two (tap, colour) pairs, the
    lookup in the address's high bit), read through its two ports: one memory per channel group
    and pair of lookups.

    Parameters
    ----------
    weight : 0/1 array ``[out_channels, colours * 32, 3, 3]``
        The conv's weights (1 stands for +1), on thermometer-coded input channels.

    Members
    -------
    i : In(stream.Signature(StructLayout({"count", "valid"})))
        The counts of one 3x3 window, ``count[tap][colour]`` (tap = ky*3 + kx), and ``valid``:
        bit ``tap`` set for taps inside the image (zero-padded taps contribute 0).
    o : Out(stream.Signature(StructLayout({"sums": ArrayLayout(sum_shape, out_channels)})))
        The ``out_channels`` conv sums, equal to ``binary_conv2d`` on the thermometer bits.

    Protocol
    --------
    Streams with back-pressure, a lock-step pipeline (:func:`rtl.pipeline.lockstep_pipeline`);
    the memories' read ports are enabled by the pipeline's advance, so their data hold while
    ``o`` stalls.

    Latency
    -------
    :attr:`latency` = 4 cycles (table reads, colour sums, masked tap sums by threes, final
    sum). The input counts are the memories' addresses: the synchronous reads are the first
    stage (their data come from the block RAMs' output latches), with the counts' bits 0 and
    the padding mask registered beside them.
    """

    latency = 4

    def __init__(self, weight):
        weight = np.asarray(weight)
        if (weight.ndim != 4 or weight.shape[2:] != (3, 3) or weight.shape[1] == 0
                or weight.shape[1] % THERMOMETER_BITS or weight.shape[0] == 0):
            raise ValueError(f"ThermometerConv weight must have shape [out, colours * 32, 3, 3], "
                             f"not {list(weight.shape)}")
        if not np.isin(weight, (0, 1)).all():
            raise ValueError("ThermometerConv weight must hold 0/1 bits")
        self.tables = thermometer_tables(weight)            # [out, colours, taps, 33]
        self.out_channels, self.colours = self.tables.shape[:2]
        self.sum_shape = sum_shape(TAPS * self.colours * THERMOMETER_BITS)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "count": data.ArrayLayout(data.ArrayLayout(COUNT_SHAPE, self.colours), TAPS),
                "valid": TAPS}))),
            "o": Out(stream.Signature(data.StructLayout({
                "sums": data.ArrayLayout(self.sum_shape, self.out_channels)}))),
        })

    def _memory(self, m, name, lookups, channels):
        """A read-only memory of the entries ``Q >> 1`` of ``channels`` for each (tap, colour)
        of ``lookups`` (one or two), lookup ``k`` at the addresses ``k * 64 + n``; returns a
        read port per lookup."""
        halved = self.tables[channels] // 2                  # Q, -16..16
        init = []
        for index, (tap, colour) in enumerate(lookups):
            init += [[0] * len(channels)] * (index * _LOOKUP_STRIDE - len(init))
            init += [[int(q) >> 1 for q in halved[:, colour, tap, n]]
                     for n in range(THERMOMETER_BITS + 1)]
        m.submodules[name] = rom = memory.Memory(
            shape=data.ArrayLayout(ENTRY_SHAPE, len(channels)), depth=len(init), init=init,
            attrs={"ram_style": "block"})
        return [rom.read_port() for _ in lookups]

    def elaborate(self, platform):
        m = Module()
        out_channels, colours = range(self.out_channels), range(self.colours)
        lookups = [(tap, colour) for tap in range(TAPS) for colour in colours]
        groups = [list(range(start, min(start + PORT_CHANNELS, self.out_channels)))
                  for start in range(0, self.out_channels, PORT_CHANNELS)]
        # ports[tap, colour][g]: the read port of the lookup's entries of channel group g.
        ports = {lookup: [] for lookup in lookups}
        for pair in range(0, len(lookups), 2):
            paired = lookups[pair:pair + 2]
            for group_index, group in enumerate(groups):
                read = self._memory(m, f"tables{pair // 2}_{group_index}", paired, group)
                for lookup, port in zip(paired, read):
                    ports[lookup].append(port)

        def read_tables(payload):
            for index, (tap, colour) in enumerate(lookups):
                address = Cat(payload.count[tap][colour], index % 2)
                m.d.comb += [port.addr.eq(address) for port in ports[tap, colour]]
            return {"low": [[payload.count[tap][c][0] for c in colours] for tap in range(TAPS)],
                    "valid": payload.valid}

        def value(stage, o, tap, colour):
            """``Q`` of channel ``o``'s table at the lookup's count: its low bit, then the
            entry. ``Q(n)`` has the parity of ``n + Q(0)``."""
            group_index, lane = divmod(o, PORT_CHANNELS)
            low = stage["low"][tap][colour] ^ (int(self.tables[o, colour, tap, 0] // 2) & 1)
            return Cat(low, ports[tap, colour][group_index].data[lane]).as_signed()

        # Padding taps are masked in the next stage, not behind the colour sums' adders.
        def sum_colours(stage):
            return {"tap_sums": [[sum(value(stage, o, tap, c) for c in colours)
                                  for tap in range(TAPS)] for o in out_channels],
                    "valid": stage["valid"]}

        def sum_threes(stage):
            valid = stage["valid"]
            return [[sum(Mux(valid[tap], per_tap[tap], 0) for tap in range(j, j + 3))
                     for j in range(0, TAPS, 3)] for per_tap in stage["tap_sums"]]

        # The sums of Q, doubled: the sums of T.
        def final_sum(partials):
            return {"sums": [sum(partial) << 1 for partial in partials]}

        advance = lockstep_pipeline(m, self.i, self.o,
                                    [read_tables, sum_colours, sum_threes, final_sum])
        m.d.comb += [port.en.eq(advance) for read in ports.values() for port in read]
        return m


class InputBatchNorm(wiring.Component):
    """conv1's BN: ``fm = Q(scale * sum + bias)`` per channel (docs/architecture.md §2.5).

    Each lane multiplies by its constant (shift-adds or a DSP, as synthesis prefers); the
    product is registered before the bias, the rounding and the saturation.

    Parameters
    ----------
    scale, bias : int arrays ``[lanes]``
        WT-code constants per lane.
    sum_width : int
        Width of the signed sums.

    Members
    -------
    i : In(stream.Signature(StructLayout({"sums": ArrayLayout(signed(sum_width), lanes)})))
        The conv sums.
    o : Out(stream.Signature(StructLayout({"fm": ArrayLayout(FM_SHAPE, lanes)})))
        The FM codes.

    Protocol
    --------
    Streams with back-pressure, a lock-step pipeline (:func:`rtl.pipeline.lockstep_pipeline`).

    Latency
    -------
    :attr:`latency` = 2 cycles.
    """

    latency = 2

    def __init__(self, scale, bias, sum_width=STEM_SUM_SHAPE.width):
        scale, bias = np.asarray(scale), np.asarray(bias)
        if scale.ndim != 1 or scale.shape != bias.shape or len(scale) == 0:
            raise ValueError(f"InputBatchNorm scale and bias must be vectors of one length, "
                             f"not {list(scale.shape)} and {list(bias.shape)}")
        check_wt_codes("InputBatchNorm", "scale", scale)
        check_wt_codes("InputBatchNorm", "bias", bias)
        check_positive_int("InputBatchNorm", "sum_width", sum_width, minimum=2)
        self.scale, self.bias = scale.astype(int), bias.astype(int)
        lanes = len(scale)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "sums": data.ArrayLayout(signed(sum_width), lanes)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "fm": data.ArrayLayout(FM_SHAPE, lanes)}))),
        })

    def elaborate(self, platform):
        m = Module()

        # The products (DSP48E2s where synthesis uses them) are registered at their outputs
        # (the DSPs' PREG, for Vivado); the bias, the rounding and the saturation follow.
        def scale(payload):
            return [payload.sums[k] * int(s) for k, s in enumerate(self.scale)]

        def batch_norm(products):
            return {"fm": [to_fm(product + int(b), WT_FRAC)
                           for product, b in zip(products, self.bias)]}

        lockstep_pipeline(m, self.i, self.o, [scale, batch_norm])
        return m
