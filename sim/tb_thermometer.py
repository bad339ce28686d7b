# amaranth: UnusedElaboratable=no
"""cocotb tests of the input layer's units against the golden model and the public vectors:
:class:`rtl.thermometer.ThermometerEncoder`, :class:`rtl.thermometer.ThermometerConv` and
:class:`rtl.thermometer.InputBatchNorm`.

The design is a :class:`sim.regression.UnitGroup` with the units ``encoder``, ``conv`` and
``input_bn``. Parameters (:func:`sim.runner.testbench_params`): each unit's constructor arguments
under its name, ``latencies`` and ``bench.model_channels`` (the conv1/bn1 channels of the model
in the first lanes of ``conv`` and ``input_bn``; the other lanes hold extreme kernels and
parameters).

Expected values: the public vectors' thermometer counts and the official ``conv1_acc`` and
``bn1`` traces where they apply, else the golden model (the conv from thermometer bits and
XNOR-popcount per tap, independent of the prefix-sum tables the unit uses).
"""

from collections import Counter

import cocotb
import numpy as np

from fracbnn_golden.conv import THERMOMETER_BITS, thermometer_bits, thermometer_counts
from fracbnn_golden.layers import input_bn
from sim.regression import group_bench
from sim.runner import PUBLIC_VECTORS
from sim.streams import pipeline_contract, queue_item, random_mixture, stream_contract_tests

TAPS = 9


def new_bench(dut, unit, **kwargs):
    """A :class:`StreamBench` on ``unit`` of the group (see
    :func:`sim.regression.group_bench`) with the ``model_channels`` and the unit's golden
    ``model`` (None for the encoder); the other units' ports are held idle."""
    bench = group_bench(dut, unit, **kwargs)
    bench.model_channels = bench.bench_params["model_channels"]
    model = {"conv": ConvModel, "input_bn": BatchNormModel}.get(unit)
    bench.model = model and model(bench.params)
    return bench


def load(*keys):
    with np.load(PUBLIC_VECTORS) as vectors:
        return [vectors[key] for key in keys]


def bits(values):
    return sum(int(v) << k for k, v in enumerate(values))


# ---- thermometer encoder ----------------------------------------------------------------------

def encoder_item(pixel):
    pixel = np.asarray(pixel, dtype=np.uint8)
    counts = thermometer_counts(pixel)
    code = thermometer_bits(pixel.reshape(1, -1, 1, 1)).reshape(-1)
    return ([{"pixel": [int(p) for p in pixel]}],
            [{"count": [int(c) for c in counts], "bits": bits(code)}])


@cocotb.test()
async def encoder_public_traces(dut):
    """Pixels of the 24 public vectors: the counts must equal the vectors' thermometer counts.
    Random gaps and back-pressure."""
    bench = new_bench(dut, "encoder", idle=0.3, stall=0.3)
    await bench.start()
    pixels, counts = load("pixels", "counts")
    for image in range(len(pixels)):
        for _ in range(40):
            y, x = bench.rng.randrange(32), bench.rng.randrange(32)
            inputs, outputs = encoder_item(pixels[image, :, y, x])
            assert outputs[0]["count"] == [int(c) for c in counts[image, :, y, x]]
            queue_item(bench, (inputs, outputs))
    await bench.drain()


@cocotb.test()
async def encoder_corners(dut):
    """Every pixel value in every colour (round half to even at each remainder of 4, counts 0
    and 32), in random order under heavy back-pressure."""
    bench = new_bench(dut, "encoder", idle=0.5, stall=0.6)
    await bench.start()
    colours = bench.params["colours"]
    values = list(range(256))
    order = [bench.rng.sample(values, len(values)) for _ in range(colours)]
    coverage = Counter()
    for index in range(256):
        pixel = [order[c][index] for c in range(colours)]
        queue_item(bench, encoder_item(pixel))
        for p in pixel:
            if p % 8 == 4:
                coverage[f"half-way, {'odd' if (p // 8) % 2 else 'even'} quotient"] += 1
            coverage[f"count {thermometer_counts(np.uint8(p))}"] += 1
    await bench.drain()
    missing = [name for name in ("half-way, odd quotient", "half-way, even quotient", "count 0",
                                 "count 32") if not coverage[name]]
    assert not missing, f"corners not exercised: {missing}"


