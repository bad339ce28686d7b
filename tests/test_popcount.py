# amaranth: UnusedElaboratable=no
"""The pipelined popcount and the XNOR-popcount datapath in Amaranth's simulator."""

import random

import pytest
from amaranth.hdl import Cat, Const, Elaboratable, Fragment, Module, Mux
from amaranth.sim import Simulator

from rtl.popcount import BehaviouralPopcount, Popcount, default_popcount_stages, popcount_plan
from rtl.primitives import LutPrimitives
from rtl.xnor_popcount import XnorPopcount


def _simulate(dut, inputs, expected, latency, en_pattern=None, platform=None):
    """Drive ``inputs`` (dicts port -> value) one per enabled cycle and check ``dut.o``
    ``latency`` enabled cycles later against ``expected``. ``platform`` is handed to the
    design's elaboration."""
    sim = Simulator(dut if platform is None else _WithPlatform(dut, platform))
    if latency:
        sim.add_clock(1e-6)
    seen = []

    async def bench(ctx):
        pending = list(inputs) + [inputs[-1]] * latency
        cycle = 0
        while pending:
            enabled = en_pattern is None or en_pattern(cycle)
            ctx.set(dut.en, enabled)
            for port, value in pending[0].items():
                ctx.set(getattr(dut, port), value)
            if enabled:
                seen.append(ctx.get(dut.o))
                pending.pop(0)
            if latency:
                await ctx.tick()
            else:
                await ctx.delay(1e-6)
            cycle += 1

    sim.add_testbench(bench)
    sim.run()
    assert seen[latency:latency + len(expected)] == expected


@pytest.mark.parametrize("seed", range(12))
def test_popcount_random_widths_and_depths(seed):
    rng = random.Random(seed)
    width = rng.choice([1, 2, 3, 5, 6, 7, 13, 36, 64, 100, 577])
    n_levels = len(popcount_plan(width).levels)
    stages = rng.randint(0, n_levels + 1)
    values = [rng.getrandbits(width) for _ in range(30)] + [(1 << width) - 1, 0]
    _simulate(Popcount(width, stages), [{"i": v} for v in values],
              [bin(v).count("1") for v in values], stages)


def test_popcount_holds_while_disabled():
    rng = random.Random(1)
    values = [rng.getrandbits(40) for _ in range(20)]
    _simulate(Popcount(40, 3), [{"i": v} for v in values], [bin(v).count("1") for v in values],
              3, en_pattern=lambda cycle: cycle % 3 != 1)


def _xnor_vectors(width, masked, count=30):
    rng = random.Random(width)
    ones = (1 << width) - 1
    inputs, expected = [], []
    for index in range(count):
        a, w = rng.getrandbits(width), rng.getrandbits(width)
        valid = rng.getrandbits(width) if masked else ones
        if index < 3:
            # All bits differ (the largest count), all equal, all differ but masked off.
            a, w, valid = [(ones, 0, ones), (ones, ones, ones), (ones, 0, 0 if masked else ones)][
                index]
        inputs.append({"a": a, "w": w, **({"valid": valid} if masked else {})})
        expected.append(bin((a ^ w) & valid).count("1"))
    return inputs, expected


@pytest.mark.parametrize("width, masked", [
    (1, False), (2, False), (3, False), (4, False), (9, False), (64, False), (576, False),
    (1, True), (2, True), (5, True), (17, True), (64, True), (144, True)])
def test_xnor_popcount(width, masked):
    dut = XnorPopcount(width, masked=masked)
    inputs, expected = _xnor_vectors(width, masked)
    _simulate(dut, inputs, expected, dut.latency)


@pytest.mark.parametrize("masked", [False, True])
def test_xnor_popcount_stage_counts(masked):
    width = 40
    levels = len(popcount_plan(width, 3 if masked else 2).levels)
    inputs, expected = _xnor_vectors(width, masked)
    for stages in range(levels + 2):
        _simulate(XnorPopcount(width, stages, masked=masked), inputs, expected, stages)


# ---- the primitive netlist (what synthesis sees) -----------------------------------------------

class _PrimitiveModel(Elaboratable):
    """An Amaranth model of one Xilinx primitive instance made by
    :class:`rtl.primitives.LutPrimitives`, after the primitive's definition (Yosys cells_sim.v)."""

    def __init__(self, instance):
        self.instance = instance

    def elaborate(self, platform):
        m = Module()
        kind, params = self.instance.type, self.instance.parameters
        port = {name: value for name, (value, _) in self.instance.ports.items()}
        if kind == "LUT6_2":
            init = params["INIT"].value
            m.d.comb += [
                port["O6"].eq(Const(init, 64).bit_select(Cat(*(port[f"I{n}"] for n in range(6))),
                                                         1)),
                port["O5"].eq(Const(init & 0xFFFFFFFF, 32).bit_select(
                    Cat(*(port[f"I{n}"] for n in range(5))), 1)),
            ]
        elif kind.startswith("LUT"):
            width = int(kind[3:])
            m.d.comb += port["O"].eq(Const(params["INIT"].value, 1 << width).bit_select(
                Cat(*(port[f"I{n}"] for n in range(width))), 1))
        elif kind == "CARRY8":
            select, data, sums, carries = port["S"], port["DI"], port["O"], port["CO"]
            carry = port["CI"]
            for n in range(8):
                if n == 4 and params["CARRY_TYPE"] == "DUAL_CY4":
                    carry = port["CI_TOP"]
                m.d.comb += [sums[n].eq(select[n] ^ carry),
                             carries[n].eq(Mux(select[n], carry, data[n]))]
                carry = carries[n]
        else:
            raise NotImplementedError(kind)
        return m


