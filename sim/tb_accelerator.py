"""cocotb tests of :class:`rtl.accelerator.FracBNNAccelerator` against the golden model.

Run through :mod:`sim.accelerator`. The images come from the ``.npz`` file named by
``$FRACBNN_SIM_DATA`` (``pixels`` uint8 ``[N, 3, 32, 32]``); the golden model's logits for them
are the expected outputs. ``images_bit_exact`` writes the logits and cycle counts the RTL produced
to ``$FRACBNN_SIM_OUT`` (``.npz``: ``logits`` int16 ``[N, 10]``, ``cycles`` and ``done_cycle``
int64 ``[N]``, see :mod:`sim.accelerator`).
The testbench parameters (:func:`sim.runner.testbench_params`) carry ``cycle_limit`` (cycles an
image may take before the test gives up), ``writeback`` (offset and width of each field of the
payload of the accelerator's ``writeback`` stream) and ``layers`` (per written layer: golden
trace key, channels and map size).
"""

import contextlib
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, ReadOnly, RisingEdge, SimTimeoutError, with_timeout

from fracbnn_golden import CLASSES, FracBNN
from fracbnn_golden.fixedpoint import FM_BITS
from sim.runner import testbench_params
from sim.streams import Scoreboard, StreamSink, StreamSource

DATA_ENV = "FRACBNN_SIM_DATA"
OUT_ENV = "FRACBNN_SIM_OUT"
# The model file the accelerator was built with (unset: the bundled model).
MODEL_ENV = "FRACBNN_SIM_MODEL"
FM_MASK = (1 << FM_BITS) - 1
CLOCK_NS = 4
PIXEL_BITS = 24


def _golden():
    """The golden model of the model the accelerator was built with."""
    path = os.environ.get(MODEL_ENV)
    return FracBNN.default() if path is None else FracBNN.from_npz(path)


def pack_pixel(rgb):
    return int(rgb[0]) | int(rgb[1]) << 8 | int(rgb[2]) << 16


def _signed(value, bits):
    return value - (1 << bits) if value >> (bits - 1) else value


def unpack_logits(payload):
    return tuple(_signed((payload >> (FM_BITS * k)) & FM_MASK, FM_BITS)
                 for k in range(len(CLASSES)))


def image_payloads(image):
    """The 1024 pixel transfers of a [3, 32, 32] image, row-major."""
    return [pack_pixel(image[:, y, x]) for y in range(image.shape[1])
            for x in range(image.shape[2])]


def image_rows(image):
    """The 32 row transfers of a [3, 32, 32] image for the harness's ``rows`` port: pixel
    ``x`` of a row in bits ``24 x`` upwards."""
    pixels = image_payloads(image)
    width = image.shape[2]
    return [sum(pixel << (PIXEL_BITS * x) for x, pixel in enumerate(pixels[y * width:
                                                                         (y + 1) * width]))
            for y in range(image.shape[1])]


def load_images():
    with np.load(os.environ[DATA_ENV]) as data:
        return data["pixels"]


