# amaranth: UnusedElaboratable=no
"""cocotb tests of :class:`rtl.quantizer.ActivationQuantizer` and :class:`rtl.shortcut.ShortcutPool`
against the golden model.

The design is a :class:`sim.regression.UnitGroup` with the units ``quantizer`` and ``shortcut``
(ports ``quantizer_i``, ``quantizer_o``, ``shortcut_i``, ``shortcut_o``). Parameters
(:func:`sim.runner.testbench_params`): each unit's constructor arguments under its name and
``latencies``. Every output is checked by a scoreboard against
:func:`fracbnn_golden.layers.quantize` / :func:`fracbnn_golden.layers.shortcut`; inputs are the
public vectors' feature maps and random values aimed at the rounding and saturation corners.
Each unit also gets the stream-contract tests of :func:`sim.streams.stream_contract_tests`
(one transfer per cycle at its documented latency without stalls; resets in the middle of a
stream).
"""

from collections import Counter

import cocotb
import numpy as np

from fracbnn_golden.fixedpoint import FM_MAX, FM_MIN
from fracbnn_golden.layers import bit_planes, quantize, shortcut
from fracbnn_golden.model import PG_CONVS
from sim.regression import group_bench
from sim.runner import PUBLIC_VECTORS
from sim.streams import pipeline_contract, queue_item, stream_contract_tests

# Every feature map the quantiser sees in the network: conv1's BN and each block half's output.
QUANTIZER_TRACES = ["trace.bn1"] + [f"trace.{conv.block}.out{conv.index}" for conv in PG_CONVS]


def new_bench(dut, unit, **kwargs):
    """A :class:`StreamBench` on ``unit`` of the group (see
    :func:`sim.regression.group_bench`) with its ``lanes``; the other unit's ports are held
    idle."""
    bench = group_bench(dut, unit, **kwargs)
    bench.lanes = bench.params["lanes"]
    return bench


def bits(values):
    return sum(int(v) << k for k, v in enumerate(values))


# ---- quantiser --------------------------------------------------------------------------------

def quantizer_item(fm):
    q = quantize(np.asarray(fm, dtype=np.int32))
    msb, lsb = bit_planes(q)
    expected = {"q": [int(v) for v in q], "msb": bits(msb), "lsb": bits(lsb)}
    return [{"fm": [int(v) for v in fm]}], [expected]


def quantizer_boundaries():
    """FM codes where the quantised level changes (the rounding corners), with neighbours."""
    codes = np.arange(FM_MIN, FM_MAX + 1)
    levels = quantize(codes)
    edges = codes[1:][levels[1:] != levels[:-1]]
    return sorted({int(c) + d for c in edges for d in (-2, -1, 0, 1)})


