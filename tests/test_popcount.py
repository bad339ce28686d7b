# amaranth: UnusedElaboratable=no
"""The pipelined popcount and the XNOR-popcount datapath in Amaranth's simulator."""

import random

import pytest
from amaranth.sim import Simulator

from rtl.popcount import Popcount, default_popcount_stages, popcount_levels
from rtl.xnor_popcount import XnorPopcount


def _simulate(dut, inputs, expected, latency, en_pattern=None):
    """Drive ``inputs`` (dicts port -> value) one per enabled cycle and check ``dut.o``
    ``latency`` enabled cycles later against ``expected``."""
    sim = Simulator(dut)
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
    n_levels = len(popcount_levels(width)) + 1
    stages = rng.randint(0, n_levels + 1)
    values = [rng.getrandbits(width) for _ in range(30)] + [(1 << width) - 1, 0]
    _simulate(Popcount(width, stages), [{"i": v} for v in values],
              [bin(v).count("1") for v in values], stages)


def test_popcount_holds_while_disabled():
    rng = random.Random(1)
    values = [rng.getrandbits(40) for _ in range(20)]
    _simulate(Popcount(40, 3), [{"i": v} for v in values], [bin(v).count("1") for v in values],
              3, en_pattern=lambda cycle: cycle % 3 != 1)


@pytest.mark.parametrize("width, masked", [(9, False), (64, False), (17, True), (64, True)])
def test_xnor_popcount(width, masked):
    rng = random.Random(width)
    dut = XnorPopcount(width, masked=masked)
    inputs, expected = [], []
    for _ in range(30):
        a, w = rng.getrandbits(width), rng.getrandbits(width)
        valid = rng.getrandbits(width) if masked else (1 << width) - 1
        inputs.append({"a": a, "w": w, **({"valid": valid} if masked else {})})
        expected.append(bin((a ^ w) & valid).count("1"))
    _simulate(dut, inputs, expected, dut.latency)


def test_tree_shape():
    # 576 bits: a first level of 6:3 counters, then a few levels, and at most 3 rows at the end.
    levels = popcount_levels(576)
    assert levels[0] == {0: [6] * 96}
    assert len(levels) <= 7
    assert default_popcount_stages(576) == (len(levels) + 2) // 2


@pytest.mark.parametrize("width, stages, error", [
    (0, 0, ValueError), (8.0, 0, TypeError), (8, -1, ValueError), (8, 1.5, TypeError)])
def test_popcount_parameters_are_checked(width, stages, error):
    with pytest.raises(error):
        Popcount(width, stages)
