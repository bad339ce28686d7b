"""cocotb tests of :class:`rtl.weight_cache.WeightCache` with the bundled model's kernels.

The testbench plays the conv engine: it waits for a layer's buffer to be filled, reads every
row (checking it against ``weight_rows`` of ``tests/test_weight_cache.py``, the uncompressed
weights in the engine's layout), then releases the buffer, layer after layer over two images.
Parameters (:func:`sim.runner.testbench_params`): ``rows`` (per layer, the expected rows as hex
strings), ``decode_cycles`` (per layer, :meth:`WeightCache.decode_cycles`), ``buffers`` (the
cache's buffers: the ``k``-th layer decoded, counting across images, goes into buffer
``k % buffers``).

Timing contract checked exactly: decoding the ``k``-th layer (``k >= buffers``) starts the cycle
after the release of layer ``k - buffers``'s buffer or the cycle after layer ``k - 1``'s buffer
was filled, whichever is later, and fills its buffer ``decode_cycles[l]`` cycles after that.
"""

import random

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from sim.runner import testbench_params
from sim.streams import pulse_reset, start_clock_and_reset

CLOCK_NS = 4


class Engine:
    """Reads and releases the cache's buffers as the conv engine does, with a random delay
    before each release; a monitor records the cycle each buffer's ``filled`` bit rises."""

    def __init__(self, dut, params, rng, max_delay):
        self.dut, self.rng, self.max_delay = dut, rng, max_delay
        self.rows = [[int(row, 16) for row in layer] for layer in params["rows"]]
        self.decode_cycles = params["decode_cycles"]
        self.buffers = params["buffers"]
        self.cycle = 0
        self.rises = tuple([] for _ in range(self.buffers))
        self._task = cocotb.start_soon(self._monitor())

    def stop(self):
        self._task.cancel()

    async def _monitor(self):
        previous = 0
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1
            await ReadOnly()
            filled = int(self.dut.filled.value)
            for buffer in range(self.buffers):
                if (filled >> buffer) & 1 and not (previous >> buffer) & 1:
                    self.rises[buffer].append(self.cycle)
            previous = filled

    async def wait_filled(self, buffer, rise, limit=50_000):
        """Wait until the monitor has seen rise number ``rise`` of ``buffer``'s filled bit;
        returns its cycle."""
        for _ in range(limit):
            if len(self.rises[buffer]) > rise:
                return self.rises[buffer][rise]
            await RisingEdge(self.dut.clk)
        raise AssertionError(f"buffer {buffer} not filled within {limit} cycles")

    async def read_layer(self, layer, buffer):
        """Read every row of ``layer`` from ``buffer`` and compare."""
        for row, expected in enumerate(self.rows[layer]):
            await RisingEdge(self.dut.clk)
            self.dut.read__buffer.value = buffer
            self.dut.read__row.value = row
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            got = int(self.dut.read__data.value)
            assert got == expected, (f"layer {layer} row {row}: the cache gives {got:#x}, "
                                     f"expected {expected:#x}")

    async def release(self, buffer):
        """Pulse ``release`` of ``buffer`` for one cycle; returns that cycle's number."""
        await RisingEdge(self.dut.clk)
        self.dut.release.value = 1 << buffer
        await ReadOnly()
        cycle = self.cycle
        await RisingEdge(self.dut.clk)
        self.dut.release.value = 0
        return cycle

    async def run(self, images):
        """Every layer of ``images`` images in order; checks the rows and, for layers 2 and
        later, the exact cycle their buffer is filled."""
        layers, buffers = len(self.rows), self.buffers
        released, filled = {}, {}
        for step in range(images * layers):
            layer, buffer = step % layers, step % buffers
            filled[step] = await self.wait_filled(buffer, step // buffers)
            if step >= buffers:
                begin = max(released[step - buffers] + 1, filled[step - 1] + 1)
                expected = begin + self.decode_cycles[layer]
                assert filled[step] == expected, (
                    f"layer {layer}: buffer filled in cycle {filled[step]}, expected "
                    f"{expected} ({self.decode_cycles[layer]} cycles after {begin})")
            await self.read_layer(layer, buffer)
            await ClockCycles(self.dut.clk, self.rng.randrange(self.max_delay + 1))
            released[step] = await self.release(buffer)
        assert int(self.dut.error.value) == 0, "the error flag is set"
        self.stop()


async def start(dut):
    dut.read__buffer.value = 0
    dut.read__row.value = 0
    dut.release.value = 0
    await start_clock_and_reset(dut.clk, dut.rst, CLOCK_NS)


@cocotb.test()
async def every_layer_back_to_back(dut):
    """Two images' layers, released as soon as they are read: contents and fill times."""
    await start(dut)
    await Engine(dut, testbench_params(), random.Random(1), 0).run(2)


@cocotb.test()
async def every_layer_random_release(dut):
    """Releases after random delays (up to 3000 cycles, longer than a layer's decoding)."""
    await start(dut)
    await Engine(dut, testbench_params(), random.Random(2), 3000).run(1)


@cocotb.test()
async def reset_while_decoding(dut):
    """A reset in the middle of decoding a big layer, then every layer correct again."""
    params = testbench_params()
    await start(dut)
    engine = Engine(dut, params, random.Random(3), 0)
    big = max(range(len(params["decode_cycles"])), key=lambda layer: params["decode_cycles"][layer])
    buffers = params["buffers"]
    for layer in range(big - 1):
        await engine.wait_filled(layer % buffers, layer // buffers)
        await engine.release(layer % buffers)
    engine.stop()
    await ClockCycles(dut.clk, params["decode_cycles"][big] // 2)
    await pulse_reset(dut.clk, dut.rst, 2)
    await Engine(dut, params, random.Random(4), 0).run(1)
