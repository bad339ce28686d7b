# amaranth: UnusedElaboratable=no
"""cocotb tests of the batch engine (:mod:`boards.ultra96.dma`) inside the AXI4-Lite interface,
around the stand-in accelerator of :mod:`sim.tb_ultra96_registers` (a build of seconds).

The DDR is cocotbext-axi's ``AxiRam`` on the ``dma`` port, with random pauses on its five
channels (arready, rvalid, awready, wready, bvalid held low at random: back-pressure and
latency); the registers go through ``AxiLiteMaster`` with random pauses too. A monitor checks
every read and write burst of the engine against the AXI rules the HP port relies on (no 4 KiB
crossing, at most 16 beats, full-width INCR) and counts outstanding transactions. After every
batch the whole RAM outside the result buffer must hold what the test put there: the engine
writes nowhere else. Error responses are injected per address range. Run by
``tests/test_ultra96_sim.py``.
"""

import logging
import random

import cocotb
import numpy as np
from cocotb.task import bridge
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout
from cocotbext.axi import AxiResp

from boards.ultra96.driver import RECORD_DTYPE, AcceleratorFault, Driver, DriverError
from boards.ultra96.registers import (
    IMAGE_BYTES,
    MAX_BURST_BEATS,
    PIXELS,
    RECORD_BYTES,
    field,
    register,
)
from boards.ultra96.sim_bus import CocotbAxiLiteBus, axi_ram
from sim.tb_ultra96_registers import SLVERR, STUB_LATENCY, Bench, _pauses, stub_logits

RAM_BYTES = 1 << 20
# The images start 0xF10 bytes into a page, so bursts must be cut at page ends.
SRC = 0x1_0F10
DST = 0x8_0020
START_BATCH = field("CONTROL", "START_BATCH").mask
SOFT_RESET = field("CONTROL", "SOFT_RESET").mask
BATCH_END = field("IRQ_STATUS", "BATCH_END").mask
BATCH_TIMEOUT_NS = 2_000_000      # a few images of the stub take tens of microseconds


