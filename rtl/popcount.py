"""Pipelined population count built as a compressor tree for LUT6 / CARRY8 fabric.

The tree works on *columns*: a column holds bits of equal weight ``2**k``. It is built from
three kinds of cells, each of which maps to exactly one Xilinx UltraScale+ primitive when the
platform supplies them (see :class:`rtl.primitives.LutPrimitives`), and to plain logic otherwise
(simulation):

* ``LUT1``..``LUT6``: any function of up to six inputs;
* ``LUT6_2``: two functions (outputs ``O6`` and ``O5``) of the same five inputs, one physical
  LUT;
* ``CARRY8`` carry chains: position ``i`` of a chain takes a select bit ``S`` (always the
  ``O6`` of the position's LUT) and a data bit ``DI`` and computes ``O = S ^ C`` and the next
  carry ``S ? C : DI``; in effect every position adds two operand bits and the carry.

Levels of the tree:

1. The first level counts a function of several input signals per position (e.g. the XOR of an
   activation and a weight bit) and absorbs that function into its LUTs. With two signals per
   position it is built from *full-adder chains*: a head counts three positions with two LUT6
   (sum and carry), then every link is one ``LUT6_2`` that adds two more positions to the
   running sum bit (five inputs: two pairs and the sum). A chain of ``k`` links removes
   ``k + 1`` bits with ``k + 2`` LUTs. With three signals per position (a mask), heads count
   two positions with two LUT6 and links (one position plus two sum bits in a ``LUT6_2``) merge
   the heads' sum bits in a tree.
2. Compressor levels of generalised parallel counters on carry chains: up to six bits of one
   column enter two chain positions (the low LUT6 takes the parity of the six bits, the sixth
   bit is also the position's ``DI``; the high ``LUT6_2`` gives the two operands
   ``[count >= 2]`` and ``[count >= 4]`` of the other five), so a 6:3 counter costs two LUTs
   instead of three. A counter that starts a chain takes its sixth bit as the chain's carry in
   instead. Counters of columns ``c`` and ``c + 2`` share a chain, which absorbs the carry of
   the lower one: a ``(6, 0, 6; 5)`` counter costs four LUTs. Three leftover bits start a
   chain as a full adder (two bits in a LUT, the third as the chain's carry in); two leftover
   bits join a chain that passes their column.
3. Once every column holds at most three bits (the lowest at most four), one *ternary adder*
   on a carry chain adds them: position ``i`` adds the parity of its column and the majority of
   the column below (the ``O5`` of the previous LUT), one LUT per column.

Simulating the tree cell by cell is what verifies it, but it is slow: a whole accelerator holds
32 trees of about 130 LUTs each. A platform whose ``behavioural_popcount`` attribute is true
(:class:`BehaviouralPopcount`) gets instead a word-level count with the same registers and
latency (:func:`behavioural_count`), the same function by construction;
``tests/test_popcount.py`` checks the two equal, cycle by cycle, on the accelerator's trees.
"""

from dataclasses import dataclass, field
from functools import cache

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BehaviouralPopcount", "Popcount", "PopcountPlan", "behavioural_count",
           "build_counter_tree", "default_popcount_stages", "lut", "popcount_plan",
           "truth_table"]

# Positions of one CARRY8; a DUAL_CY4 CARRY8 holds two independent chains of up to four.
_CARRY_POSITIONS = 8
_HALF_CARRY = 4
# Bits per column the final (ternary) adder takes; its lowest column takes one more.
_FINAL_HEIGHT = 3
# Positions one full-adder chain of the first level aims at (head of 3 + links of 2): a
# longer chain is slightly cheaper but deeper (head plus one LUT level per link).
_CHAIN_POSITIONS = 9
# Positions one group of the three-signal first level aims at (4 heads of 2 + 3 links).
_TRIPLE_GROUP = 11


