"""Pipelined population count built as a LUT-friendly compressor tree.

The tree works on *columns*: a column holds bits of equal weight ``2**k``. Each tree level
replaces groups of up to six bits of one column by their count (a generalised parallel counter:
six bits of weight ``2**k`` become three bits of weights ``2**k``, ``2**(k+1)``, ``2**(k+2)``).
Every counter output is written as a lookup into its truth table over at most six inputs, so
synthesis maps it to exactly one LUT6 on Xilinx UltraScale+ and a 6:3 counter removes three bits
for three LUTs. The first level may count a function of several input signals per position (for
example the XOR of an activation and a weight bit): its counters then take ``6 // arity``
positions, so that function folds into the same LUTs. Once no column holds more than three bits,
one carry-propagate adder (carry chains) adds the remaining rows.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Popcount", "build_counter_tree", "default_popcount_stages", "popcount_levels"]

# Inputs of one LUT6: the widest function one LUT implements.
_LUT_INPUTS = 6
# Rows the final carry-propagate adder takes.
_FINAL_ROWS = 3


def _counter_output_width(n_inputs):
    return n_inputs.bit_length()


def _plan_level(heights):
    """Split every column of ``heights`` (weight -> bit count) into counter groups.

    Returns the groups (weight -> list of group sizes; groups of one or two bits pass through
    unchanged) and the column heights after the level.
    """
    groups = {}
    next_heights = {}

    def add(weight, count):
        next_heights[weight] = next_heights.get(weight, 0) + count

    for weight, height in sorted(heights.items()):
        sizes = [_LUT_INPUTS] * (height // _LUT_INPUTS)
        rest = height % _LUT_INPUTS
        if rest >= 5:
            sizes.append(rest)
        elif rest >= 3:
            # A 4:3 counter would spend three LUTs to remove one bit; a full adder removes the
            # same bit with two LUTs and the fourth bit waits for the next level.
            sizes += [3] + [1] * (rest - 3)
        elif rest:
            sizes.append(rest)
        groups[weight] = sizes
        for size in sizes:
            if size <= 2:
                add(weight, size)
            else:
                for bit in range(_counter_output_width(size)):
                    add(weight + bit, 1)
    return groups, next_heights


def popcount_levels(width, arity=1):
    """The counter groups of each compressor level of a ``width``-position tree.

    ``arity`` is the number of input signals per position; the first level groups
    ``6 // arity`` positions per counter. Returns a list with one entry per level
    (weight -> group sizes); the final adder comes after the last entry.
    """
    first = max(1, _LUT_INPUTS // arity)
    sizes = [first] * (width // first) + ([width % first] if width % first else [])
    heights = {}
    for size in sizes:
        for bit in range(_counter_output_width(size)):
            heights[bit] = heights.get(bit, 0) + 1
    levels = [{0: sizes}]
    while max(heights.values()) > _FINAL_ROWS:
        groups, heights = _plan_level(heights)
        levels.append(groups)
    return levels


def default_popcount_stages(width, arity=1):
    """A register after every second logic level of the tree (levels: the compressor levels
    and the final adder): at most two LUT levels, or one LUT level and a carry chain, between
    registers."""
    return (len(popcount_levels(width, arity)) + 2) // 2


def _truth_table(n_inputs, function):
    """The truth table of ``function`` (0/1 values of the inputs -> 0 or 1) as an integer:
    bit ``index`` holds the result for input ``n`` = bit ``n`` of ``index``."""
    table = 0
    for index in range(1 << n_inputs):
        table |= function(tuple((index >> n) & 1 for n in range(n_inputs))) << index
    return table


def _lut(m, inputs, table, output, platform):
    """Drive ``output`` from ``inputs`` (at most six) through the truth table ``table``.

    If the platform has ``get_lut(inputs, table, output)`` (see :mod:`rtl.synth`), the function
    becomes the LUT primitive it returns, so logic synthesis keeps the tree as designed. Otherwise
    it is a lookup into a constant, which is what simulation uses.
    """
    if hasattr(platform, "get_lut"):
        m.submodules[output.name] = platform.get_lut(inputs, table, output)
    else:
        m.d.comb += output.eq(Const(table, 1 << len(inputs)).bit_select(Cat(*inputs), 1))


def _counter(m, positions, value, weight, name, platform):
    """Outputs (weight, bit) of a counter of ``value`` over ``positions``.

    ``positions`` is a list of tuples of input signals, ``value`` maps the 0/1 values of one
    position's signals to 0 or 1. Each output is a named signal: this keeps the netlist a tree of
    small functions instead of one expression nested through every level.
    """
    arity = len(positions[0])
    flat = [signal for position in positions for signal in position]

    def count(values):
        return sum(value(values[n:n + arity]) for n in range(0, len(values), arity))

    outputs = []
    for bit in range(_counter_output_width(len(positions))):
        signal = Signal(name=f"{name}_{bit}")
        table = _truth_table(len(flat), lambda values, bit=bit: (count(values) >> bit) & 1)
        _lut(m, flat, table, signal, platform)
        outputs.append((weight + bit, signal))
    return outputs


def _single_bit(values):
    return values[0]


def build_counter_tree(m, positions, value, stages, en, platform=None, name="tree"):
    """Add a pipelined counter of ``value`` over ``positions`` to ``m`` and return its sum.

    ``positions`` is a list of equal-length tuples of 1-bit signals; ``value`` maps the 0/1 values
    of one position to 0 or 1 (a popcount counts single bits with ``value(v) = v[0]``). The sum
    is ``stages`` cycles late; registers load while ``en`` is high. Registers are spread evenly
    over the logic levels (the compressor levels, then the final adder); stages beyond the
    number of levels delay the result further. ``platform`` may supply LUT primitives (see
    :func:`_lut`).
    """
    levels = popcount_levels(len(positions), len(positions[0]))
    n_logic = len(levels) + 1
    in_tree = min(stages, n_logic)
    registered_after = {(k * n_logic) // in_tree - 1 for k in range(1, in_tree + 1)}

    def register(value, register_name):
        reg = Signal.like(value, name=register_name)
        with m.If(en):
            m.d.sync += reg.eq(value)
        return reg

    columns = {}
    remaining = list(positions)
    for group_index, size in enumerate(levels[0][0]):
        group, remaining = remaining[:size], remaining[size:]
        for weight, bit in _counter(m, group, value, 0, f"{name}_l0_g{group_index}", platform):
            columns.setdefault(weight, []).append(bit)

    for index, groups in enumerate(levels):
        if index:
            columns = _compress(m, columns, groups, f"{name}_l{index}", platform)
        if index in registered_after:
            columns = {
                weight: [register(bit, f"{name}_r{index}_w{weight}_{n}")
                         for n, bit in enumerate(bits)]
                for weight, bits in columns.items()
            }

    total = _add_rows(columns)
    if len(levels) in registered_after:
        total = register(total, f"{name}_sum")
    for n in range(stages - in_tree):
        total = register(total, f"{name}_delay{n}")
    return total


def _compress(m, columns, groups, name, platform):
    next_columns = {}
    for weight, sizes in groups.items():
        bits = list(columns[weight])
        for group_index, size in enumerate(sizes):
            group, bits = bits[:size], bits[size:]
            if size <= 2:
                next_columns.setdefault(weight, []).extend(group)
                continue
            outputs = _counter(m, [(bit,) for bit in group], _single_bit, weight,
                               f"{name}_w{weight}_g{group_index}", platform)
            for out_weight, bit in outputs:
                next_columns.setdefault(out_weight, []).append(bit)
    return next_columns


def _add_rows(columns):
    width = max(columns) + 1
    rows = [
        Cat(*(columns.get(w, [])[row] if len(columns.get(w, [])) > row else Const(0, 1)
              for w in range(width)))
        for row in range(max(len(bits) for bits in columns.values()))
    ]
    return sum(rows[1:], rows[0])


class Popcount(wiring.Component):
    """Number of set bits of ``i``, pipelined.

    Parameters
    ----------
    width : int
        Number of input bits (at least 1).
    stages : int
        Pipeline registers between ``i`` and ``o`` (0 makes it combinational). Registers are
        spread evenly over the tree levels (the compressor levels plus the final adder); stages
        beyond the number of levels delay the result further.

    Attributes
    ----------
    i : In(width)
        Bits to count.
    en : In(1), init 1
        Pipeline enable: every pipeline register loads only while ``en`` is high, so a stalled
        pipeline keeps its contents.
    o : Out(range(width + 1))
        ``popcount(i)`` as it was ``latency`` enabled cycles earlier.
    latency : int
        Equal to ``stages``.
    """

    def __init__(self, width, stages=0):
        if not isinstance(width, int) or isinstance(width, bool):
            raise TypeError(f"Popcount width must be an integer, not {width!r}")
        if width < 1:
            raise ValueError(f"Popcount width must be at least 1, not {width}")
        if not isinstance(stages, int) or isinstance(stages, bool):
            raise TypeError(f"Popcount stages must be an integer, not {stages!r}")
        if stages < 0:
            raise ValueError(f"Popcount stages must be 0 or more, not {stages}")
        self.width = width
        self.stages = stages
        self.latency = stages
        super().__init__({
            "i": In(width),
            "en": In(1, init=1),
            "o": Out(range(width + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        positions = [(self.i[n],) for n in range(self.width)]
        total = build_counter_tree(m, positions, _single_bit, self.stages, self.en, platform)
        m.d.comb += self.o.eq(total)
        return m
