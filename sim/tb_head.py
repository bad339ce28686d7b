# amaranth: UnusedElaboratable=no
"""cocotb tests of :class:`rtl.head.Head` (global average pool and linear classifier) against
the golden model and the public vectors.

The design is a :class:`sim.regression.UnitGroup` with two heads: ``head`` (the model's
classifier, 64 channels, 8x8 positions) and ``small_head`` (few channels and positions, extreme
parameters). Parameters (:func:`sim.runner.testbench_params`): each head's constructor arguments
under its name and ``latencies`` (cycles from the last input transfer to valid logits).

One image is ``positions * channels / (lanes * pixels)`` input transfers (``pixels`` positions
of ``lanes`` channels each) and one output (the logits), so the scoreboard checks the logits per
image; the public vectors' last feature maps must give the official accelerator's logits.
"""

from collections import Counter

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from fracbnn_golden.fixedpoint import FM_MAX, FM_MIN, POOL_BITS, POOL_FRAC, WT_FRAC, to_fm
from fracbnn_golden.layers import global_pool, linear
from sim.regression import group_bench
from sim.runner import PUBLIC_VECTORS
from sim.streams import StreamContract, queue_item, stream_contract_tests


class HeadModel:
    """A head's parameters, its input transfers and golden logits."""

    def __init__(self, params, latency):
        self.weight = np.asarray(params["weight"], dtype=np.int64)
        self.bias = np.asarray(params["bias"], dtype=np.int64)
        self.classes, self.channels = self.weight.shape
        self.lanes, self.positions = params["lanes"], params["positions"]
        self.pixels = params["pixels"]
        self.groups = self.channels // self.lanes
        self.transfers = self.positions // self.pixels * self.groups
        self.latency = latency

    def item(self, fm, coverage=None):
        """``fm [channels, positions]`` FM codes -> (input transfers, [expected logits])."""
        fm = np.asarray(fm, dtype=np.int64)
        # For each run of ``pixels`` positions, the channel groups in order: position by
        # position, the group's ``lanes`` channels.
        transfers = [{"fm": [int(v) for v in fm[g * self.lanes:(g + 1) * self.lanes,
                                                 run:run + self.pixels].T.reshape(-1)]}
                     for run in range(0, self.positions, self.pixels)
                     for g in range(self.groups)]
        _, pooled = global_pool(fm[None, :, :, None])
        logits = linear(pooled, self.weight, self.bias)[0]
        if coverage is not None:
            self.count_corners(fm, coverage)
        return transfers, [{"logits": [int(v) for v in logits]}]

    def count_corners(self, fm, coverage):
        """The saturation and half-way rounding cases of the pool and the linear layer (and a
        pool saturating at a transfer's position before its last, then moving off the
        bound: where one saturating sum per transfer would differ)."""
        high, low = (1 << (POOL_BITS - 1)) - 1, -(1 << (POOL_BITS - 1))
        pooled = []
        for values in fm:
            acc = 0
            for position, value in enumerate(values):
                acc += int(value) << (POOL_FRAC - 7)
                if acc > high or acc < low:
                    coverage[f"pool saturated {'high' if acc > 0 else 'low'}"] += 1
                    if position % self.pixels != self.pixels - 1:
                        following = int(values[position + 1])
                        if following < 0 if acc > high else following > 0:
                            coverage["pool saturated inside a transfer, then back"] += 1
                acc = min(max(acc, low), high)
            quotient = abs(acc) // self.positions * (1 if acc >= 0 else -1)
            shift = POOL_FRAC - 7
            if quotient & ((1 << shift) - 1) == 1 << (shift - 1):
                coverage["pool half-way"] += 1
            pooled.append(int(to_fm(quotient, POOL_FRAC)))
        weight = to_fm(self.weight, WT_FRAC)
        for k in range(self.classes):
            y = int(to_fm(self.bias[k], WT_FRAC))
            for c, x in enumerate(pooled):
                exact = (y << 7) + x * int(weight[k, c])
                if exact & 0x7F == 0x40:
                    coverage["linear half-way"] += 1
                y = (exact + 0x40) >> 7
                if y != min(max(y, FM_MIN), FM_MAX):
                    coverage[f"linear saturated {'high' if y > 0 else 'low'}"] += 1
                y = min(max(y, FM_MIN), FM_MAX)


def new_bench(dut, unit, **kwargs):
    """A :class:`StreamBench` on head ``unit`` (see :func:`sim.regression.group_bench`) with
    its :class:`HeadModel` as ``model``; the other head's ports are held idle."""
    bench = group_bench(dut, unit, **kwargs)
    bench.model = HeadModel(bench.params, bench.latency)
    return bench


def random_image(bench, model, kind):
    """``[channels, positions]`` FM codes of one kind of test image."""
    rng, shape = bench.rng, (model.channels, model.positions)
    if kind == "max":
        return np.full(shape, FM_MAX)
    if kind == "min":
        return np.full(shape, FM_MIN)
    if kind == "extremes":
        return np.array([[rng.choice([FM_MIN, FM_MAX]) for _ in range(shape[1])]
                         for _ in range(shape[0])])
    if kind == "half-way":
        # Channel sums = 32 mod 64 (8x8) or 2 mod 4 (2x2): the pooled value is exactly half-way.
        image = np.array([[rng.randint(-300, 300) for _ in range(shape[1])]
                          for _ in range(shape[0])])
        half = model.positions // 2
        image[:, 0] += half - image.sum(axis=1) % model.positions
        return image
    if kind == "large":
        return np.array([[rng.randint(-(1 << 14), 1 << 14) for _ in range(shape[1])]
                         for _ in range(shape[0])])
    return np.array([[rng.randint(FM_MIN, FM_MAX) for _ in range(shape[1])]
                     for _ in range(shape[0])])


