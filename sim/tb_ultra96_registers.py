# amaranth: UnusedElaboratable=no
"""cocotb tests of the AXI4-Lite register interface (:mod:`boards.ultra96.axi_accelerator`)
around :class:`StubAccelerator`, a small stand-in with the accelerator's ports, so the
Verilator build takes seconds instead of the whole accelerator's minutes.

The AXI master is cocotbext-axi's ``AxiLiteMaster``; most tests put random pauses on all five
channels (valid and ready). Every access is bounded by a timeout, so a target that never answers
fails the test instead of hanging it. Run by ``tests/test_ultra96_sim.py``.
"""

import random

import cocotb
import numpy as np
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from cocotb.task import bridge
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout

from boards.ultra96.registers import ID_VALUE, PIXELS, VERSION_VALUE, field, register
from sim.streams import start_clock_and_reset

CLOCK_NS = 4
STUB_LATENCY = 40           # cycles from the last pixel to the logits
POISON = 0xBEADDE           # a pixel that sets the stub's error flag (red DE, green AD, blue BE)
ACCESS_TIMEOUT_NS = 20_000  # no single AXI access may take longer


# ---- the stand-in accelerator and its model ---------------------------------------------------

class StubAccelerator(wiring.Component):
    """Accelerator-shaped: takes 1024 pixels (``pixels.ready`` follows a pseudo-random pattern,
    low about one cycle in four, to exercise back-pressure), and ``STUB_LATENCY`` cycles after the
    last one offers ten "logits": logit ``k`` is the 16-bit wrapping sum of ``r + 2 g + 3 b`` over
    the pixels with index ``k mod 10``. ``cycles``, ``images`` and ``busy`` behave like the
    accelerator's; ``error`` is set (sticky until reset) by the pixel :data:`POISON`."""

    def __init__(self):
        super().__init__({
            "pixels": In(stream.Signature(data.StructLayout({
                "rgb": data.ArrayLayout(8, 3)}))),
            "logits": Out(stream.Signature(data.StructLayout({
                "logits": data.ArrayLayout(16, 10)}))),
            "cycles": Out(32), "images": Out(32), "busy": Out(1), "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lfsr = Signal(16, init=0xACE1)
        m.d.sync += lfsr.eq((lfsr << 1) | (lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]))
        count = Signal(range(PIXELS + 1))
        sums = [Signal(16, name=f"sum{k}") for k in range(10)]
        lane = Signal(range(10))
        wait = Signal(range(STUB_LATENCY + 1))
        counting = Signal()
        rgb = self.pixels.payload.rgb
        accepting = (count < PIXELS) & ~self.logits.valid & (wait == 0)
        m.d.comb += [
            self.pixels.ready.eq(accepting & (lfsr[0:2] != 0)),
            self.busy.eq(counting | self.logits.valid),
        ]
        for k in range(10):
            m.d.comb += self.logits.payload.logits[k].eq(sums[k])
        with m.If(counting & ~self.logits.valid):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(self.pixels.valid & self.pixels.ready):
            m.d.sync += [count.eq(count + 1), lane.eq(Mux(lane == 9, 0, lane + 1))]
            for k in range(10):
                with m.If(lane == k):
                    m.d.sync += sums[k].eq(sums[k] + rgb[0] + 2 * rgb[1] + 3 * rgb[2])
            with m.If(count == 0):
                m.d.sync += [counting.eq(1), self.cycles.eq(1)]
            with m.If(self.pixels.payload.as_value() == POISON):
                m.d.sync += self.error.eq(1)
            with m.If(count == PIXELS - 1):
                m.d.sync += wait.eq(STUB_LATENCY)
        with m.If(wait != 0):
            m.d.sync += wait.eq(wait - 1)
            with m.If(wait == 1):
                m.d.sync += self.logits.valid.eq(1)
        with m.If(self.logits.valid & self.logits.ready):
            m.d.sync += [self.logits.valid.eq(0), counting.eq(0), count.eq(0), lane.eq(0),
                         self.images.eq(self.images + 1)]
            m.d.sync += [s.eq(0) for s in sums]
        return m


def stub_logits(pixels):
    """The stub's logits for an image (uint8 [3, 32, 32]): int16 [10]."""
    rgb = pixels.reshape(3, PIXELS).astype(np.int64)
    weighted = rgb[0] + 2 * rgb[1] + 3 * rgb[2]
    sums = np.array([weighted[k::10].sum() for k in range(10)]) & 0xFFFF
    return np.where(sums >= 0x8000, sums - 0x10000, sums).astype(np.int16)


# ---- helpers ------------------------------------------------------------------------------------

def _pauses(rng, probability):
    while True:
        yield int(rng.random() < probability)


class Bench:
    """Clock, reset and an ``AxiLiteMaster`` on the ``axi`` port; ``pause`` (0..1) is the
    probability that a channel holds valid (masters) or ready (response sinks) low."""

    def __init__(self, dut, pause=0.0, seed=1):
        from cocotbext.axi import AxiLiteBus, AxiLiteMaster

        self.dut = dut
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "axi_"), dut.clk, dut.rst)
        rng = random.Random(seed)
        if pause:
            for channel in (self.master.write_if.aw_channel, self.master.write_if.w_channel,
                            self.master.write_if.b_channel, self.master.read_if.ar_channel,
                            self.master.read_if.r_channel):
                channel.set_pause_generator(_pauses(rng, pause))

    async def start(self):
        await start_clock_and_reset(self.dut.clk, self.dut.rst, CLOCK_NS)
        await RisingEdge(self.dut.clk)
        return self

    async def read(self, offset):
        """(value, resp) of a 32-bit read."""
        response = await with_timeout(self.master.read(offset, 4), ACCESS_TIMEOUT_NS, "ns")
        return int.from_bytes(response.data, "little"), int(response.resp)

    async def write(self, offset, value, length=4):
        """resp of a write of ``length`` bytes of ``value`` at byte ``offset``."""
        response = await with_timeout(
            self.master.write(offset, value.to_bytes(length, "little")), ACCESS_TIMEOUT_NS, "ns")
        return int(response.resp)

    async def reg(self, name, index=0):
        value, resp = await self.read(register(name).address(index))
        assert resp == 0, f"read of {name}[{index}] answered {resp}"
        return value

    async def set(self, name, value, index=0):
        resp = await self.write(register(name).address(index), value)
        assert resp == 0, f"write of {name}[{index}] answered {resp}"

    async def status(self):
        value = await self.reg("STATUS")
        return {item.name: bool(value & item.mask) for item in register("STATUS").fields}

    async def load(self, pixels):
        rgb = pixels.reshape(3, PIXELS).astype(np.uint32)
        words = rgb[0] | rgb[1] << 8 | rgb[2] << 16
        for index, word in enumerate(words.tolist()):
            await self.set("IMAGE", word, index)

    async def wait_loaded(self, limit_cycles=20_000):
        for _ in range(limit_cycles // 8):
            if not (await self.status())["LOADING"]:
                return
        raise AssertionError(f"LOADING still set after about {limit_cycles} cycles")

    async def wait_done(self, limit_cycles=20_000):
        for _ in range(limit_cycles // 8):
            if (await self.status())["DONE"]:
                return
        raise AssertionError(f"DONE not set within about {limit_cycles} cycles")

    async def logits(self):
        words = [await self.reg("LOGITS", k) for k in range(10)]
        return np.array([w - (1 << 32) if w >> 31 else w for w in words], np.int64)


START = field("CONTROL", "START").mask
SOFT_RESET = field("CONTROL", "SOFT_RESET").mask
SLVERR = 2


def _image(rng):
    return rng.integers(0, 256, size=(3, 32, 32), dtype=np.uint8)


# ---- tests --------------------------------------------------------------------------------------

@cocotb.test()
async def identification_and_idle_status(dut):
    """ID and VERSION read their constants; after reset nothing is busy or done."""
    bench = await Bench(dut).start()
    assert await bench.reg("ID") == ID_VALUE
    assert await bench.reg("VERSION") == VERSION_VALUE
    assert await bench.reg("STATUS") == 0
    assert await bench.reg("IMAGES") == 0


@cocotb.test()
async def scratch_and_window_byte_writes(dut):
    """Whole-word and byte writes (wstrb) to SCRATCH and the image window, read back under
    random pauses on every channel."""
    bench = await Bench(dut, pause=0.4, seed=2).start()
    await bench.set("SCRATCH", 0x1234_5678)
    assert await bench.reg("SCRATCH") == 0x1234_5678
    # Byte 2 only: an unaligned 1-byte write drives wstrb = 0b0100.
    assert await bench.write(register("SCRATCH").offset + 2, 0xAB, length=1) == 0
    assert await bench.reg("SCRATCH") == 0x12AB_5678
    # The window keeps 24 bits per word: bits 31:24 read as 0.
    window = register("IMAGE")
    await bench.set("IMAGE", 0xFF11_2233, 5)
    assert await bench.reg("IMAGE", 5) == 0x11_2233
    assert await bench.write(window.address(5) + 1, 0x99, length=1) == 0
    assert await bench.reg("IMAGE", 5) == 0x11_9933
    # The last word of the window is there too.
    await bench.set("IMAGE", 0xC0FFEE, window.count - 1)
    assert await bench.reg("IMAGE", window.count - 1) == 0xC0FFEE


@cocotb.test()
async def illegal_accesses_get_slverr(dut):
    """Writes to read-only registers, reads of CONTROL and accesses to unmapped words are
    answered with SLVERR (never a hang) and change nothing; the bus works afterwards."""
    bench = await Bench(dut, pause=0.3, seed=3).start()
    await bench.set("SCRATCH", 0x5555_AAAA)
    for reg in ("ID", "VERSION", "STATUS", "CYCLES", "IMAGES", "BATCH_IMAGES", "BATCH_CYCLES",
                "BATCH_ERROR"):
        assert await bench.write(register(reg).offset, 0xFFFF_FFFF) == SLVERR, reg
    for k in (0, 9):
        assert await bench.write(register("LOGITS").address(k), 0x7FFF) == SLVERR
    _, resp = await bench.read(register("CONTROL").offset)
    assert resp == SLVERR, "CONTROL is write-only"
    unmapped = (register("LOGITS").end, register("BATCH_ERROR").offset - 4,
                register("BATCH_ERROR").end, 0x0800, 0x0FFC, register("IMAGE").end, 0x8000, 0xFFFC)
    for offset in unmapped:
        assert await bench.write(offset, 0xDEAD_BEEF) == SLVERR, hex(offset)
        value, resp = await bench.read(offset)
        assert resp == SLVERR and value == 0, (hex(offset), value, resp)
    # Nothing changed: the refused STATUS write did not start anything, SCRATCH is intact.
    assert await bench.reg("STATUS") == 0
    assert await bench.reg("SCRATCH") == 0x5555_AAAA
    assert await bench.reg("ID") == ID_VALUE


@cocotb.test()
async def pipelined_reads_and_writes(dut):
    """Many transactions in flight at once (the master sends the next address and data before
    the previous response is taken; write responses are held back often): every one is
    answered, in order, with its own response, and the written words are all there."""
    bench = await Bench(dut, pause=0.4, seed=8).start()
    rng = random.Random(8)
    bench.master.write_if.b_channel.set_pause_generator(_pauses(rng, 0.8))
    bench.master.read_if.r_channel.set_pause_generator(_pauses(rng, 0.6))
    window = register("IMAGE")
    writes, expected = [], []
    for k in range(48):
        if k % 6 == 5:                                  # interleaved illegal writes
            offset, value, resp = register("ID").offset, k, SLVERR
        else:
            offset, value, resp = window.address(100 + k), 0x10_0000 * (k % 16) + k, 0
        writes.append(cocotb.start_soon(bench.write(offset, value)))
        expected.append(resp)
    reads = [cocotb.start_soon(bench.read(register(name).offset))
             for name in ("ID", "CONTROL", "VERSION") * 6]
    assert [await task for task in writes] == expected
    assert [await task for task in reads] == [(ID_VALUE, 0), (0, SLVERR),
                                              (VERSION_VALUE, 0)] * 6
    for k in range(48):
        if k % 6 != 5:
            assert await bench.reg("IMAGE", 100 + k) == 0x10_0000 * (k % 16) + k, k


@cocotb.test()
async def refused_commands_while_busy(dut):
    """START while busy and window accesses while the window is streamed are refused with
    SLVERR; the image in flight still completes with the right logits."""
    bench = await Bench(dut).start()
    rng = np.random.default_rng(4)
    image = _image(rng)
    await bench.load(image)
    await bench.set("CONTROL", START)
    status = await bench.status()
    assert status["BUSY"] and status["LOADING"] and not status["DONE"], status
    assert await bench.write(register("IMAGE").address(3), 0) == SLVERR
    _, resp = await bench.read(register("IMAGE").address(3))
    assert resp == SLVERR
    assert await bench.write(register("CONTROL").offset, START) == SLVERR
    await bench.wait_done()
    np.testing.assert_array_equal(await bench.logits(), stub_logits(image))
    assert await bench.reg("IMAGES") == 1
    # The refused write did not reach the window.
    rgb = image.reshape(3, PIXELS)[:, 3].astype(int)
    assert await bench.reg("IMAGE", 3) == rgb[0] | rgb[1] << 8 | rgb[2] << 16


async def _watch_stream(dut, stats):
    """Counts pixel transfers into the core and "bubbles": cycles inside an image (between its
    first and its 1024th transfer) in which the core is ready but no pixel is offered."""
    valid, ready = dut.pixels__valid, dut.pixels__ready     # the wires to the core
    while True:
        await RisingEdge(dut.clk)
        await ReadOnly()
        if valid.value and ready.value:
            stats["transfers"] += 1
        elif ready.value and stats["transfers"] % PIXELS:
            stats["bubbles"] += 1


@cocotb.test()
async def classify_under_random_timing(dut):
    """Three images with random pauses on all channels: logits, CYCLES and IMAGES as the stub
    computes them; the next image is written while the previous one is computed. The window
    streams into the core without bubbles (one pixel in every cycle the core is ready)."""
    bench = await Bench(dut, pause=0.5, seed=5).start()
    stats = {"transfers": 0, "bubbles": 0}
    watcher = cocotb.start_soon(_watch_stream(dut, stats))
    rng = np.random.default_rng(5)
    images = [_image(rng) for _ in range(3)]
    await bench.load(images[0])
    for number, image in enumerate(images):
        await bench.set("CONTROL", START)
        await bench.wait_loaded()
        if number + 1 < len(images):
            await bench.load(images[number + 1])        # overlaps with the computation
        await bench.wait_done()
        status = await bench.status()
        assert status == {"BUSY": False, "DONE": True, "ERROR": False, "LOADING": False,
                          "BATCH": False, "BUS_ERROR": False}, status
        np.testing.assert_array_equal(await bench.logits(), stub_logits(image))
        cycles = await bench.reg("CYCLES")
        # At least one cycle per pixel plus the stub's latency; the stub stalls about 1 in 4.
        assert PIXELS + STUB_LATENCY <= cycles < 2 * PIXELS + STUB_LATENCY + 10, cycles
        assert await bench.reg("IMAGES") == number + 1
    watcher.cancel()
    assert stats == {"transfers": 3 * PIXELS, "bubbles": 0}, stats


@cocotb.test()
async def soft_reset_abandons_an_image_and_clears_error(dut):
    """SOFT_RESET in the middle of an image returns to idle (the core's counters restart); the
    stub's error flag shows in STATUS.ERROR until SOFT_RESET; then an image classifies."""
    bench = await Bench(dut, pause=0.2, seed=6).start()
    rng = np.random.default_rng(6)
    image = _image(rng)
    await bench.load(image)
    await bench.set("CONTROL", START)
    await bench.wait_done()
    await bench.set("CONTROL", START)
    await ClockCycles(dut.clk, 300)                     # half-way through streaming
    await bench.set("CONTROL", SOFT_RESET | START)      # START in the same write is ignored
    assert await bench.reg("STATUS") == 0
    assert await bench.reg("IMAGES") == 0
    poisoned = image.copy()
    poisoned[:, 7, 7] = (0xDE, 0xAD, 0xBE)
    await bench.load(poisoned)
    await bench.set("CONTROL", START)
    await bench.wait_done()
    assert (await bench.status())["ERROR"]
    await bench.set("CONTROL", SOFT_RESET)
    assert await bench.reg("STATUS") == 0
    await bench.load(image)
    await bench.set("CONTROL", START)
    await bench.wait_done()
    np.testing.assert_array_equal(await bench.logits(), stub_logits(image))
    assert await bench.reg("IMAGES") == 1


@cocotb.test()
async def driver_classifies_through_the_bridge(dut):
    """The host driver (blocking code in a cocotb.task.bridge thread, register accesses through
    cocotbext-axi) classifies two images, and its timeout raises a clear error."""
    from boards.ultra96.driver import AcceleratorTimeout, BusError, Driver
    from boards.ultra96.sim_bus import CocotbAxiLiteBus

    bench = await Bench(dut, pause=0.3, seed=7).start()
    bus = CocotbAxiLiteBus(bench.master)
    rng = np.random.default_rng(7)
    images = [_image(rng) for _ in range(2)]

    def host():
        driver = Driver(bus, timeout=1e-3)
        results = [driver.classify(image) for image in images]
        # An impossible timeout: the image cannot finish within one microsecond.
        driver.load_image(images[0])
        before = driver.start()
        try:
            driver.wait(before, timeout=1e-6)
        except AcceleratorTimeout as error:
            timeout_message = str(error)
        else:
            timeout_message = None
        driver.soft_reset()
        try:
            bus.read32(0x0800)
        except BusError as error:
            bus_error = str(error)
        else:
            bus_error = None
        return results, timeout_message, bus_error, driver.status()

    results, timeout_message, bus_error, status = await bridge(host)()
    for (logits, cycles), image in zip(results, images):
        np.testing.assert_array_equal(logits, stub_logits(image))
        assert cycles >= PIXELS + STUB_LATENCY
    assert timeout_message and "no result within" in timeout_message, timeout_message
    assert bus_error and "SLVERR" in bus_error, bus_error
    assert not any(status.values()), status
    dut._log.info("driver: %d reads, %d writes", bus.reads, bus.writes)