class DmaBench(Bench):
    """:class:`Bench` plus the ``AxiRam`` (``ram``; ``memory`` over the same bytes, filled with a
    random background) with random pauses on its channels, a burst monitor and error
    injection (:meth:`fail`)."""

    def __init__(self, dut, pause=0.0, seed=1):
        super().__init__(dut, pause, seed)
        self.ram, self.memory = axi_ram(dut, "dma_", RAM_BYTES)
        for interface in (self.ram.read_if, self.ram.write_if):
            interface.log.setLevel(logging.WARNING)       # not a line per burst
        rng = random.Random(seed + 100)
        if pause:
            for channel in (self.ram.read_if.ar_channel, self.ram.read_if.r_channel,
                            self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                            self.ram.write_if.b_channel):
                channel.set_pause_generator(_pauses(rng, pause))
        self.background = np.random.default_rng(seed).integers(0, 256, RAM_BYTES, np.uint8)
        self.memory.array[:] = self.background
        self.faults = []            # (read?, first, end, resp)
        self._install_faults()
        self.stats = {"bursts": 0, "max_outstanding": 0, "outstanding": 0, "writes": 0,
                      "writes_pending": 0}

    def _install_faults(self):
        """Addresses in an injected range are answered with its response: the RAM model raises,
        which it turns into SLVERR; DECERR is rewritten on the way out."""
        for interface, is_read in ((self.ram.read_if, True), (self.ram.write_if, False)):
            method = "_read" if is_read else "_write"
            original = getattr(interface, method)
            channel = interface.r_channel if is_read else interface.b_channel
            field_name = "rresp" if is_read else "bresp"
            wanted = {}

            def make(original=original, is_read=is_read, wanted=wanted):
                async def access(address, *args):
                    for read, first, end, resp in self.faults:
                        if read == is_read and first <= address < end:
                            wanted["resp"] = resp
                            raise OSError("injected")
                    return await original(address, *args)
                return access

            setattr(interface, method, make())
            send = channel.send

            async def send_with(obj, send=send, wanted=wanted, field_name=field_name):
                if getattr(obj, field_name) == AxiResp.SLVERR and wanted.get("resp"):
                    setattr(obj, field_name, wanted["resp"])
                await send(obj)
            channel.send = send_with

    def fail(self, read, first, end, resp):
        self.faults.append((read, first, end, resp))

    async def start(self):
        await super().start()
        cocotb.start_soon(self._monitor())
        return self

    async def _monitor(self):
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            if dut.dma__arvalid.value and dut.dma__arready.value:
                address, beats = int(dut.dma__araddr.value), int(dut.dma__arlen.value) + 1
                assert int(dut.dma__arsize.value) == 4 and int(dut.dma__arburst.value) == 1
                assert beats <= MAX_BURST_BEATS, beats
                assert address // 4096 == (address + 16 * beats - 1) // 4096, hex(address)
                self.stats["bursts"] += 1
                self.stats["outstanding"] += 1
                self.stats["max_outstanding"] = max(self.stats["max_outstanding"],
                                                    self.stats["outstanding"])
            if dut.dma__rvalid.value and dut.dma__rready.value and dut.dma__rlast.value:
                self.stats["outstanding"] -= 1
            if dut.dma__awvalid.value and dut.dma__awready.value:
                self.stats["writes"] += 1
                self.stats["writes_pending"] += 1
            if dut.dma__bvalid.value and dut.dma__bready.value:
                self.stats["writes_pending"] -= 1

    def put_images(self, images, src=SRC):
        self.memory.array[src:src + len(images) * IMAGE_BYTES] = images.reshape(-1)
        self.background[src:src + len(images) * IMAGE_BYTES] = images.reshape(-1)

    def records(self, count, dst=DST):
        return self.memory.array[dst:dst + count * RECORD_BYTES].view(RECORD_DTYPE)

    def check_guards(self, count, dst=DST):
        """Nothing outside the result buffer differs from what the test wrote."""
        outside = np.ones(RAM_BYTES, bool)
        outside[dst:dst + count * RECORD_BYTES] = False
        changed = np.flatnonzero((self.memory.array != self.background) & outside)
        assert changed.size == 0, f"bytes written outside the results: {changed[:8]}"

    async def program(self, count, src=SRC, dst=DST):
        for name, value in (("COUNT", count), ("SRC_LO", src), ("SRC_HI", 0), ("DST_LO", dst),
                            ("DST_HI", 0), ("IRQ_ENABLE", BATCH_END)):
            await self.set(name, value)

    async def wait_irq(self):
        if not self.dut.irq.value:
            await with_timeout(RisingEdge(self.dut.irq), BATCH_TIMEOUT_NS, "ns")


def _images(rng, count):
    return rng.integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)


def _check_records(bench, images):
    records = bench.records(len(images))
    expected = np.stack([stub_logits(image) for image in images])
    np.testing.assert_array_equal(records["logits"], expected)
    assert (records["image"] == np.arange(len(images))).all(), records["image"]
    assert (records["reserved"] == 0).all()
    assert (records["cycles"] >= PIXELS + STUB_LATENCY).all(), records["cycles"]


# ---- tests --------------------------------------------------------------------------------------