KINDS = ("max", "min", "extremes", "half-way", "large", "random")
HEAD_CORNERS = ("pool saturated high", "pool saturated low", "pool half-way",
                "linear saturated high", "linear saturated low", "linear half-way")


def wanted_corners(model):
    """:data:`HEAD_CORNERS`, and with several positions per transfer the saturation inside
    one."""
    inside = ("pool saturated inside a transfer, then back",) if model.pixels > 1 else ()
    return HEAD_CORNERS + inside


@cocotb.test()
async def head_public_traces(dut):
    """The 24 public vectors' last feature maps: the logits must equal the official
    accelerator's. Random gaps on the input and stalls on the output."""
    bench = new_bench(dut, "head", idle=0.3, stall=0.5)
    model = bench.model
    await bench.start()
    with np.load(PUBLIC_VECTORS) as vectors:
        fm, logits, pool_fm = (vectors[key] for key in ("trace.layer3_2.out2", "logits",
                                                        "trace.pool_fm"))
    assert fm.shape[1] == model.channels and fm[0, 0].size == model.positions
    for image in range(len(fm)):
        inputs, outputs = model.item(fm[image].reshape(model.channels, -1))
        assert outputs[0]["logits"] == [int(v) for v in logits[image]]
        assert (global_pool(fm[image:image + 1])[1][0] == pool_fm[image]).all()
        queue_item(bench, (inputs, outputs))
    await bench.drain(settle_cycles=model.latency + 10)


async def corners(dut, unit, images):
    bench = new_bench(dut, unit, idle=0.4, stall=0.6)
    model = bench.model
    await bench.start()
    coverage = Counter()
    for index in range(images):
        queue_item(bench, model.item(random_image(bench, model, KINDS[index % len(KINDS)]),
                                     coverage))
    await bench.drain(settle_cycles=model.latency + 10)
    dut._log.info("%s corners: %s", unit, dict(sorted(coverage.items())))
    return coverage, model


@cocotb.test()
async def head_corners(dut):
    """Images at the FM range ends (the pool accumulator saturates), made to round half-way,
    large and random, with the model's classifier (its small weights never saturate the linear
    layer: the small head covers that); random gaps and output stalls."""
    coverage, model = await corners(dut, "head", 24)
    missing = [name for name in wanted_corners(model)
               if not coverage[name] and not name.startswith("linear saturated")]
    assert not missing, f"corners not exercised: {missing}"


@cocotb.test()
async def small_head_corners(dut):
    """The same kinds of images on the small head, whose extreme weights saturate the linear
    layer in both directions."""
    coverage, model = await corners(dut, "small_head", 240)
    missing = [name for name in wanted_corners(model) if not coverage[name]]
    assert not missing, f"corners not exercised: {missing}"


async def timing(bench):
    """Without stalls: the input transfers of an image one every ``pixels`` cycles (the head
    adds a position per cycle), the logits ``latency`` cycles after the last, and the next
    image's first transfer right after the logits are taken."""
    model = bench.model
    for kind in ("random", "large", "random"):
        queue_item(bench, model.item(random_image(bench, model, kind)))
    await bench.drain(settle_cycles=model.latency + 10)
    ins, outs = bench.source.transfer_cycles, bench.sink.transfer_cycles
    assert len(ins) == 3 * model.transfers and len(outs) == 3
    for image in range(3):
        cycles = ins[image * model.transfers:(image + 1) * model.transfers]
        assert cycles == list(range(cycles[0], cycles[0] + model.transfers * model.pixels,
                                    model.pixels)), (
            f"image {image}: input not one transfer every {model.pixels} cycles")
        assert outs[image] - cycles[-1] == model.latency, (
            f"logits {outs[image] - cycles[-1]} cycles after the last input, "
            f"documented {model.latency}")
        if image:
            gap = cycles[0] - outs[image - 1]
            assert gap <= 1, f"next image starts {gap} cycles after the logits were taken"


async def reset_in_every_phase(bench):
    """Reset while the head accumulates, while it computes the logits and while it holds them
    under back-pressure; then images sent afterwards give the right logits (partial sums of
    the interrupted image must be gone)."""
    model = bench.model
    ready = getattr(bench.dut, f"{bench.unit}_i__ready")
    valid = getattr(bench.dut, f"{bench.unit}_o__valid")
    for phase in ("accumulate", "linear", "output", "accumulate"):
        stall = bench.stall
        if phase == "output":
            bench.stall = 1.0
        queue_item(bench, model.item(random_image(bench, model, "large")))
        sent = bench.source.sent
        if phase == "accumulate":
            target = sent + bench.rng.randint(1, model.transfers - 1)
            while bench.source.sent < target:
                await RisingEdge(bench.clock)
        else:
            # Wait for the last input transfer: then the head computes (i.ready low) ...
            while bench.source.sent < sent + model.transfers:
                await RisingEdge(bench.clock)
            if phase == "linear":
                await ClockCycles(bench.clock, bench.rng.randint(0, model.channels - 1))
                await ReadOnly()
                assert not ready.value and not valid.value, "expected the head computing"
            else:
                await ClockCycles(bench.clock, model.latency + 2)
                await ReadOnly()
                assert valid.value and not ready.value, "expected logits held"
            await RisingEdge(bench.clock)
        bench.stall = stall
        await bench.reset_mid_stream()
    for kind in ("random", "large", "half-way"):
        queue_item(bench, model.item(random_image(bench, model, kind)))
    await bench.drain(settle_cycles=model.latency + 10)


HEAD_CONTRACT = StreamContract(timing, reset_in_every_phase, idle=0.2, stall=0.3)
stream_contract_tests(globals(), new_bench, {"head": HEAD_CONTRACT, "small_head": HEAD_CONTRACT})
