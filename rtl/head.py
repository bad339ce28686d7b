"""The classifier head: global pool and fixed-point linear layer (docs/architecture.md §2.10)."""

import numpy as np
from amaranth.hdl import Array, Cat, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.fixedpoint import FM_FRAC, POOL_BITS, POOL_FRAC, WT_FRAC
from fracbnn_golden.fixedpoint import to_fm as golden_to_fm

from .fixedpoint import FM_SHAPE, saturate, to_fm, trunc_div_pow2
from .params import check_positive_int, check_wt_codes
from .popcount import lut

__all__ = ["Head", "head_latency"]

# Index bits a LUT of the weight ROM takes.
_LUT_INPUTS = 6
# The accumulator's fraction bits below an FM code's. An FM value adds nothing to them, so they
# change only when the sum saturates: to all ones at the maximum, to zeros at the minimum. The
# head keeps them as one bit, ``ones``, beside the ``high`` bits: the accumulator is
# ``high * 2**_LOW_BITS + ones * (2**_LOW_BITS - 1)``, and its saturating sum a narrow one.
_LOW_BITS = POOL_FRAC - FM_FRAC
_HIGH_SHAPE = signed(POOL_BITS - _LOW_BITS)


def _add_saturating(high, ones, fm):
    """The accumulator ``(high, ones)`` plus the FM code ``fm``, saturated to POOL_BITS: the
    high part saturates to its own range, and where it does the low bits go to all ones
    (maximum) or zeros (minimum)."""
    total = high + fm
    top = (1 << (_HIGH_SHAPE.width - 1)) - 1
    return (saturate(total, _HIGH_SHAPE.width),
            Mux(total > top, 1, Mux(total < -top - 1, 0, ones)))


def _handover_position(channels, lanes, pixels):
    """The position of the last transfer after whose addition the head starts the linear layer:
    the later positions are added while it reads the first ``channels - lanes`` channels, which
    the last transfer's group does not hold."""
    return max(0, pixels - 1 - (channels - lanes))


def head_latency(channels, pixels=1, lanes=None):
    """:attr:`Head.latency` of a head over ``channels`` channels with ``pixels`` positions of
    ``lanes`` channels per transfer (None: all channels, the longest), without building one."""
    return channels + 4 + _handover_position(channels, channels if lanes is None else lanes,
                                             pixels)