@cocotb.test()
async def batch_under_random_timing(dut):
    """Six images with random pauses on every channel of both ports: records equal to the
    stub's results, the interrupt at the end (cleared by writing 1), DONE, BATCH_IMAGES; bursts
    follow the rules, several are outstanding; the core is fed without bubbles; nothing
    outside the result buffer is written."""
    from sim.tb_ultra96_registers import _watch_stream

    bench = await DmaBench(dut, pause=0.3, seed=21).start()
    stats = {"transfers": 0, "bubbles": 0}
    watcher = cocotb.start_soon(_watch_stream(dut, stats))
    images = _images(np.random.default_rng(21), 6)
    bench.put_images(images)
    await bench.program(len(images))
    assert not dut.irq.value
    await bench.set("CONTROL", START_BATCH)
    assert (await bench.status())["BATCH"]
    await bench.wait_irq()
    watcher.cancel()
    status = await bench.status()
    assert status["DONE"] and not status["BUSY"] and not status["BATCH"], status
    assert not status["BUS_ERROR"], status
    assert await bench.reg("BATCH_IMAGES") == len(images)
    batch_cycles = await bench.reg("BATCH_CYCLES")
    records = bench.records(len(images))
    assert batch_cycles > int(records["cycles"].sum()), (batch_cycles, records["cycles"])
    _check_records(bench, images)
    bench.check_guards(len(images))
    await bench.set("IRQ_STATUS", BATCH_END)
    await ClockCycles(dut.clk, 2)
    assert not dut.irq.value and await bench.reg("IRQ_STATUS") == 0
    assert stats == {"transfers": len(images) * PIXELS, "bubbles": 0}, stats
    bursts = len(images) * IMAGE_BYTES // 256 + 6      # at most one extra per page crossed
    assert len(images) * IMAGE_BYTES // 256 <= bench.stats["bursts"] <= bursts, bench.stats
    assert bench.stats["max_outstanding"] >= 2, bench.stats
    assert bench.stats["writes"] == len(images), bench.stats


@cocotb.test()
async def error_responses_end_the_batch(dut):
    """SLVERR and DECERR on a read of image 2's pixels and on image 3's record write: the batch
    ends (the interrupt, never a hang) with STATUS.BUS_ERROR and BATCH_ERROR naming the image,
    the response and the direction; the port is idle; the next batch is correct."""
    bench = await DmaBench(dut, pause=0.2, seed=22).start()
    rng = np.random.default_rng(22)
    images = _images(rng, 5)
    bench.put_images(images)
    await bench.program(len(images))
    cases = [(True, 2, AxiResp.SLVERR), (True, 2, AxiResp.DECERR),
             (False, 3, AxiResp.SLVERR), (False, 3, AxiResp.DECERR)]
    for read, image, resp in cases:
        if read:            # a beat in the middle of the image's green plane
            first = SRC + image * IMAGE_BYTES + PIXELS + 512
            bench.fail(True, first, first + 16, resp)
        else:
            first = DST + image * RECORD_BYTES
            bench.fail(False, first, first + RECORD_BYTES, resp)
        await bench.set("CONTROL", START_BATCH)
        await bench.wait_irq()
        status = await bench.status()
        assert status["BUS_ERROR"] and not status["DONE"] and not status["BATCH"], status
        value = await bench.reg("BATCH_ERROR")
        fields = {item.name: (value & item.mask) >> item.lsb
                  for item in register("BATCH_ERROR").fields}
        assert fields == {"IMAGE": image, "RESP": int(resp), "WRITE": int(not read)}, fields
        assert await bench.reg("BATCH_IMAGES") <= image
        assert bench.stats["outstanding"] == 0 and bench.stats["writes_pending"] == 0
        assert not any(int(getattr(dut, f"dma__{name}valid").value) for name in ("ar", "aw", "w"))
        await bench.set("IRQ_STATUS", BATCH_END)
        bench.faults.clear()
        # The records written before the error are right; nothing else is touched (the
        # refused record write did not reach the RAM either).
        written = await bench.reg("BATCH_IMAGES")
        if written:
            _check_records(bench, images[:written])
        bench.check_guards(len(images))
    await bench.set("CONTROL", START_BATCH)
    await bench.wait_irq()
    assert (await bench.status())["DONE"]
    _check_records(bench, images)


