# amaranth: UnusedElaboratable=no
"""cocotb tests of :class:`rtl.gate.PrecisionGate` and :class:`rtl.merge.MergeUnit` against the
golden model and the public vectors.

The design is a :class:`sim.regression.UnitGroup` with the units ``gate`` and ``merge``.
Parameters (:func:`sim.runner.testbench_params`): each unit's constructor arguments under its
name (``thresholds``: WT codes ``tau`` ``[rows, lanes]``; ``params``: ``[rows, lanes, 7]`` in
:data:`rtl.merge.MERGE_PARAMS` order; ``pixels``), ``latencies`` and ``bench.trace_rows`` (for
each model layer whose parameters fill rows of both tables, its first row; the rows after the
model layers hold corner values). A transfer carries ``pixels`` pixels of the same channels
(one row): ``pixels * lanes`` lanes, pixel by pixel.

The public-vector tests run the model layers' PG convs on the traced feature maps: the gates
must equal the official accelerator's traced gates and the merge outputs its traced block
outputs. The corner tests aim random values at the comparison edge of the gate and at the
saturation and half-way rounding cases of every merge step, and check those were hit.
"""

from collections import Counter
from functools import cache

import cocotb
import numpy as np

from fracbnn_golden.conv import BinaryConv3x3
from fracbnn_golden.fixedpoint import FM_MAX, FM_MIN, WT_MAX, WT_MIN
from fracbnn_golden.layers import (
    ONE_THIRD,
    TWO_THIRDS,
    bit_planes,
    merge,
    precision_gate,
    quantize,
    shortcut,
)
from fracbnn_golden.model import PG_CONVS, FracBNN
from sim.regression import group_bench
from sim.runner import PUBLIC_VECTORS
from sim.streams import pipeline_contract, queue_item, random_mixture, stream_contract_tests

TRACE_IMAGES = (0, 5, 13)       # airplane, cat, a photo patch


@cache
def pg_conv_sums(layer, images=TRACE_IMAGES):
    """The PG conv ``layer`` (e.g. ``"layer2_0.conv1"``) on the traced input of ``images``.

    Returns a dict of ``[n, cout, ho, wo]`` arrays: ``msb`` and ``lsb`` (the LSB conv sum
    everywhere, not gated), ``gate`` (the official trace, at the output positions),
    ``residual`` (FM codes, the channels the merge adds) and ``out`` (the traced output).
    """
    net = FracBNN.default()
    index = [conv.name for conv in PG_CONVS].index(layer)
    conv = PG_CONVS[index]
    previous = PG_CONVS[index - 1] if index else None
    source = f"trace.{previous.block}.out{previous.index}" if previous else "trace.bn1"
    images = list(images)
    with np.load(PUBLIC_VECTORS) as vectors:
        x = vectors[source][images]
        traced_gate = vectors[f"trace.{layer}.gate"][images]
        out = vectors[f"trace.{conv.block}.out{conv.index}"][images]
    msb_plane, lsb_plane = bit_planes(quantize(x))
    binary_conv = BinaryConv3x3(net.params[f"{layer}.weight"])
    msb = binary_conv(msb_plane, conv.stride)
    lsb = binary_conv(lsb_plane, conv.stride)
    # The trace holds the gate at every input position; a stride-2 conv keeps (2i, 2j).
    gate = traced_gate[:, :, ::conv.stride, ::conv.stride]
    assert (precision_gate(msb, net.params[f"{layer}.threshold"]) == gate).all(), layer
    residual = shortcut(x) if conv.stride == 2 else x
    return {"msb": msb, "lsb": lsb, "gate": gate, "residual": residual, "out": out}