# ---- thermometer conv -------------------------------------------------------------------------

class ConvModel:
    """conv1 sums of one 3x3 window straight from the thermometer bits: per in-image tap,
    ``channels - 2 * popcount(a XOR w)``."""

    def __init__(self, params):
        self.weight = np.asarray(params["weight"], dtype=np.uint8)      # [out, colours * 32, 3, 3]
        self.colours = self.weight.shape[1] // THERMOMETER_BITS

    def item(self, counts, valid):
        """``counts[tap][colour]`` (0..32; anything for padding taps), ``valid[tap]``."""
        counts = np.asarray(counts, dtype=np.uint8)
        ks = np.arange(THERMOMETER_BITS)
        sums = np.zeros(len(self.weight), dtype=np.int64)
        for tap in range(TAPS):
            if not valid[tap]:
                continue
            code = (ks[None, :] < counts[tap][:, None]).reshape(-1).astype(np.uint8)
            weights = self.weight[:, :, tap // 3, tap % 3]
            sums += code.size - 2 * np.count_nonzero(weights != code[None, :], axis=1)
        return ([{"count": counts.tolist(), "valid": bits(valid)}],
                [{"sums": [int(v) for v in sums]}])


def image_window(counts, y, x, rng):
    """The counts and in-image flags of the 3x3 window at (y, x) of ``counts [colours, H, W]``;
    padding taps get random counts (the unit must ignore them)."""
    window, valid = [], []
    for tap in range(TAPS):
        yy, xx = y + tap // 3 - 1, x + tap % 3 - 1
        inside = 0 <= yy < counts.shape[1] and 0 <= xx < counts.shape[2]
        valid.append(inside)
        window.append([int(c) for c in counts[:, yy, xx]] if inside
                      else [rng.randint(0, THERMOMETER_BITS) for _ in range(counts.shape[0])])
    return window, valid


@cocotb.test()
async def conv_public_traces(dut):
    """3x3 windows of the public vectors' thermometer counts (borders often: padding taps carry
    random counts): the model channels' sums must equal the official ``conv1_acc`` trace.
    Random gaps and back-pressure."""
    bench = new_bench(dut, "conv", idle=0.3, stall=0.3)
    model = bench.model
    await bench.start()
    counts, acc = load("counts", "trace.conv1_acc")
    for image in range(len(counts)):
        for _ in range(30):
            y, x = (bench.rng.choice([0, 31, bench.rng.randrange(32)]) for _ in range(2))
            inputs, outputs = model.item(*image_window(counts[image], y, x, bench.rng))
            traced = [int(acc[image, c, y, x]) for c in bench.model_channels]
            assert outputs[0]["sums"][:len(traced)] == traced
            queue_item(bench, (inputs, outputs))
    await bench.drain()


@cocotb.test()
async def conv_corners(dut):
    """Random counts (often 0 or 32, where the all-ones and all-zeros kernels give the largest
    sums of both signs) and random padding masks (none and all padded too), heavy
    back-pressure."""
    bench = new_bench(dut, "conv", idle=0.5, stall=0.6)
    model = bench.model
    await bench.start()
    coverage = Counter()
    bound = TAPS * model.colours * THERMOMETER_BITS
    for index in range(400):
        kind = index % 4
        if kind == 0:
            fill = bench.rng.choice([0, THERMOMETER_BITS])
            counts = [[fill] * model.colours for _ in range(TAPS)]
        else:
            counts = [[bench.rng.choice([0, THERMOMETER_BITS, bench.rng.randint(0, 32)])
                       for _ in range(model.colours)] for _ in range(TAPS)]
        valid = [True] * TAPS if kind == 0 else [bench.rng.random() < 0.8 for _ in range(TAPS)]
        if index % 50 == 7:
            valid = [False] * TAPS
        inputs, outputs = model.item(counts, valid)
        sums = outputs[0]["sums"]
        coverage["largest positive sum"] += bound in sums
        coverage["largest negative sum"] += -bound in sums
        coverage["all taps padding"] += not any(valid)
        queue_item(bench, (inputs, outputs))
    await bench.drain()
    missing = [name for name in ("largest positive sum", "largest negative sum",
                                 "all taps padding") if not coverage[name]]
    assert not missing, f"corners not exercised: {missing}"


# ---- input batch norm -------------------------------------------------------------------------

class BatchNormModel:
    def __init__(self, params):
        self.scale = np.asarray(params["scale"], dtype=np.int64)
        self.bias = np.asarray(params["bias"], dtype=np.int64)
        width = params["sum_width"]
        self.sum_range = (-(1 << (width - 1)), (1 << (width - 1)) - 1)

    def item(self, sums, coverage=None):
        sums = [int(v) for v in sums]
        fm = input_bn(np.asarray(sums)[None], self.scale, self.bias)[0]
        if coverage is not None:
            for value, s, b in zip(sums, self.scale, self.bias):
                exact = int(s) * value + int(b)        # 8 fraction bits; FM keeps 7
                if exact % 2:
                    coverage[f"half-way {'negative' if exact < 0 else 'positive'}"] += 1
                rounded = (exact + 1) >> 1
                coverage["saturated high"] += rounded > 32767
                coverage["saturated low"] += rounded < -32768
        return [{"sums": sums}], [{"fm": [int(v) for v in fm]}]


@cocotb.test()
async def input_bn_public_traces(dut):
    """conv1 sums of the public vectors: the model channels must give the official ``bn1``
    trace; the extreme lanes get the same sums. Random gaps and back-pressure."""
    bench = new_bench(dut, "input_bn", idle=0.3, stall=0.3)
    model = bench.model
    await bench.start()
    acc, bn1 = load("trace.conv1_acc", "trace.bn1")
    channels = bench.model_channels
    lanes = len(model.scale)
    for _ in range(600):
        image, y, x = (bench.rng.randrange(size) for size in (len(acc), 32, 32))
        sums = [int(acc[image, channels[k % len(channels)], y, x]) for k in range(lanes)]
        inputs, outputs = model.item(sums)
        assert outputs[0]["fm"][:len(channels)] == [int(bn1[image, c, y, x]) for c in channels]
        queue_item(bench, (inputs, outputs))
    await bench.drain()


@cocotb.test()
async def input_bn_corners(dut):
    """Sums over the whole input range (both ends often), small sums (half-way rounding of
    either sign), heavy back-pressure."""
    bench = new_bench(dut, "input_bn", idle=0.5, stall=0.6)
    model = bench.model
    await bench.start()
    coverage = Counter()
    low, high = model.sum_range

    def value():
        return random_mixture(
            bench.rng, (0.2, lambda: bench.rng.choice([low, high, low + 1, high - 1])),
            (0.6, lambda: bench.rng.randint(low, high)), (1, lambda: bench.rng.randint(-20, 20)))

    for _ in range(500):
        queue_item(bench, model.item([value() for _ in model.scale], coverage))
    await bench.drain()
    missing = [name for name in ("half-way negative", "half-way positive", "saturated high",
                                 "saturated low") if not coverage[name]]
    assert not missing, f"corners not exercised: {missing}"


# ---- the stream contract ----------------------------------------------------------------------

def random_pixel(bench, index):
    return encoder_item([bench.rng.randrange(256) for _ in range(bench.params["colours"])])


def random_window(bench, valid):
    """A conv item of random counts (0..32) at every tap; ``valid``: the in-image flags."""
    return bench.model.item([[bench.rng.randint(0, THERMOMETER_BITS)
                              for _ in range(bench.model.colours)] for _ in range(TAPS)], valid)


def random_sums(bench, low, high):
    return bench.model.item([bench.rng.randint(low, high) for _ in bench.model.scale])


stream_contract_tests(globals(), new_bench, {
    "encoder": pipeline_contract(random_pixel),
    "conv": pipeline_contract(
        lambda bench, index: random_window(bench, [bench.rng.random() < 0.9
                                                   for _ in range(TAPS)]),
        lambda bench, index: random_window(bench, [True] * TAPS)),
    "input_bn": pipeline_contract(
        lambda bench, index: random_sums(bench, *bench.model.sum_range),
        lambda bench, index: random_sums(bench, -300, 300)),
})