class _SimulatedPrimitives:
    """The synthesis platform with every primitive replaced by its model."""

    def __init__(self):
        self.primitives = LutPrimitives()

    def __getattr__(self, name):
        if not name.startswith("get_"):
            raise AttributeError(name)
        factory = getattr(self.primitives, name)
        return lambda *args: _PrimitiveModel(factory(*args))


class _WithPlatform(Elaboratable):
    def __init__(self, dut, platform):
        self.dut, self.platform = dut, platform

    def elaborate(self, platform):
        return Fragment.get(self.dut, self.platform)


@pytest.mark.parametrize("width, masked", [(5, False), (64, False), (300, False), (17, True),
                                           (144, True)])
def test_xnor_popcount_primitives(width, masked):
    dut = XnorPopcount(width, masked=masked)
    inputs, expected = _xnor_vectors(width, masked)
    _simulate(dut, inputs, expected, dut.latency, platform=_SimulatedPrimitives())


@pytest.mark.parametrize("width", [1, 4, 16, 100, 577])
def test_popcount_primitives(width):
    rng = random.Random(width)
    values = [rng.getrandbits(width) for _ in range(30)] + [(1 << width) - 1, 0]
    _simulate(Popcount(width, 2), [{"i": v} for v in values],
              [bin(v).count("1") for v in values], 2, platform=_SimulatedPrimitives())


# ---- the behavioural model (what the whole accelerator's simulation uses) ----------------------

def _output_trace(dut, inputs, enables, platform):
    """``dut.o`` in every cycle while ``inputs[n]`` (dicts port -> value) and ``enables[n]``
    are applied in cycle ``n``."""
    sim = Simulator(dut if platform is None else _WithPlatform(dut, platform))
    sim.add_clock(1e-6)
    trace = []

    async def bench(ctx):
        for values, enabled in zip(inputs, enables):
            ctx.set(dut.en, enabled)
            for port, value in values.items():
                ctx.set(getattr(dut, port), value)
            trace.append(ctx.get(dut.o))
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    return trace


def _random_words(rng, width, count):
    """Words of every density from empty to full, so that every count is reached."""
    words = []
    for index in range(count):
        density = index / (count - 1)
        words.append(sum(1 << n for n in range(width) if rng.random() < density))
    rng.shuffle(words)
    return words


@pytest.mark.parametrize("make, ports", [
    # The accelerator's trees (XnorPopcountArray at simd 144) and other shapes.
    (lambda: XnorPopcount(144, masked=True), ("a", "w", "valid")),
    (lambda: XnorPopcount(17, 3, masked=True), ("a", "w", "valid")),
    (lambda: XnorPopcount(576), ("a", "w")),
    (lambda: XnorPopcount(9, 1), ("a", "w")),
    (lambda: Popcount(100, 4), ("i",)),
    (lambda: Popcount(33, 9), ("i",)),
])
def test_behavioural_model_equals_the_tree_in_every_cycle(make, ports):
    """The word-level model that the accelerator's simulation uses gives, cycle by cycle and
    through random pipeline stalls, the same outputs as the tree of cells it stands for."""
    dut = make()
    rng = random.Random(len(dut.o) * 31 + dut.latency)
    width = len(getattr(dut, ports[0]))
    cycles = 300
    inputs = [dict(zip(ports, values)) for values in
              zip(*(_random_words(rng, width, cycles) for _ in ports))]
    enables = [rng.random() < 0.7 for _ in range(cycles)]
    cells = _output_trace(make(), inputs, enables, None)
    behavioural = _output_trace(dut, inputs, enables, BehaviouralPopcount())
    assert behavioural == cells
    assert len(set(cells)) > width // 4          # the vectors reach many different counts


def test_behavioural_model_is_word_level():
    """The model has no per-bit cells: its Verilog is a fraction of the tree's."""
    from amaranth.back import verilog

    tree = verilog.convert(XnorPopcount(144, masked=True), emit_src=False)
    model = verilog.convert(XnorPopcount(144, masked=True), emit_src=False,
                            platform=BehaviouralPopcount())
    assert len(model) * 5 < len(tree)


def test_tree_shape():
    # 576 bits: a handful of compressor levels, then the adder; a register about every second
    # LUT level.
    plan = popcount_plan(576)
    assert [name for name, _, _ in plan.levels[-1:]] == ["adder"]
    assert len(plan.levels) <= 7
    assert default_popcount_stages(576) == -(-plan.depth // 2)
    # The whole tree's cost: 6:3 counters on carry chains cost two LUTs for three bits.
    assert plan.luts <= 0.7 * 576


def test_xnor_tree_cost():
    # The design target: at most 1.2 LUT per input bit including the XNOR (the synthesis
    # report measures the same count, see the synth package).
    plan = popcount_plan(576, 2)
    assert plan.luts <= 1.2 * 576
    assert plan.levels[0][0] == "first"


@pytest.mark.parametrize("width, stages, error", [
    (0, 0, ValueError), (8.0, 0, TypeError), (8, -1, ValueError), (8, 1.5, TypeError)])
def test_popcount_parameters_are_checked(width, stages, error):
    with pytest.raises(error):
        Popcount(width, stages)