def traced_positions(bench, count=200):
    """For each model layer of the tables (``bench.trace_rows``), ``count`` random transfers of
    its PG conv's outputs on the traced images (:func:`pg_conv_sums`): ``(layer, lanes, row)``
    with ``lanes[key]`` the transfer's values of each array of the sums (``bench.pixels``
    random positions of one image, the same ``bench.lanes`` channels at each, pixel by pixel)
    and ``row`` the table row of those channels."""
    for layer, first in bench.trace_rows.items():
        sums = pg_conv_sums(layer)
        n, cout, ho, wo = sums["msb"].shape
        for _ in range(count):
            image = bench.rng.randrange(n)
            group = bench.rng.randrange(cout // bench.lanes)
            channels = slice(group * bench.lanes, (group + 1) * bench.lanes)
            ats = [(image, channels, bench.rng.randrange(ho), bench.rng.randrange(wo))
                   for _ in range(bench.pixels)]
            lanes = {key: np.concatenate([values[at] for at in ats])
                     for key, values in sums.items()}
            yield layer, lanes, first + group


def new_bench(dut, unit, **kwargs):
    """A :class:`StreamBench` on ``unit`` of the group (see
    :func:`sim.regression.group_bench`) with its ``lanes`` (channels), ``pixels``, ``width``
    (lanes of a transfer), ``trace_rows``, ``sum_range`` and golden ``model``; the other unit's
    ports are held idle."""
    bench = group_bench(dut, unit, **kwargs)
    bench.lanes, bench.pixels = bench.params["lanes"], bench.params["pixels"]
    bench.width = bench.pixels * bench.lanes
    bench.trace_rows = bench.bench_params["trace_rows"]
    width = bench.params["sum_width"]
    bench.sum_range = (-(1 << (width - 1)), (1 << (width - 1)) - 1)
    bench.model = {"gate": GateModel, "merge": MergeModel}[unit](bench.params)
    return bench


def bits(values):
    return sum(int(bool(v)) << k for k, v in enumerate(values))


# ---- precision gate ---------------------------------------------------------------------------

class GateModel:
    def __init__(self, params):
        self.thresholds = np.asarray(params["thresholds"], dtype=np.int64)
        self.rows = len(self.thresholds)
        self.lanes = params["lanes"]

    def item(self, msb, row):
        """``msb``: the ``pixels * lanes`` sums of a transfer, pixel by pixel."""
        msb = [int(v) for v in msb]
        # The golden gate of [pixels, channels]: every pixel with the row's thresholds.
        gate = precision_gate(np.reshape(msb, (-1, self.lanes)), self.thresholds[row])
        return [{"msb": msb, "row": row}], [{"msb": msb, "gate": bits(gate.reshape(-1))}]


@cocotb.test()
async def gate_public_traces(dut):
    """MSB conv sums of public vectors with the model layers' thresholds: the gates must equal
    the official accelerator's traced gates. Random gaps and back-pressure."""
    bench = new_bench(dut, "gate", idle=0.3, stall=0.3)
    model = bench.model
    await bench.start()
    for _, lanes, row in traced_positions(bench):
        inputs, outputs = model.item(lanes["msb"], row)
        assert outputs[0]["gate"] == bits(lanes["gate"])
        queue_item(bench, (inputs, outputs))
    await bench.drain()


@cocotb.test()
async def gate_corners(dut):
    """Sums at, just below and just above every lane's threshold (the gate
    ``TWO_THIRDS * msb > tau`` is strict), at the ends of the sum range and random, on every
    table row; heavy back-pressure."""
    bench = new_bench(dut, "gate", idle=0.5, stall=0.6)
    model = bench.model
    await bench.start()
    coverage = Counter()
    rows = list(range(model.rows))
    low, high = bench.sum_range
    for _ in range(4):
        bench.rng.shuffle(rows)
        for row in rows:
            tau = model.thresholds[row]
            for kind in ("edge", "below", "above", "extreme", "random"):
                msb = []
                for lane in range(bench.width):
                    tau_lane = int(tau[lane % bench.lanes])
                    edge = tau_lane // TWO_THIRDS
                    value = {"edge": edge, "below": edge - 1, "above": edge + 1,
                             "extreme": bench.rng.choice([low, high]),
                             "random": bench.rng.randint(low, high)}[kind]
                    msb.append(value)
                    coverage["2/3 * msb == tau"] += TWO_THIRDS * value == tau_lane
                    coverage["gate on"] += TWO_THIRDS * value > tau_lane
                    coverage["gate off"] += TWO_THIRDS * value <= tau_lane
                    coverage["sum at a range end"] += value in (low, high)
                    coverage["tau at a WT range end"] += tau_lane in (WT_MIN, WT_MAX)
                queue_item(bench, model.item(msb, row))
    await bench.drain()
    missing = [name for name in ("2/3 * msb == tau", "gate on", "gate off", "sum at a range end",
                                 "tau at a WT range end") if not coverage[name]]
    assert not missing, f"corners not exercised: {missing}"


# ---- merge ------------------------------------------------------------------------------------

def _clamp(value):
    return min(max(value, FM_MIN), FM_MAX)


def merge_steps(msb, lsb, gate, residual, p, coverage):
    """One lane of the merge step by step in Python integers, counting the corners it hits
    (saturation and exact half-way rounding of each step). ``p``: the 7 parameters."""
    s0, b0, bx, alpha, by, s1, b1 = (int(v) for v in p)

    def assign(value, frac, step):
        shift = frac - 7
        if (value & ((1 << shift) - 1)) == 1 << (shift - 1):
            coverage[f"{step}: half-way"] += 1
        value = (value + (1 << (shift - 1))) >> shift
        if value != _clamp(value):
            coverage[f"{step}: saturated {'high' if value > 0 else 'low'}"] += 1
        return _clamp(value)

    if lsb and not gate:
        coverage["gate off, LSB sum ignored"] += 1
    lsb = lsb if gate else 0
    for name, value in (("MSB", msb), ("LSB", lsb)):
        if value << 7 != _clamp(value << 7):
            coverage[f"{name} sum saturated"] += 1
    t0, t1 = _clamp(msb << 7), _clamp(lsb << 7)
    t0 = assign(t0 * TWO_THIRDS, 15, "x 2/3")
    t0 = assign((t0 << 8) + t1 * ONE_THIRD, 15, "+ 1/3")
    t0 = assign(s0 * t0 + (b0 << 7), 15, "BN")
    t0 = assign((t0 << 1) + bx, 8, "shift x")
    if t0 < 0:
        coverage["PReLU slope"] += 1
    t0 = assign(t0 * (alpha if t0 < 0 else 256), 15, "PReLU")
    t0 = assign((t0 << 1) + by, 8, "shift y")
    summed = residual + t0
    if summed != _clamp(summed):
        coverage["residual add saturated"] += 1
    return assign(s1 * _clamp(summed) + (b1 << 7), 15, "output BN")


MERGE_CORNERS = [
    "gate off, LSB sum ignored", "MSB sum saturated", "LSB sum saturated",
    "x 2/3: half-way", "+ 1/3: half-way", "BN: half-way", "BN: saturated high",
    "BN: saturated low", "shift x: half-way", "shift x: saturated high", "shift x: saturated low",
    "PReLU slope", "PReLU: half-way", "PReLU: saturated high", "PReLU: saturated low",
    "shift y: half-way", "shift y: saturated high",
    "shift y: saturated low", "residual add saturated", "output BN: half-way",
    "output BN: saturated high", "output BN: saturated low",
]


class MergeModel:
    def __init__(self, params):
        self.table = np.asarray(params["params"], dtype=np.int64)     # [rows, lanes, 7]
        self.rows = len(self.table)
        self.lanes = params["lanes"]

    def item(self, msb, lsb, gate, residual, row, coverage=None):
        """The ``pixels * lanes`` lanes of a transfer, pixel by pixel, on table row ``row``."""
        msb, lsb, residual = ([int(v) for v in values] for values in (msb, lsb, residual))
        gate = [bool(g) for g in gate]
        p = self.table[row]
        # The golden merge of [pixels, channels]: every pixel with the row's parameters.
        pixels = (-1, self.lanes)
        out = merge(np.reshape(msb, pixels), np.reshape(np.where(gate, lsb, 0), pixels),
                    np.reshape(residual, pixels), bn=(p[:, 0], p[:, 1]),
                    rprelu=(p[:, 2], p[:, 3], p[:, 4]), bn_out=(p[:, 5], p[:, 6])).reshape(-1)
        if coverage is not None:
            steps = [merge_steps(*lane, p[k % self.lanes], coverage)
                     for k, lane in enumerate(zip(msb, lsb, gate, residual))]
            assert steps == [int(v) for v in out], "the step model disagrees with the golden"
        return ([{"msb": msb, "lsb": lsb, "gate": bits(gate), "residual": residual, "row": row}],
                [{"fm": [int(v) for v in out]}])


@cocotb.test()
async def merge_public_traces(dut):
    """Conv sums (the LSB sum also where the gate is off: the unit must drop it), gates and
    residuals of public vectors with the model layers' parameters: the outputs must equal the
    official accelerator's traced block outputs. Random gaps and back-pressure."""
    bench = new_bench(dut, "merge", idle=0.3, stall=0.3)
    model = bench.model
    await bench.start()
    for layer, lanes, row in traced_positions(bench):
        inputs, outputs = model.item(lanes["msb"], lanes["lsb"], lanes["gate"],
                                     lanes["residual"], row)
        assert outputs[0]["fm"] == [int(v) for v in lanes["out"]], layer
        queue_item(bench, (inputs, outputs))
    await bench.drain()


@cocotb.test()
async def merge_corners(dut):
    """Random sums (often beyond the FM range), gates and residuals (often at the FM range
    ends) on the model rows and on extreme parameter rows, under heavy back-pressure; checks
    that the saturation and half-way rounding corners of every step were hit."""
    bench = new_bench(dut, "merge", idle=0.5, stall=0.6)
    model = bench.model
    await bench.start()
    coverage = Counter()
    low, high = bench.sum_range
    model_rows = max(first for first in bench.trace_rows.values()) + 1
    rows = len(model.table)

    def sum_value():
        return random_mixture(
            bench.rng, (0.3, lambda: bench.rng.randint(low, high)),
            (0.5, lambda: bench.rng.choice([-1, 1]) * (256 + bench.rng.randint(-2, 2))),
            (0.6, lambda: bench.rng.choice([low, high])), (1, lambda: bench.rng.randint(-64, 64)))

    def residual_value():
        return random_mixture(
            bench.rng, (0.2, lambda: bench.rng.choice([FM_MIN, FM_MAX, FM_MIN + 1, FM_MAX - 1])),
            (0.5, lambda: bench.rng.randint(FM_MIN, FM_MAX)),
            (1, lambda: bench.rng.randint(-512, 512)))

    for _ in range(1500):
        row = (bench.rng.randrange(model_rows, rows) if bench.rng.random() < 0.5
               else bench.rng.randrange(rows))
        lanes = range(bench.width)
        queue_item(bench, model.item([sum_value() for _ in lanes], [sum_value() for _ in lanes],
                                     [bench.rng.random() < 0.6 for _ in lanes],
                                     [residual_value() for _ in lanes], row, coverage))
    await bench.drain()
    dut._log.info("merge corners: %s", dict(sorted(coverage.items())))
    missing = [name for name in MERGE_CORNERS if not coverage[name]]
    assert not missing, f"corners not exercised: {missing}"


# ---- the stream contract ----------------------------------------------------------------------

def random_gate_item(bench, spread, row):
    """MSB sums in ``-spread..spread`` on table row ``row``."""
    return bench.model.item([bench.rng.randint(-spread, spread) for _ in range(bench.width)], row)


def random_merge_item(bench, spread, residual, gate, row):
    """Conv sums in ``-spread..spread``, residuals in ``-residual..residual``, ``gate(lane)``."""
    lanes = range(bench.width)
    return bench.model.item([bench.rng.randint(-spread, spread) for _ in lanes],
                            [bench.rng.randint(-spread, spread) for _ in lanes],
                            [gate(lane) for lane in lanes],
                            [bench.rng.randint(-residual, residual) for _ in lanes], row)


def random_row(bench):
    return bench.rng.randrange(bench.model.rows)


# The throughput checks change the row every transfer (each stage of the merge reads its
# parameters with the row that travels with the data).
stream_contract_tests(globals(), new_bench, {
    "gate": pipeline_contract(
        lambda bench, index: random_gate_item(bench, 40, index % bench.model.rows),
        lambda bench, index: random_gate_item(bench, 30, random_row(bench)),
        timing_items=30),
    "merge": pipeline_contract(
        lambda bench, index: random_merge_item(bench, 200, 2000, lambda lane: index % 2,
                                               index % bench.model.rows),
        lambda bench, index: random_merge_item(bench, 300, 4000,
                                               lambda lane: bench.rng.random() < 0.5,
                                               random_row(bench)),
        timing_items=40),
})