def truth_table(n_inputs, function):
    """The truth table of ``function`` (0/1 values of the inputs -> 0 or 1) as an integer:
    bit ``index`` holds the result for input ``n`` = bit ``n`` of ``index``."""
    table = 0
    for index in range(1 << n_inputs):
        table |= (function(tuple((index >> n) & 1 for n in range(n_inputs))) & 1) << index
    return table


def _parity(values):
    return sum(values) & 1


def lut(m, inputs, table, output, platform):
    """Drive ``output`` from ``inputs`` (at most six) through the truth table ``table``.

    If the platform has ``get_lut(inputs, table, output)`` (see :mod:`rtl.primitives`), the function
    becomes the LUT primitive it returns, so logic synthesis keeps the tree as designed. Otherwise
    it is a lookup into a constant, which is what simulation uses.
    """
    if hasattr(platform, "get_lut"):
        m.submodules[output.name] = platform.get_lut(inputs, table, output)
    else:
        m.d.comb += output.eq(Const(table, 1 << len(inputs)).bit_select(Cat(*inputs), 1))


@dataclass
class _Chain:
    """A carry chain being assembled: its carry in and its (select, data) positions."""

    start: int                  # weight of the first position
    carry_in: object
    positions: list = field(default_factory=list)

    @property
    def end(self):
        """Weight of the carry out."""
        return self.start + len(self.positions)