@cocotb.test()
async def bad_batches_are_refused(dut):
    """START_BATCH with COUNT 0, an unaligned source or destination, a buffer past the end of
    the 40-bit address space, or overlapping buffers is answered with SLVERR and starts
    nothing; so are START_BATCH and START while a batch runs, and both in one write. The
    driver refuses the same buffers before any access, saying why."""
    bench = await DmaBench(dut, seed=23).start()
    control = register("CONTROL").offset
    cases = {
        "zero count": (0, SRC, DST),
        "unaligned source": (2, SRC + 8, DST),
        "unaligned destination": (2, SRC, DST + 16),
        "overlap": (2, SRC, SRC + IMAGE_BYTES + 16),
        "overlap from below": (4, SRC + 2 * 4096, SRC + 2 * 4096 - 48),
        "past the address space": (2, (1 << 40) - IMAGE_BYTES, DST),
    }
    for name, (count, src, dst) in cases.items():
        await bench.set("COUNT", count)
        for reg, value in (("SRC_LO", src & 0xFFFF_FFFF), ("SRC_HI", src >> 32),
                           ("DST_LO", dst & 0xFFFF_FFFF), ("DST_HI", dst >> 32)):
            await bench.set(reg, value)
        assert await bench.write(control, START_BATCH) == SLVERR, name
        status = await bench.status()
        assert not status["BATCH"] and not status["BUSY"], (name, status)
    bench.check_guards(0)

    images = _images(np.random.default_rng(23), 2)
    bench.put_images(images)
    await bench.program(len(images))
    start = field("CONTROL", "START").mask
    assert await bench.write(control, START_BATCH | start) == SLVERR
    assert not any((await bench.status()).values())
    await bench.set("CONTROL", START_BATCH)
    assert await bench.write(control, START_BATCH) == SLVERR
    assert await bench.write(control, start) == SLVERR
    await bench.wait_irq()
    _check_records(bench, images)
    # The refused commands left nothing behind: idle, the window not streamed, one batch.
    status = await bench.status()
    assert status["DONE"] and not status["BUSY"] and not status["LOADING"], status
    assert await bench.reg("IMAGES") == len(images)

    bus = CocotbAxiLiteBus(bench.master, dut.irq)

    def host():
        driver = Driver(bus)
        messages = []
        for count, src, dst in cases.values():
            try:
                driver.start_batch(count, src, dst)
            except DriverError as error:
                messages.append(str(error))
        return messages

    messages = await bridge(host)()
    assert len(messages) == len(cases), messages
    for words, message in zip(("1 to", "source", "result buffer", "overlap", "overlap",
                               "address space"), messages):
        assert words in message or (words == "source" and "image buffer" in message), message


@cocotb.test()
async def soft_reset_in_the_middle_of_a_batch(dut):
    """SOFT_RESET while a batch runs: the engine completes what is outstanding and is idle
    (no valid on its request channels, no transaction open), without an interrupt; the next
    batch is correct, through the driver and the interrupt."""
    bench = await DmaBench(dut, pause=0.3, seed=24).start()
    rng = np.random.default_rng(24)
    images = _images(rng, 6)
    bench.put_images(images)
    await bench.program(len(images))
    await bench.set("CONTROL", START_BATCH)
    for _ in range(1000):
        if await bench.reg("BATCH_IMAGES") >= 2:
            break
    await bench.set("CONTROL", SOFT_RESET)
    for _ in range(200):
        if not (await bench.status())["BATCH"]:
            break
    status = await bench.status()
    assert not any(status.values()), status
    assert await bench.reg("IRQ_STATUS") == 0 and not dut.irq.value
    await ClockCycles(dut.clk, 50)
    assert bench.stats["outstanding"] == 0 and bench.stats["writes_pending"] == 0, bench.stats
    assert not any(int(getattr(dut, f"dma__{name}valid").value) for name in ("ar", "aw", "w"))
    bench.check_guards(len(images))

    fresh = _images(rng, 4)
    bus = CocotbAxiLiteBus(bench.master, dut.irq)

    def host():
        return Driver(bus, memory=bench.memory, timeout=1e-3).classify_batch(fresh)

    logits, cycles = await bridge(host)()
    np.testing.assert_array_equal(logits, np.stack([stub_logits(image) for image in fresh]))
    assert (cycles >= PIXELS + STUB_LATENCY).all()

    # The driver reports an error response with the image and the direction.
    def failing():
        driver = Driver(bus, memory=bench.memory, timeout=1e-3)
        images, _ = driver._batch_buffers(len(fresh))
        bench.fail(True, images.address + IMAGE_BYTES, images.address + IMAGE_BYTES + 16,
                   AxiResp.DECERR)
        try:
            driver.classify_batch(fresh)
        except AcceleratorFault as error:
            return str(error)
        return None

    message = await bridge(failing)()
    assert message and "image 1" in message and "DECERR" in message and "reading" in message, \
        message
