"""An array of XNOR-popcount processing elements (binary multiply-accumulate)."""

from amaranth.hdl import Cat, Module, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .popcount import build_counter_tree, default_popcount_stages, lut, truth_table

__all__ = ["XnorPopcount", "XnorPopcountArray", "array_latency", "beat_layout", "count_mask",
           "sums_layout"]


def _differ(values):
    activation, weight = values
    return activation ^ weight


def _differ_where_valid(values):
    activation, weight, valid = values
    return (activation ^ weight) & valid


class XnorPopcount(wiring.Component):
    """``popcount((a XOR w) & valid)`` of ``width``-bit words, pipelined: the datapath of one PE.

    The XOR (and the mask) fold into the first level of the compressor tree
    (:func:`rtl.popcount.build_counter_tree`): full-adder chains whose head LUT6s count three
    (a, w) pairs and whose links add two more pairs to the running sum bit in one ``LUT6_2``;
    when ``masked``, LUT6 heads count two (a, w, valid) triples and ``LUT6_2`` links merge two
    sum bits with one more triple. Synthesised for UltraScale+ (:mod:`synth`), 576 pairs
    cost about 0.9 LUT per pair including the XOR and the whole tree.

    Parameters
    ----------
    width : int
        Bits per word.
    stages : int or None
        Pipeline registers from the inputs to ``o`` (the latency); by default one per about two
        LUT levels of the tree (:func:`rtl.popcount.default_popcount_stages`).
    masked : bool
        With a ``valid`` input (bits where it is 0 are not counted); without, all bits count.

    Members
    -------
    a, w : In(width)
        The two words.
    valid : In(width), only when ``masked``
        Which bits count.
    en : In(1, init=1)
        Pipeline enable.
    o : Out(range(width + 1))
        The count.

    Protocol
    --------
    Registers load only while ``en`` is high, so a stalled pipeline keeps its contents.

    Latency
    -------
    ``o`` is the count of the inputs :attr:`latency` = ``stages`` enabled cycles earlier.
    """

    def __init__(self, width, stages=None, *, masked=False):
        _check_positive_int("width", width, owner="XnorPopcount")
        arity = 3 if masked else 2
        if stages is None:
            stages = default_popcount_stages(width, arity)
        if not isinstance(stages, int) or isinstance(stages, bool) or stages < 0:
            raise ValueError(f"XnorPopcount parameter stages must be an integer >= 0, "
                             f"not {stages!r}")
        self.width = width
        self.masked = masked
        self.latency = stages
        ports = {"a": In(width), "w": In(width)}
        if masked:
            ports["valid"] = In(width)
        ports.update({"en": In(1, init=1), "o": Out(range(width + 1))})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        if self.masked:
            operands, value = (self.a, self.w, self.valid), _differ_where_valid
        else:
            operands, value = (self.a, self.w), _differ
        total = build_counter_tree(m, operands, value, self.latency, self.en, platform)
        m.d.comb += self.o.eq(total)
        return m


def _check_positive_int(name, value, owner="XnorPopcountArray"):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{owner} parameter {name} must be an integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{owner} parameter {name} must be at least 1, not {value}")


def _value(bits):
    return sum(bit << n for n, bit in enumerate(bits))


# Counts up to this wide are compared in one LUT level (one LUT6 per mask bit), up to twice as
# wide in two (the high and the low half compared, then a LUT3 per mask bit).
_LUT_INPUTS = 6


def count_mask(m, count, bits, platform, name):
    """A ``bits``-bit signal added to ``m`` whose bit ``n`` is ``count > n``.

    Each bit is one LUT of the count or, for counts of 7 to 12 bits, two LUT levels, as
    :func:`rtl.popcount.lut` cells (LUT primitives when ``platform`` supplies them): left to
    itself, logic synthesis shares the comparisons between neighbouring bits and so chains them
    (seven LUT2s in series for a 10-bit count). Wider counts are plain comparisons.
    """
    width = len(count)
    if width > 2 * _LUT_INPUTS:
        mask = Signal(bits, name=name)
        m.d.comb += mask.eq(Cat(count > n for n in range(bits)))
        return mask

    def compare(inputs, function, label):
        output = Signal(name=f"{name}_{label}")
        table = truth_table(len(inputs), lambda v: int(function(_value(v))))
        lut(m, list(inputs), table, output, platform)
        return output

    if width <= _LUT_INPUTS:
        return Cat(*(compare(count, lambda c, n=n: c > n, str(n)) for n in range(bits)))
    # count > n  <=>  high > n_high, or high == n_high and low > n_low.
    low_bits = width // 2
    low, high = count[:low_bits], count[low_bits:]
    low_max = (1 << low_bits) - 1
    high_above, high_equal, low_above = {}, {}, {}
    mask = []
    for n in range(bits):
        n_high, n_low = n >> low_bits, n & low_max
        if n_high not in high_above:
            high_above[n_high] = compare(high, lambda c, k=n_high: c > k, f"h_gt{n_high}")
        if n_low == low_max:
            # The low part is never above its maximum.
            mask.append(high_above[n_high])
            continue
        if n_high not in high_equal:
            high_equal[n_high] = compare(high, lambda c, k=n_high: c == k, f"h_eq{n_high}")
        if n_low not in low_above:
            low_above[n_low] = compare(low, lambda c, k=n_low: c > k, f"l_gt{n_low}")
        mask.append(compare((high_above[n_high], high_equal[n_high], low_above[n_low]),
                            lambda c: (c & 1) | ((c >> 1) & (c >> 2) & 1), str(n)))
    return Cat(*mask)