async def start(dut, bulk=False):
    """Clock, reset, and the harness's mode: ``bulk`` rows and results, or the core's own
    pixel and logit streams."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.bulk.value = int(bulk)
    dut.rows__valid.value = 0
    dut.results__ready.value = 0
    await reset(dut)


async def reset(dut, cycles=3):
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


class WritebackMonitor:
    """Collects every feature-map word the accelerator writes (each transfer on its always-ready
    ``writeback`` and ``stem_writeback`` streams) into per-layer arrays, image by image: the
    stem writes the next image while the layers compute the one before it, so a write belongs
    to the image whose map of its layer it falls into (every map is written exactly once per
    image). :meth:`take` returns the oldest image's maps (``[channels, size, size]`` int16 per
    layer, -32768 where nothing was written)."""

    STREAMS = ("writeback", "stem_writeback")

    def __init__(self, dut, params):
        self._fields = {name: tuple(field) for name, field in params["writeback"].items()}
        self._layers = params["layers"]
        self._pe = params["pe"]
        self._words = [layer["channels"] // self._pe * layer["size"] ** 2
                       for layer in self._layers]
        self._written = [0] * len(self._layers)          # words per layer, over all images
        self._images, self._taken = [], 0
        self._tasks = [cocotb.start_soon(self._watch(dut.clk, getattr(dut, f"{name}__valid"),
                                                     getattr(dut, f"{name}__payload")))
                       for name in self.STREAMS]

    def _empty(self):
        return [np.full((layer["channels"], layer["size"], layer["size"]), -32768, np.int16)
                for layer in self._layers]

    def take(self):
        """The maps of the next image not taken yet."""
        while len(self._images) <= self._taken:
            self._images.append(self._empty())
        maps, self._images[self._taken] = self._images[self._taken], None
        self._taken += 1
        return maps

    def stop(self):
        for task in self._tasks:
            task.cancel()

    def _field(self, word, name):
        offset, width = self._fields[name]
        return (word >> offset) & ((1 << width) - 1)

    async def _watch(self, clock, valid, payload):
        while True:
            await RisingEdge(clock)
            await ReadOnly()
            if not valid.value:
                continue
            word = int(payload.value)
            layer, y, x, group, pixels, fm = (
                self._field(word, name) for name in ("layer", "y", "x", "group", "pixels", "fm"))
            # A transfer holds ``pixels`` pixels of a row, (y, x) first, of one image.
            image = self._written[layer] // self._words[layer]
            self._written[layer] += pixels
            while len(self._images) <= image:
                self._images.append(self._empty())
            for pixel in range(pixels):
                for lane in range(self._pe):
                    code = _signed((fm >> (FM_BITS * (pixel * self._pe + lane))) & FM_MASK,
                                   FM_BITS)
                    self._images[image][layer][group * self._pe + lane, y, x + pixel] = code


async def classify(dut, images, *, pixel_idle=0.0, logit_stall=0.0, seed=0, monitor=None,
                   out=None, check=True):
    """Stream ``images`` through the accelerator back to back and check every logit against
    the golden model. Returns the RTL's logits and cycles, the golden logits and trace (numpy
    arrays) and, with a ``monitor``, each image's written maps. With ``out`` (a path) the logits
    and cycles are saved there before they are checked; ``check=False`` leaves the logits
    unchecked."""
    params = testbench_params()
    rng = random.Random(seed)
    expected, trace = _golden().logits(images, trace=True)
    scoreboard = Scoreboard(unpack_logits, dut._log)
    received, cycles, written = [], [], []

    finished = Event()

    def on_logits(payload):
        received.append(unpack_logits(payload))
        cycles.append(int(dut.cycles.value))
        dut._log.info("image %d of %d: %d cycles", len(received), len(images), cycles[-1])
        if monitor is not None:
            written.append(monitor.take())
        scoreboard.receive(payload)
        if len(received) == len(images):
            finished.set()

    for row in expected:
        scoreboard.expect(tuple(int(v) for v in row))
    source = StreamSource(dut, "pixels", dut.clk, idle=pixel_idle, rng=rng).start()
    sink = StreamSink(dut, "logits", dut.clk, on_logits, stall=logit_stall, rng=rng).start()
    for image in images:
        for payload in image_payloads(image):
            source.send(payload)
    limit = params["cycle_limit"] * len(images)
    with contextlib.suppress(SimTimeoutError):
        await with_timeout(finished.wait(), limit * CLOCK_NS, "ns")
    await RisingEdge(dut.clk)                   # let the last transfer complete
    source.stop()
    sink.stop()
    assert len(received) == len(images), (
        f"only {len(received)} of {len(images)} images finished within {limit} cycles")
    logits, cycles = np.array(received, dtype=np.int16), np.array(cycles, dtype=np.int64)
    if out:
        np.savez(out, logits=logits, cycles=cycles)
    if check:
        scoreboard.check()
    assert not dut.error.value, "the weight cache's error flag is set"
    return logits, cycles, expected, trace, written


async def feed_rows(dut, rows):
    """Write ``rows`` to the harness's row FIFO, each as soon as there is room; Python wakes
    up about twice per row, not in every cycle."""
    for row in rows:
        dut.rows__payload.value = row
        dut.rows__valid.value = 1
        await ReadOnly()
        while not dut.rows__ready.value:
            await RisingEdge(dut.rows__ready)
            await ReadOnly()
        await RisingEdge(dut.clk)                # the row transfers at this edge
    dut.rows__valid.value = 0


async def take_results(dut, count):
    """The next ``count`` results of the harness's result FIFO, each a dict of its fields
    (``logits`` packed, ``cycles``, ``done_cycle``)."""
    fields = testbench_params()["results"]
    results = []
    while len(results) < count:
        await ReadOnly()
        if not dut.results__valid.value:
            await RisingEdge(dut.results__valid)
            await ReadOnly()
        payload = int(dut.results__payload.value)
        results.append({name: (payload >> offset) & ((1 << width) - 1)
                        for name, (offset, width) in fields.items()})
        await RisingEdge(dut.clk)
        dut.results__ready.value = 1             # the result transfers at the next edge
        await RisingEdge(dut.clk)
        dut.results__ready.value = 0
    return results


async def classify_in_bulk(dut, images, out=None):
    """Stream ``images`` back to back through the harness's row and result FIFOs and check
    every logit against the golden model; returns the logits, cycles and done cycles."""
    params = testbench_params()
    expected = _golden().logits(images)
    scoreboard = Scoreboard(unpack_logits, dut._log)
    for row in expected:
        scoreboard.expect(tuple(int(v) for v in row))
    feeder = cocotb.start_soon(feed_rows(dut, [row for image in images
                                               for row in image_rows(image)]))
    limit = params["cycle_limit"] * len(images)
    try:
        results = await with_timeout(take_results(dut, len(images)), limit * CLOCK_NS, "ns")
    except SimTimeoutError:
        raise AssertionError(f"the images did not all finish within {limit} cycles") from None
    finally:
        feeder.cancel()
    for index, result in enumerate(results):
        dut._log.info("image %d of %d: %d cycles, done in batch cycle %d", index + 1,
                      len(images), result["cycles"], result["done_cycle"])
        scoreboard.receive(result["logits"])
    logits = np.array([unpack_logits(result["logits"]) for result in results], dtype=np.int16)
    cycles, done_cycle = (np.array([result[name] for result in results], dtype=np.int64)
                          for name in ("cycles", "done_cycle"))
    if out:
        np.savez(out, logits=logits, cycles=cycles, done_cycle=done_cycle)
    scoreboard.check()
    assert not dut.error.value, "the weight cache's error flag is set"
    return logits, cycles, done_cycle


@cocotb.test()
async def images_bit_exact(dut):
    """Every image of the data file, back to back through the harness's FIFOs: logits equal
    to the golden model's."""
    await start(dut, bulk=True)
    _, cycles, _ = await classify_in_bulk(dut, load_images(), out=os.environ.get(OUT_ENV))
    dut._log.info("cycles per image: %s", cycles.tolist())