class Head(wiring.Component):
    """Global average pool of the last feature map and the linear classifier.

    Each input value is added to its channel's 32-bit accumulator (22 fraction bits),
    saturating after each addition, in arrival order: one position of a transfer per cycle,
    through one adder per lane shared by the channel groups (its accumulators kept as their top
    17 bits and one bit for the 15 below, which change only on saturation). After the last
    transfer the head computes, one channel per cycle, the pooled FM value
    ``Q(trunc(acc / positions))`` and ``y = Q(y + x[c] * w[c])`` for all classes at once (``y``
    starts at the bias; weights and bias re-rounded to FM), then offers the logits.

    Parameters
    ----------
    weight : int array ``[classes, channels]``
        WT codes (constants).
    bias : int array ``[classes]``
        WT codes (constants).
    lanes : int
        Channels per input transfer; a divisor of ``channels``.
    positions : int
        Pixels of the feature map; a power of two (the division is a shift) and a multiple of
        ``pixels``.
    pixels : int
        Positions per input transfer.

    Members
    -------
    i : In(stream.Signature(StructLayout({"fm": ArrayLayout(FM_SHAPE, pixels * lanes)})))
        The feature map as ``positions * channels / (lanes * pixels)`` transfers of
        ``pixels * lanes`` FM codes, position-major (for each run of ``pixels`` positions in
        row-major order, the channel groups in order: lane ``p * lanes + k`` of group ``g`` is
        channel ``g * lanes + k`` of the run's position ``p``).
    o : Out(stream.Signature(StructLayout({"logits": ArrayLayout(FM_SHAPE, classes)})))
        The logits (FM codes), one transfer per feature map.

    Protocol
    --------
    Streams with back-pressure. The head accepts a transfer every ``pixels`` cycles: it adds
    the transfer's first position as it accepts it and holds the later ones in a register,
    adding one per cycle with ``i.ready`` low. ``i.ready`` is also low from the last input
    transfer until the logits are taken.

    Latency
    -------
    The logits are valid :attr:`latency` = ``channels + 4`` cycles (:func:`head_latency`) after
    the last input transfer: one cycle per channel, then three for the last channel to be
    pooled, multiplied and added (one pipeline stage each, after its accumulator's selection),
    and one to offer the logits. The last transfer's later positions are added while the linear
    layer reads the ``channels - lanes`` channels before the last group; only where there are
    more of them (one group and several pixels) does it start as many cycles later:
    ``channels + 4 + max(0, pixels - 1 - (channels - lanes))`` in all.
    """

    def __init__(self, weight, bias, lanes=16, positions=64, pixels=1):
        weight, bias = np.asarray(weight), np.asarray(bias)
        if weight.ndim != 2 or bias.shape != weight.shape[:1] or weight.size == 0:
            raise ValueError(f"Head weight must be [classes, channels] and bias [classes], not "
                             f"{list(weight.shape)} and {list(bias.shape)}")
        check_wt_codes("Head", "weight", weight)
        check_wt_codes("Head", "bias", bias)
        check_positive_int("Head", "lanes", lanes)
        check_positive_int("Head", "positions", positions)
        check_positive_int("Head", "pixels", pixels)
        self.classes, self.channels = weight.shape
        if self.channels % lanes:
            raise ValueError(f"Head lanes={lanes} must divide the {self.channels} channels")
        if positions & (positions - 1):
            raise ValueError(f"Head positions={positions} must be a power of two")
        if positions % pixels:
            raise ValueError(f"Head pixels={pixels} must divide the {positions} positions")
        self.lanes, self.positions, self.pixels = lanes, positions, pixels
        self.latency = head_latency(self.channels, pixels, lanes)
        # The linear layer works in FM: parameters re-rounded from 8 to 7 fraction bits.
        self.weight_fm = golden_to_fm(weight.astype(np.int64), WT_FRAC)
        self.bias_fm = golden_to_fm(bias.astype(np.int64), WT_FRAC)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "fm": data.ArrayLayout(FM_SHAPE, pixels * lanes)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "logits": data.ArrayLayout(FM_SHAPE, self.classes)}))),
        })

    def elaborate(self, platform):
        m = Module()
        groups = self.channels // self.lanes
        highs = [Signal(_HIGH_SHAPE, name=f"acc{c}_high") for c in range(self.channels)]
        ones = [Signal(name=f"acc{c}_ones") for c in range(self.channels)]
        group = Signal(range(groups))
        image_transfers = self.positions // self.pixels * groups
        transfers = Signal(range(image_transfers))
        channel = Signal(range(self.channels + 3))
        linear = Signal()
        products, products_valid = self._pool_and_multiply(m, highs, ones, channel, linear,
                                                            platform)

        # The position of the current transfer added in this cycle: 0 as it is accepted, then
        # the later ones from `later`, rotated down a position per cycle (not shifted: at two
        # pixels the rotation is no change, and `later` only loads).
        position = Signal(range(self.pixels))
        accept, add, last_position = Signal(), Signal(), Signal()
        m.d.comb += [
            accept.eq(self.i.valid & self.i.ready),
            add.eq(accept | (position != 0)),
            last_position.eq(position == self.pixels - 1),
        ]
        values = [self.i.payload.fm[k] for k in range(self.lanes)]
        if self.pixels > 1:
            later = Signal(data.ArrayLayout(FM_SHAPE, (self.pixels - 1) * self.lanes))
            fm_bits = self.i.payload.fm.as_value()
            with m.If(accept):
                m.d.sync += later.eq(fm_bits[self.lanes * FM_SHAPE.width:])
            with m.Elif(add):
                m.d.sync += later.eq(later.as_value().rotate_right(self.lanes * FM_SHAPE.width))
            values = [Mux(position == 0, value, later[k]) for k, value in enumerate(values)]

        # Accumulate: lane k adds its value into channel group * lanes + k. The accumulators
        # clear as the logits are taken: here, not in the FSM's OUTPUT state, where Yosys found
        # no flip-flop enables and put a LUT in front of every accumulator bit.
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [part.eq(0) for part in highs + ones]
        with m.Elif(add):
            for k, value in enumerate(values):
                lane_highs, lane_ones = highs[k::self.lanes], ones[k::self.lanes]
                high, one = _add_saturating(
                    Cat(*lane_highs).word_select(group, _HIGH_SHAPE.width).as_signed(),
                    Cat(*lane_ones).bit_select(group, 1), value)
                for g in range(groups):
                    with m.If(group == g):
                        m.d.sync += [lane_highs[g].eq(high), lane_ones[g].eq(one)]
        with m.If(add):
            m.d.sync += position.eq(Mux(last_position, 0, position + 1))
            with m.If(last_position):
                m.d.sync += [
                    group.eq(Mux(group == groups - 1, 0, group + 1)),
                    transfers.eq(Mux(transfers == image_transfers - 1, 0, transfers + 1)),
                ]

        handover = _handover_position(self.channels, self.lanes, self.pixels)
        with m.FSM() as fsm:
            with m.State("ACCUMULATE"):
                with m.If(add & (transfers == image_transfers - 1) & (position == handover)):
                    m.next = "LINEAR"
            with m.State("LINEAR"):
                self._add_products(m, channel, products, products_valid)
            with m.State("OUTPUT"):
                with m.If(self.o.ready):
                    m.next = "ACCUMULATE"
        # Outside the FSM's states, so the Verilog has continuous assignments: Yosys writes
        # comb logic inside states as `always @*` blocks, which Icarus (-g2012) does not run at
        # time 0 while their inputs stay at their initial values (ready would read X).
        m.d.comb += [
            self.i.ready.eq(fsm.ongoing("ACCUMULATE") & (position == 0)),
            self.o.valid.eq(fsm.ongoing("OUTPUT")),
            linear.eq(fsm.ongoing("LINEAR")),
        ]
        return m

    def _weight_rom(self, m, index, platform):
        """The weights of channel ``index`` (one FM code per class), combinational: for up to 64
        channels one LUT6 per bit (:func:`rtl.popcount.lut` cells), else a lookup. Left to
        itself, logic synthesis shares the address decoding between the bits and chains it."""
        layout = data.ArrayLayout(FM_SHAPE, self.classes)
        words = [layout.const([int(self.weight_fm[k, c]) for k in range(self.classes)]).as_value()
                 for c in range(self.channels)]
        weights = Signal(layout, name="channel_weight_rom")
        if len(index) > _LUT_INPUTS:
            m.d.comb += weights.eq(Array(words)[index])
            return weights
        for bit in range(layout.size):
            table = sum(((words[c].value >> bit) & 1) << c for c in range(self.channels))
            output = Signal(name=f"channel_weight_rom{bit}")
            lut(m, list(index), table, output, platform)
            m.d.comb += weights.as_value()[bit].eq(output)
        return weights

    def _pool_and_multiply(self, m, highs, ones, channel, linear, platform):
        """The first three stages of the linear layer, for channel ``channel`` while ``linear``:
        cycle c selects channel c's accumulator and reads its weights, c + 1 pools it, c + 2
        multiplies it by every class's weight (a DSP48E2 per class, the product registered at
        its output: the DSP's PREG, for Vivado). Returns the products and their valid flag.
        The registers load in every cycle (only the valid flags depend on the FSM), so the
        state decode stays out of the datapath."""
        shift = (self.positions - 1).bit_length()
        index = channel[:Shape.cast(range(self.channels)).width]
        weights = self._weight_rom(m, index, platform)
        selected_high = Signal(_HIGH_SHAPE, name="pool_acc_high")
        selected_ones = Signal(name="pool_acc_ones")
        selected = Cat(selected_ones.replicate(_LOW_BITS), selected_high).as_signed()
        pooled = Signal(FM_SHAPE)
        selected_weights = Signal.like(weights, name="pool_acc_weights")
        channel_weights = Signal.like(weights, name="pool_weights")
        products = [Signal(signed(2 * FM_SHAPE.width), name=f"product{k}")
                    for k in range(self.classes)]
        selected_valid, pooled_valid, products_valid = Signal(), Signal(), Signal()
        # A word select (a shift, continuous in Verilog) rather than an Array (a case
        # statement in an `always @*`, X under Icarus until an accumulator changes).
        m.d.sync += [
            selected_high.eq(Cat(*highs).word_select(index, _HIGH_SHAPE.width)),
            selected_ones.eq(Cat(*ones).bit_select(index, 1)),
            selected_valid.eq(linear & (channel < self.channels)),
            pooled.eq(to_fm(trunc_div_pow2(selected, shift), POOL_FRAC)),
            selected_weights.eq(weights),
            channel_weights.eq(selected_weights),
            pooled_valid.eq(selected_valid),
            *(product.eq(pooled * channel_weights[k]) for k, product in enumerate(products)),
            products_valid.eq(pooled_valid),
        ]
        return products, products_valid

    def _add_products(self, m, channel, products, products_valid):
        """The LINEAR state: one channel per cycle, the logits start at the bias (channel 0)
        and add the products of each channel three cycles after its selection."""
        m.d.sync += channel.eq(channel + 1)
        logits = self.o.payload.logits
        with m.If(channel == 0):
            m.d.sync += [logits[k].eq(int(self.bias_fm[k])) for k in range(self.classes)]
        with m.Elif(products_valid):
            m.d.sync += [logits[k].eq(to_fm((logits[k] << FM_FRAC) + products[k], 2 * FM_FRAC))
                         for k in range(self.classes)]
        with m.If(channel == self.channels + 2):
            m.d.sync += channel.eq(0)
            m.next = "OUTPUT"