def beat_layout(pe, simd, groups=1):
    """Payload of one input beat.

    ``activations``: SIMD activation bits shared by all PEs; ``weights``: one SIMD-bit word per PE;
    ``count``: how many low bits of the words are valid (0..SIMD), or with ``groups > 1`` one such
    count per group of ``simd // groups`` bits (group ``g`` holds bits ``g * simd // groups``
    upwards); ``last``: this beat ends the accumulation.
    """
    group_bits = simd // groups
    count = range(simd + 1) if groups == 1 else data.ArrayLayout(range(group_bits + 1), groups)
    return data.StructLayout({
        "activations": simd,
        "weights": data.ArrayLayout(simd, pe),
        "count": count,
        "last": 1,
    })


def sums_layout(pe, acc_width):
    """Payload of one output: the signed sum of each PE."""
    return data.ArrayLayout(signed(acc_width), pe)


def array_latency(simd, popcount_stages=None):
    """The latency of an :class:`XnorPopcountArray` of ``simd`` input bits (with its default
    popcount stages when ``popcount_stages`` is None), without building one: one input
    register, the popcount tree, one accumulator/output register."""
    if popcount_stages is None:
        popcount_stages = default_popcount_stages(simd, arity=3)
    return popcount_stages + 2


class XnorPopcountArray(wiring.Component):
    """PE output channels times SIMD input bits of binary multiply-accumulate per cycle.

    Every beat carries one activation word, one weight word per PE and a bit count ``count``.
    PE ``p`` adds the dot product of the two ±1 vectors held in the low ``count`` bits (bit
    value 1 stands for +1)::

        count - 2 * popcount((activations XOR weights[p]) & low_mask(count))

    to its accumulator. Bits at or above ``count`` are ignored, so a beat with ``count == 0``
    (a zero-padded tap) adds 0 and a partly filled last word works. With ``groups > 1`` the
    words are split into ``groups`` equal groups (e.g. the 9 taps of a window side by side),
    each with its own count, and the PE adds the sum of the groups' dot products. The beat with
    ``last`` set closes the accumulation: the PE sums go out as one ``o`` transfer and the
    accumulators restart from 0. An accumulation is any number of beats up to ``max_beats``,
    e.g. the 9 taps of a 3x3 kernel times the input-channel words.

    Parameters
    ----------
    pe : int
        Number of processing elements (output channels), at least 1.
    simd : int
        Bits per activation and weight word, at least 1.
    max_beats : int
        Longest accumulation the sums must hold without overflow; sets the default
        ``acc_width``.
    acc_width : int or None
        Width of the signed sums; at least the width that holds ``±max_beats * simd``
        (the default).
    popcount_stages : int or None
        Pipeline registers inside the popcount tree; by default one per about two LUT levels of
        the tree.
    groups : int
        Number of bit groups with a count each; must divide ``simd``.

    Members
    -------
    i : In(stream.Signature(beat_layout(pe, simd, groups)))
        The beats: ``activations``, ``weights[p]``, ``count`` and ``last``
        (:func:`beat_layout`).
    o : Out(stream.Signature(sums_layout(pe, acc_width)))
        The sums of an accumulation, ``o.payload[p]`` of PE ``p``.

    Protocol
    --------
    ``i`` and ``o`` are ``amaranth.lib.stream`` interfaces; a transfer happens in a cycle where
    ``valid`` and ``ready`` are both high. ``o.valid`` does not depend on ``o.ready``;
    ``i.ready`` does (combinationally): the pipeline advances whenever its output register is
    empty or being emptied, so one beat per cycle streams through unless ``o`` stalls.
    Synchronous reset empties the pipeline and clears the accumulators.

    Latency
    -------
    The sums of an accumulation whose ``last`` beat transfers on ``i`` in cycle ``t`` are valid
    on ``o`` from cycle ``t + latency`` on, with :attr:`latency` = ``popcount_stages + 2`` (one
    input register, the popcount tree, one accumulator/output register; :func:`array_latency`),
    if ``o`` does not stall.
    """

    def __init__(self, pe, simd, max_beats, acc_width=None, popcount_stages=None, groups=1):
        _check_positive_int("pe", pe)
        _check_positive_int("simd", simd)
        _check_positive_int("max_beats", max_beats)
        _check_positive_int("groups", groups)
        if simd % groups:
            raise ValueError(f"XnorPopcountArray parameter groups={groups} must divide "
                             f"simd={simd}")
        min_acc_width = Shape.cast(range(-max_beats * simd, max_beats * simd + 1)).width
        if acc_width is None:
            acc_width = min_acc_width
        _check_positive_int("acc_width", acc_width)
        if acc_width < min_acc_width:
            raise ValueError(
                f"XnorPopcountArray parameter acc_width={acc_width} cannot hold "
                f"±{max_beats} * {simd}: it needs at least {min_acc_width} bits")
        self.pe = pe
        self.simd = simd
        self.groups = groups
        self.max_beats = max_beats
        self.acc_width = acc_width
        if popcount_stages is None:
            popcount_stages = default_popcount_stages(simd, arity=3)
        if (not isinstance(popcount_stages, int) or isinstance(popcount_stages, bool)
                or popcount_stages < 0):
            raise ValueError(f"XnorPopcountArray parameter popcount_stages must be an integer "
                             f">= 0, not {popcount_stages!r}")
        self.popcount_stages = popcount_stages
        self.latency = array_latency(simd, popcount_stages)
        super().__init__({
            "i": In(stream.Signature(beat_layout(pe, simd, groups))),
            "o": Out(stream.Signature(sums_layout(pe, acc_width))),
        })

    def elaborate(self, platform):
        m = Module()
        # The whole pipeline moves in lock step; it only holds still while a finished result
        # waits in the output register for a consumer that is not ready.
        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]

        # Shared by all PEs: bit n of a word (of a group) counts iff n < count (of the group).
        # Decoded from the counts in front of the input register, so that the trees start
        # from registered mask bits.
        counts = [self.i.payload.count] if self.groups == 1 else \
            [self.i.payload.count[g] for g in range(self.groups)]
        group_bits = self.simd // self.groups
        mask = Cat(*(count_mask(m, count, group_bits, platform, f"mask{g}_")
                     for g, count in enumerate(counts)))

        beat = Signal(beat_layout(self.pe, self.simd, self.groups))
        beat_valid = Signal()
        valid_bits = Signal(self.simd)
        with m.If(advance):
            m.d.sync += [
                beat.eq(self.i.payload),
                beat_valid.eq(self.i.valid),
                valid_bits.eq(mask),
            ]
        valid_count = beat.count if self.groups == 1 else \
            sum(beat.count[g] for g in range(self.groups))
        popcounts = [XnorPopcount(self.simd, self.popcount_stages, masked=True)
                     for _ in range(self.pe)]
        for index, popcount in enumerate(popcounts):
            m.submodules[f"popcount{index}"] = popcount
            m.d.comb += [
                popcount.en.eq(advance),
                popcount.a.eq(beat.activations),
                popcount.w.eq(beat.weights[index]),
                popcount.valid.eq(valid_bits),
            ]

        # Count, last and valid travel beside the popcount tree with the same latency.
        tree_count, tree_last, tree_valid = valid_count, beat.last, beat_valid
        for stage in range(self.popcount_stages):
            delayed = (Signal(range(self.simd + 1), name=f"count_d{stage}"),
                       Signal(name=f"last_d{stage}"), Signal(name=f"valid_d{stage}"))
            with m.If(advance):
                m.d.sync += [reg.eq(value) for reg, value
                             in zip(delayed, (tree_count, tree_last, tree_valid))]
            tree_count, tree_last, tree_valid = delayed

        self._accumulate(m, advance, popcounts, tree_count, tree_last, tree_valid)
        return m

    def _accumulate(self, m, advance, popcounts, count, last, valid):
        accumulators = Signal(sums_layout(self.pe, self.acc_width))
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid & last)
            with m.If(valid):
                for index, popcount in enumerate(popcounts):
                    dot = count - (popcount.o << 1)
                    total = accumulators[index] + dot
                    with m.If(last):
                        m.d.sync += [
                            self.o.payload[index].eq(total),
                            accumulators[index].eq(0),
                        ]
                    with m.Else():
                        m.d.sync += accumulators[index].eq(total)