@cocotb.test()
async def every_layer_matches_the_trace(dut):
    """The first two images: every feature map the RTL writes (stem and all 18 PG layers)
    equals the golden trace, element by element."""
    await start(dut)
    params = testbench_params()
    monitor = WritebackMonitor(dut, params)
    images = load_images()[:2]
    logits, _, expected, trace, written = await classify(dut, images, monitor=monitor,
                                                         check=False)
    monitor.stop()
    problems = []
    for image, maps in enumerate(written):
        for layer, got in zip(params["layers"], maps):
            want = trace[layer["trace"]][image]
            wrong = np.argwhere(got != want)
            if len(wrong):
                c, y, x = wrong[0]
                problems.append(f"image {image} {layer['trace']}: {len(wrong)} of {want.size} "
                                f"differ, first [{c},{y},{x}] got {got[c, y, x]} "
                                f"want {want[c, y, x]}")
    if (logits != expected).any():
        problems.append(f"logits {logits.tolist()} differ from {expected.tolist()}")
    assert not problems, "; ".join(problems[:6])


@cocotb.test()
async def back_pressure(dut):
    """Random gaps in the pixel stream and random stalls of the logit stream."""
    await start(dut)
    await classify(dut, load_images()[:2], pixel_idle=0.3, logit_stall=0.7, seed=7)


@cocotb.test()
async def reset_in_the_middle_of_an_image(dut):
    """Reset while an image is half loaded, and again while one is being computed and the
    next is loaded behind it; then a complete image gives the right logits and cycle count
    restarts."""
    await start(dut)
    image = load_images()[0]
    for cut, images in ((500, 1), (None, 2)):
        source = StreamSource(dut, "pixels", dut.clk).start()
        for payload in image_payloads(image) * images:
            source.send(payload)
        if cut is None:
            await ClockCycles(dut.clk, 1024 + 3000)       # loaded, deep inside the layers
        else:
            while source.sent < cut:
                await RisingEdge(dut.clk)
        source.stop()
        await reset(dut)
        assert not dut.busy.value, "busy after reset"
    _, cycles, _, _, _ = await classify(dut, image[None])
    assert 0 < cycles[0] < testbench_params()["cycle_limit"]