@cocotb.test()
async def quantizer_public_traces(dut):
    """Feature maps of the 24 public vectors (every layer the quantiser serves), random gaps
    and back-pressure."""
    bench = new_bench(dut, "quantizer", idle=0.3, stall=0.3)
    lanes = bench.lanes
    await bench.start()
    with np.load(PUBLIC_VECTORS) as vectors:
        for key in QUANTIZER_TRACES:
            fm = vectors[key]
            for _ in range(60):
                image, y, x = (bench.rng.randrange(n) for n in (fm.shape[0], *fm.shape[2:]))
                group = bench.rng.randrange(fm.shape[1] // lanes)
                queue_item(bench, quantizer_item(fm[image, group * lanes:(group + 1) * lanes,
                                                    y, x]))
    await bench.drain()


@cocotb.test()
async def quantizer_corners(dut):
    """Every level boundary (+-2), the ends of the FM range and random codes, in random lanes,
    under heavy back-pressure; checks that each corner was exercised."""
    bench = new_bench(dut, "quantizer", idle=0.5, stall=0.6)
    lanes = bench.lanes
    await bench.start()
    corners = quantizer_boundaries()
    codes = corners + [FM_MIN, FM_MIN + 1, FM_MAX - 1, FM_MAX, 0, -128, -129, -127]
    codes += [bench.rng.randint(FM_MIN, FM_MAX) for _ in range(200)]
    codes += [bench.rng.randint(-400, 400) for _ in range(200)]
    codes *= 2
    bench.rng.shuffle(codes)
    codes += codes[:-len(codes) % lanes]
    coverage = Counter()
    for start in range(0, len(codes), lanes):
        fm = codes[start:start + lanes]
        queue_item(bench, quantizer_item(fm))
        for code in fm:
            raw = ((code + 128) * 3 + 128) >> 8
            coverage["clamped to 0"] += raw < 0
            coverage["clamped to 3"] += raw > 3
            coverage["level boundary"] += code in corners
            coverage["FM extreme"] += code in (FM_MIN, FM_MAX)
            coverage[f"q={min(max(raw, 0), 3)}"] += 1
    await bench.drain()
    missing = [name for name in ("clamped to 0", "clamped to 3", "level boundary", "FM extreme",
                                 "q=0", "q=1", "q=2", "q=3") if not coverage[name]]
    assert not missing, f"corners not exercised: {missing}"


@cocotb.test()
async def quantizer_every_code(dut):
    """All 65,536 FM codes, in random order, with light back-pressure."""
    bench = new_bench(dut, "quantizer", idle=0.05, stall=0.05)
    lanes = bench.lanes
    await bench.start()
    codes = list(range(FM_MIN, FM_MAX + 1))
    bench.rng.shuffle(codes)
    codes += codes[:-len(codes) % lanes]
    for start in range(0, len(codes), lanes):
        queue_item(bench, quantizer_item(codes[start:start + lanes]))
    await bench.drain()


def random_fm(bench, low=FM_MIN, high=FM_MAX):
    """One random FM code in ``low..high`` per lane."""
    return [bench.rng.randint(low, high) for _ in range(bench.lanes)]


# ---- shortcut pool ----------------------------------------------------------------------------

def shortcut_item(window):
    """``window[j][k]``: pixel j (row-major in the 2x2 window) of lane k."""
    window = np.asarray(window, dtype=np.int32)
    lanes = window.shape[1]
    fm = window.T.reshape(1, lanes, 2, 2)
    pooled = shortcut(fm)[0, :lanes, 0, 0]
    return ([{"window": [[int(v) for v in pixel] for pixel in window]}],
            [{"fm": [int(v) for v in pooled]}])


def shortcut_events(values, coverage):
    """Count the corners one lane's window (4 values in order) exercises."""
    total = values[0]
    exact = sum(values)
    for step, value in enumerate(values[1:], 1):
        total += value
        if total > FM_MAX:
            coverage[f"saturated high at add {step}"] += 1
        elif total < FM_MIN:
            coverage[f"saturated low at add {step}"] += 1
        total = min(max(total, FM_MIN), FM_MAX)
    coverage["saturation order matters"] += total != min(max(exact, FM_MIN), FM_MAX)
    coverage["negative, not a multiple of 4 (truncation)"] += total < 0 and total % 4 != 0
    coverage["positive, not a multiple of 4"] += total > 0 and total % 4 != 0


SHORTCUT_EVENTS = [f"saturated {side} at add {step}" for side in ("high", "low")
                   for step in (1, 2, 3)] + [
    "saturation order matters", "negative, not a multiple of 4 (truncation)",
    "positive, not a multiple of 4"]


@cocotb.test()
async def shortcut_public_traces(dut):
    """2x2 windows of the public vectors' stride-2 block inputs, random gaps and back-pressure."""
    bench = new_bench(dut, "shortcut", idle=0.3, stall=0.3)
    lanes = bench.lanes
    await bench.start()
    with np.load(PUBLIC_VECTORS) as vectors:
        # The inputs of the two stride-2 blocks.
        for key in ("trace.layer1_2.out2", "trace.layer2_2.out2"):
            fm = vectors[key]
            for _ in range(300):
                image = bench.rng.randrange(fm.shape[0])
                y, x = (2 * bench.rng.randrange(size // 2) for size in fm.shape[2:])
                group = bench.rng.randrange(fm.shape[1] // lanes)
                block = fm[image, group * lanes:(group + 1) * lanes, y:y + 2, x:x + 2]
                queue_item(bench, shortcut_item(block.reshape(lanes, 4).T))
    await bench.drain()


@cocotb.test()
async def shortcut_corners(dut):
    """Windows near both ends of the FM range (saturation after each of the three additions,
    in both directions) and small signed sums (truncation toward zero), heavy back-pressure."""
    bench = new_bench(dut, "shortcut", idle=0.5, stall=0.6)
    lanes = bench.lanes
    await bench.start()
    coverage = Counter()
    big = [FM_MIN, FM_MIN + 1, FM_MAX, FM_MAX - 1, -(1 << 14), 1 << 14, 20000, -20000]

    def value(kind):
        if kind == "big":
            return bench.rng.choice(big) + bench.rng.randint(-3, 3)
        if kind == "small":
            return bench.rng.randint(-9, 9)
        return bench.rng.randint(FM_MIN, FM_MAX)

    for _ in range(500):
        kinds = [bench.rng.choice(["big", "big", "small", "random"]) for _ in range(4)]
        window = [[min(max(value(kind), FM_MIN), FM_MAX) for _ in range(lanes)]
                  for kind in kinds]
        for lane in range(lanes):
            shortcut_events([window[j][lane] for j in range(4)], coverage)
        queue_item(bench, shortcut_item(window))
    await bench.drain()
    dut._log.info("shortcut corners: %s", dict(sorted(coverage.items())))
    missing = [event for event in SHORTCUT_EVENTS if not coverage[event]]
    assert not missing, f"corners not exercised: {missing}"


# ---- the stream contract ----------------------------------------------------------------------

stream_contract_tests(globals(), new_bench, {
    "quantizer": pipeline_contract(
        lambda bench, index: quantizer_item(random_fm(bench)),
        lambda bench, index: quantizer_item(random_fm(bench, -600, 600))),
    "shortcut": pipeline_contract(
        lambda bench, index: shortcut_item([random_fm(bench) for _ in range(4)]),
        lambda bench, index: shortcut_item([random_fm(bench, -3000, 3000) for _ in range(4)])),
})