class _Builder:
    """The cells of one compressor tree. With ``m`` None it only counts them (planning)."""

    def __init__(self, m, platform, name):
        self.m = m
        self.platform = platform
        self.name = name
        self.luts = 0
        self.carry8 = 0
        self._chains = []
        self._serial = 0

    def _signal(self, label):
        self._serial += 1
        return Signal(name=f"{self.name}_{label}{self._serial}")

    def _table(self, inputs, table, output):
        if self.m is not None:
            lut(self.m, inputs, table, output, self.platform)

    def lut(self, inputs, function, label):
        """One LUT: ``function`` of up to six inputs."""
        assert 1 <= len(inputs) <= 6
        self.luts += 1
        output = self._signal(label)
        if self.m is not None:
            self._table(inputs, truth_table(len(inputs), function), output)
        return output

    def lut6_2(self, inputs, function6, function5, label):
        """One ``LUT6_2``: outputs ``function6`` and ``function5`` of up to five inputs."""
        assert 1 <= len(inputs) <= 5
        self.luts += 1
        o6, o5 = self._signal(label + "_o6_"), self._signal(label + "_o5_")
        if self.m is not None:
            table6 = truth_table(len(inputs), function6)
            table5 = truth_table(len(inputs), function5)
            if hasattr(self.platform, "get_lut6_2"):
                self.m.submodules[o6.name] = self.platform.get_lut6_2(
                    inputs, table6, table5, o6, o5)
            else:
                self._table(inputs, table6, o6)
                self._table(inputs, table5, o5)
        return o6, o5

    def close(self, chain, emit):
        """Finish ``chain``: its sum bits and carry out go to ``emit(weight, bit)``."""
        outputs = [self._signal("o") for _ in chain.positions]
        carry_out = self._signal("co")
        self._chains.append((chain.carry_in, chain.positions, outputs, carry_out))
        for offset, bit in enumerate(outputs):
            emit(chain.start + offset, bit)
        emit(chain.end, carry_out)

    def finish(self):
        """Place the carry chains in CARRY8 cells (or plain logic without the primitive)."""
        chains, self._chains = self._chains, []
        short = [chain for chain in chains if len(chain[1]) <= _HALF_CARRY]
        long = [chain for chain in chains if len(chain[1]) > _HALF_CARRY]
        self.carry8 += (len(short) + 1) // 2
        self.carry8 += sum(-(-len(chain[1]) // _CARRY_POSITIONS) for chain in long)
        if self.m is None:
            return
        if not hasattr(self.platform, "get_carry8"):
            for carry_in, positions, outputs, carry_out in chains:
                carry = carry_in
                for (select, data), output in zip(positions, outputs):
                    self.m.d.comb += output.eq(select ^ carry)
                    carry = Mux(select, carry, data)
                self.m.d.comb += carry_out.eq(carry)
            return
        # Two short chains share a CARRY8 in DUAL_CY4 mode (lower and upper four positions).
        for index in range(0, len(short), 2):
            self._carry8([(0, *short[index])] +
                         ([(_HALF_CARRY, *short[index + 1])] if index + 1 < len(short) else []))
        for carry_in, positions, outputs, carry_out in long:
            for block in range(0, len(positions), _CARRY_POSITIONS):
                last = block + _CARRY_POSITIONS >= len(positions)
                block_out = carry_out if last else self._signal("cascade")
                self._carry8([(0, carry_in, positions[block:block + _CARRY_POSITIONS],
                               outputs[block:block + _CARRY_POSITIONS], block_out)])
                carry_in = block_out

    def _carry8(self, parts):
        """One CARRY8 holding ``parts``: (first position, carry in, positions, outputs, carry
        out) each; two parts make it DUAL_CY4."""
        select = [Const(0, 1)] * _CARRY_POSITIONS
        data = [Const(0, 1)] * _CARRY_POSITIONS
        self._serial += 1
        sums = Signal(_CARRY_POSITIONS, name=f"{self.name}_carry{self._serial}_o")
        carries = Signal(_CARRY_POSITIONS, name=f"{self.name}_carry{self._serial}_co")
        carry_ins = [Const(0, 1), None]
        for first, carry_in, positions, outputs, carry_out in parts:
            carry_ins[first // _HALF_CARRY] = carry_in
            for offset, ((s, di), output) in enumerate(zip(positions, outputs)):
                select[first + offset], data[first + offset] = s, di
                self.m.d.comb += output.eq(sums[first + offset])
            self.m.d.comb += carry_out.eq(carries[first + len(positions) - 1])
        self.m.submodules[sums.name] = self.platform.get_carry8(
            carry_ins[0], carry_ins[1], Cat(*data), Cat(*select), sums, carries)


class _Columns:
    """Bits by weight, for the next level."""

    def __init__(self):
        self.bits = {}

    def emit(self, weight, bit):
        self.bits.setdefault(weight, []).append(bit)


# ---- first level ------------------------------------------------------------------------------

def _count_function(value, arity):
    def count(values):
        return sum(value(values[n:n + arity]) for n in range(0, len(values), arity))
    return count


def _pair_chain_lengths(n):
    """Positions of each full-adder chain over ``n >= 3`` positions: a head of three, links
    of two, and at most one link of one (which adds one position to the sum bit)."""
    chains = max(1, min(n // 3, round(n / _CHAIN_POSITIONS)))
    links, half = divmod(n - 3 * chains, 2)
    lengths = [3 + 2 * (links // chains + (index < links % chains)) for index in range(chains)]
    lengths[-1] += half
    return lengths


def _first_level_pairs(builder, positions, value):
    """Full-adder chains over positions of two signals (see the module documentation)."""
    out = _Columns()
    count = _count_function(value, 2)
    n = len(positions)
    if n <= 2:
        flat = [signal for position in positions for signal in position]
        if n == 1:
            out.emit(0, builder.lut(flat, count, "x"))
        else:
            s, c = builder.lut6_2(flat, lambda v: count(v) & 1, lambda v: count(v) >> 1, "ha")
            out.emit(0, s)
            out.emit(1, c)
        return out.bits
    remaining = list(positions)
    for index, length in enumerate(_pair_chain_lengths(n)):
        group, remaining = remaining[:length], remaining[length:]
        head = [signal for position in group[:3] for signal in position]
        s = builder.lut(head, lambda v: count(v) & 1, f"c{index}_s")
        out.emit(1, builder.lut(head, lambda v: count(v) >> 1, f"c{index}_c"))
        for start in range(3, length, 2):
            link = [signal for position in group[start:start + 2] for signal in position] + [s]
            s, c = builder.lut6_2(link, lambda v: (count(v[:-1]) + v[-1]) & 1,
                                  lambda v: (count(v[:-1]) + v[-1]) >> 1, f"c{index}_l")
            out.emit(1, c)
        out.emit(0, s)
    return out.bits


def _first_level_triples(builder, positions, value):
    """Heads of two positions of three signals, their sum bits merged by links of one
    position and two sum bits (see the module documentation)."""
    out = _Columns()
    count = _count_function(value, 3)
    remaining = list(positions)
    group_index = 0
    while remaining:
        n = min(len(remaining), _TRIPLE_GROUP)
        if len(remaining) - n < 3:
            n = len(remaining)
        group, remaining = remaining[:n], remaining[n:]
        heads = min(-(-(n + 1) // 3), n)
        links = max(0, n - 2 * heads)
        head_positions, link_positions = group[:n - links], group[n - links:]
        sums = []
        for index in range(heads):
            members = head_positions[index::heads]
            flat = [signal for position in members for signal in position]
            label = f"g{group_index}h{index}"
            sums.append(builder.lut(flat, lambda v: count(v) & 1, label + "_s"))
            if len(members) > 1:
                out.emit(1, builder.lut(flat, lambda v: count(v) >> 1, label + "_c"))
        for index, position in enumerate(link_positions):
            inputs = list(position) + sums[:2]
            sums = sums[2:]
            s, c = builder.lut6_2(inputs, lambda v: (count(v[:3]) + v[3] + v[4]) & 1,
                                  lambda v: (count(v[:3]) + v[3] + v[4]) >> 1,
                                  f"g{group_index}l{index}")
            sums.append(s)
            out.emit(1, c)
        for s in sums:
            out.emit(0, s)
        group_index += 1
    return out.bits


def _first_level_generic(builder, positions, value):
    """One LUT per position (for three or more signals per position without a better
    scheme)."""
    return {0: [builder.lut(list(position), value, "x") for position in positions]}


def _first_level(builder, positions, value):
    arity = len(positions[0])
    if arity == 1:
        return {0: [position[0] for position in positions]}
    if arity == 2:
        return _first_level_pairs(builder, positions, value)
    if arity == 3:
        return _first_level_triples(builder, positions, value)
    return _first_level_generic(builder, positions, value)


# ---- compressor levels ------------------------------------------------------------------------

def _fits_final(columns):
    lowest = min(columns)
    return all(len(bits) <= _FINAL_HEIGHT + (weight == lowest)
               for weight, bits in columns.items())


def _counter_positions(builder, bits, label, start=False):
    """The two chain positions of a counter of 4..6 bits of one column: (select, data) of the
    low position (weight of the bits) and of the high one.

    Inside a chain the low LUT6 takes the parity of all bits and the last bit is also the
    position's data bit (through the bypass input). A counter that starts a chain (``start``)
    instead takes the last bit as the chain's carry in and passes the fifth bit to the data input
    through the ``O5`` of the low LUT; it returns the carry in as a third item."""
    if start:
        carry_in, bits = bits[-1], bits[:-1]
    rest, raw = bits[:-1], bits[-1]
    if start:
        low = builder.lut6_2(bits, _parity, lambda v: v[-1], label + "_p")
    else:
        low = (builder.lut(bits, _parity, label + "_p"), raw)
    if len(rest) >= 4:
        high = builder.lut6_2(rest, lambda v: (sum(v) >= 2) ^ (sum(v) >= 4),
                              lambda v: sum(v) >= 2, label + "_h")
    else:
        high = (builder.lut(rest, lambda v: sum(v) >= 2, label + "_h"), Const(0, 1))
    return [low, high] + ([carry_in] if start else [])


def _compress_level(builder, columns):
    """One level of counters on carry chains; returns the next level's columns."""
    out = _Columns()
    waiting = {}            # weight -> chains whose carry has that weight

    def waiting_chain(weight, needed):
        """A chain whose carry has ``weight`` and that has room for ``needed`` positions."""
        chains = waiting.get(weight, [])
        for index, chain in enumerate(chains):
            if len(chain.positions) + needed <= _CARRY_POSITIONS:
                return chains.pop(index)
        return None

    def park(chain):
        waiting.setdefault(chain.end, []).append(chain)

    weight = min(columns)
    while weight <= max(columns) or any(chains for chains in waiting.values()):
        bits = list(columns.get(weight, []))
        label = f"w{weight}_"
        groups = [bits[n:n + 6] for n in range(0, len(bits) - len(bits) % 6, 6)]
        rest = bits[len(groups) * 6:]
        if len(rest) >= 4:
            groups.append(rest)
            rest = []
        for index, group in enumerate(groups):
            chain = waiting_chain(weight, 2)
            if chain is None:
                low, high, carry_in = _counter_positions(builder, group, f"{label}g{index}",
                                                         start=True)
                chain = _Chain(weight, carry_in, [low, high])
            else:
                chain.positions += _counter_positions(builder, group, f"{label}g{index}")
            park(chain)
        if len(rest) >= 2:
            # Two bits and a waiting carry: one chain position (a full adder).
            chain = waiting_chain(weight, 1)
            if chain is not None:
                chain.positions.append((builder.lut(rest[:2], _parity, label + "fa"), rest[0]))
                park(chain)
                rest = rest[2:]
        if len(rest) == 3:
            # A full adder starting a chain: two bits in one LUT, the third as the carry in.
            select, data = builder.lut6_2(rest[:2], _parity, lambda v: v[0], label + "fa")
            park(_Chain(weight, rest[2], [(select, data)]))
            rest = []
        for bit in rest:
            out.emit(weight, bit)
        for chain in waiting.pop(weight, []):
            builder.close(chain, out.emit)
        weight += 1
    return out.bits


def _final_adder(builder, columns):
    """Ternary adder of the columns (at most three bits each, four in the lowest) on one carry
    chain. Returns the sum."""
    lowest, highest = min(columns), max(columns)
    if all(len(bits) <= 1 for bits in columns.values()):
        return Cat(*(columns[w][0] if columns.get(w) else Const(0, 1)
                     for w in range(highest + 1)))
    chain = _Chain(lowest, Const(0, 1))
    majority = None                 # floor(count / 2) of the column below (weight + 1)
    for weight in range(lowest, highest + 1):
        bits = list(columns.get(weight, []))
        label = f"sum_w{weight}"
        if len(bits) == 4:
            # Lowest column only: the fourth bit is the position's second operand.
            select, carry = builder.lut6_2(bits, _parity, lambda v: sum(v[:3]) >= 2, label)
            chain.positions.append((select, bits[3]))
            majority = carry
            continue
        inputs = bits + ([majority] if majority is not None else [])
        data = majority if majority is not None else Const(0, 1)
        if len(bits) >= 2:
            n = len(bits)
            select, carry = builder.lut6_2(inputs, _parity, lambda v, n=n: sum(v[:n]) >= 2,
                                           label)
        elif inputs:
            select, carry = builder.lut(inputs, _parity, label), None
        else:
            select, carry = Const(0, 1), None
        chain.positions.append((select, data))
        majority = carry
    if majority is not None:
        chain.positions.append((builder.lut([majority], _parity, "sum_top"), Const(0, 1)))
    result = _Columns()
    builder.close(chain, result.emit)
    return Cat(*(result.bits[w][0] if w in result.bits else Const(0, 1)
                 for w in range(max(result.bits) + 1)))


# ---- the tree ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PopcountPlan:
    """The shape of a compressor tree: for each logic level its name, its depth in LUT levels
    (a level's carry chain counts with its LUTs) and the column heights after it; and the cell
    counts."""

    levels: tuple
    luts: int
    carry8: int

    @property
    def depth(self):
        return sum(depth for _, depth, _ in self.levels)


def _first_level_depth(width, arity):
    if arity == 2:
        # The longest chain: its head, then one LUT per link.
        return 1 if width <= 2 else 1 + (max(_pair_chain_lengths(width)) - 2) // 2
    if arity == 3:
        heads = -(-(min(width, _TRIPLE_GROUP) + 1) // 3)
        return 1 + max(0, heads - 1).bit_length()
    return 1


def _run(builder, positions, value, register):
    """The tree over ``positions``; ``register(columns_or_sum, level_index)`` may register the
    output of every level. Returns the sum and the plan's level list."""
    width, arity = len(positions), len(positions[0])
    levels = []

    def heights(columns):
        return {weight: len(bits) for weight, bits in sorted(columns.items())}

    columns = _first_level(builder, positions, value)
    if arity > 1:
        levels.append(("first", _first_level_depth(width, arity), heights(columns)))
        columns = register(columns, len(levels) - 1)
    while not _fits_final(columns):
        columns = _compress_level(builder, columns)
        levels.append(("compress", 1, heights(columns)))
        columns = register(columns, len(levels) - 1)
    total = _final_adder(builder, columns)
    levels.append(("adder", 1, {}))
    total = register(total, len(levels) - 1)
    builder.finish()
    return total, levels


@cache
def popcount_plan(width, arity=1):
    """The :class:`PopcountPlan` of a tree over ``width`` positions of ``arity`` signals."""
    builder = _Builder(None, None, "plan")
    positions = [tuple(Const(0, 1) for _ in range(arity)) for _ in range(width)]
    _, levels = _run(builder, positions, None, lambda columns, index: columns)
    return PopcountPlan(tuple(levels), builder.luts, builder.carry8)


def default_popcount_stages(width, arity=1):
    """A register after about every second LUT level of the tree (a carry chain counts with
    the LUTs that feed it)."""
    return max(1, -(-popcount_plan(width, arity).depth // 2))


def _register_levels(plan, stages):
    """Indices of the levels to register after so that ``stages`` registers split the tree's
    depth evenly (the last one after the final adder)."""
    depths = [depth for _, depth, _ in plan.levels]
    total = sum(depths)
    ends = [sum(depths[:index + 1]) for index in range(len(depths))]
    chosen, previous = [], -1
    count = min(stages, len(depths))
    for k in range(1, count + 1):
        index = next(i for i, end in enumerate(ends) if end * count >= k * total)
        index = min(max(index, previous + 1), len(depths) - 1 - (count - k))
        chosen.append(index)
        previous = index
    return set(chosen)


class BehaviouralPopcount:
    """A platform for simulation: trees become :func:`behavioural_count` instead of cells.

    Pass it to ``amaranth.back.verilog.convert(..., platform=BehaviouralPopcount())`` (or to
    :func:`sim.runner.run`); a platform of one's own only needs a true ``behavioural_popcount``
    attribute.
    """

    behavioural_popcount = True


# Chunks of the word-level count: the sums of a 32-bit chunk stay within 64 bits, which a
# C++ simulator (Verilator) computes in single machine words.
_CHUNK_BITS = 32


def _chunk_count(m, chunk, name):
    """The number of set bits of ``chunk`` (at most 32 bits) by the usual SWAR reduction:
    2-bit, 4-bit and 8-bit field sums, then the bytes added up. Every step is a signal, since
    an expression used twice would be emitted twice."""
    width = len(chunk)
    steps = [(1, 0x55555555), (2, 0x33333333), (4, 0x0F0F0F0F)]
    steps += [(shift, None) for shift in (8, 16) if shift < width]
    x = chunk
    for shift, pattern in steps:
        step = Signal(width, name=f"{name}_s{shift}")
        if pattern is None:
            m.d.comb += step.eq(x + (x >> shift))
        else:
            mask = Const(pattern & ((1 << width) - 1), width)
            m.d.comb += step.eq((x & mask) + ((x >> shift) & mask))
        x = step
    return x[:Shape.cast(range(width + 1)).width]


def behavioural_count(m, operands, value, name="count"):
    """``popcount(value(*operands))`` of equal-width words, word-level (for simulation): the
    function a tree over the positions ``zip(*operands)`` computes, as a combinational signal
    added to ``m``. ``value`` must be bitwise (``^``, ``&``, ``|``, ``~`` of its arguments), as
    every counter of this module's users is."""
    word = Signal(len(operands[0]), name=f"{name}_word")
    m.d.comb += word.eq(value(tuple(operands)))
    counts = [_chunk_count(m, word[low:low + _CHUNK_BITS], f"{name}_{low // _CHUNK_BITS}")
              for low in range(0, len(word), _CHUNK_BITS)]
    total = Signal(range(len(word) + 1), name=name)
    m.d.comb += total.eq(sum(counts))
    return total


def build_counter_tree(m, operands, value, stages, en, platform=None, name="tree"):
    """Add a pipelined counter of ``value`` over the bits of ``operands`` to ``m`` and return
    its sum.

    ``operands`` is a tuple of equal-width values; position ``n`` is the tuple of their bits
    ``n``, and ``value`` maps the 0/1 values of one position to 0 or 1 (a popcount counts single
    bits with ``value(v) = v[0]``). The sum is ``stages`` cycles late; registers load while
    ``en`` is high. Registers are spread over the logic levels by depth (the first level, the
    compressor levels, the final adder); stages beyond the number of levels delay the result
    further. ``platform`` may supply LUT and carry primitives (see :func:`lut` and
    :class:`rtl.primitives.LutPrimitives`), or ask for the word-level model
    (:class:`BehaviouralPopcount`): the same sum through ``stages`` registers.
    """
    positions = list(zip(*(tuple(operand) for operand in operands)))
    plan = popcount_plan(len(positions), len(positions[0]))
    registered = _register_levels(plan, stages)

    def register_value(value, register_name):
        reg = Signal.like(value, name=register_name)
        with m.If(en):
            m.d.sync += reg.eq(value)
        return reg

    if getattr(platform, "behavioural_popcount", False):
        total = behavioural_count(m, operands, value, f"{name}_count")
        for n in range(stages):
            total = register_value(total, f"{name}_delay{n}")
        return total

    def register(columns, index):
        if index not in registered:
            return columns
        if not isinstance(columns, dict):
            return register_value(columns, f"{name}_sum")
        return {weight: [register_value(bit, f"{name}_r{index}_w{weight}_{n}")
                         for n, bit in enumerate(bits)]
                for weight, bits in columns.items()}

    builder = _Builder(m, platform, name)
    total, _ = _run(builder, positions, value, register)
    for n in range(stages - len(registered)):
        total = register_value(total, f"{name}_delay{n}")
    return total


def _single_bit(values):
    return values[0]


class Popcount(wiring.Component):
    """Number of set bits of ``i``, pipelined.

    Parameters
    ----------
    width : int
        Number of input bits (at least 1).
    stages : int
        Pipeline registers between ``i`` and ``o`` (0 makes it combinational). Registers are
        spread over the tree levels (the compressor levels plus the final adder); stages beyond
        the number of levels delay the result further.

    Members
    -------
    i : In(width)
        Bits to count.
    en : In(1, init=1)
        Pipeline enable.
    o : Out(range(width + 1))
        The count.

    Protocol
    --------
    Every pipeline register loads only while ``en`` is high, so a stalled pipeline keeps its
    contents.

    Latency
    -------
    ``o`` is ``popcount(i)`` as it was :attr:`latency` = ``stages`` enabled cycles earlier.
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
        total = build_counter_tree(m, (self.i,), _single_bit, self.stages, self.en, platform)
        m.d.comb += self.o.eq(total)
        return m
