"""A driver bus backend for RTL simulation: cocotbext-axi's ``AxiLiteMaster``.

The :class:`boards.ultra96.driver.Driver` is blocking code; in a cocotb test it runs in a thread
started with ``cocotb.task.bridge``, and every register access calls back into the simulation
through a ``cocotb.task.resume``-converted coroutine, which blocks the thread until the AXI
transaction has completed in simulated time::

    bus = CocotbAxiLiteBus(AxiLiteMaster(AxiLiteBus.from_prefix(dut, "axi_"), dut.clk, dut.rst))
    logits, cycles = await bridge(lambda: Driver(bus).classify(pixels))()

``now()`` is the simulated time in seconds and ``sleep()`` waits in simulated time, so driver
timeouts are measured in simulated time. Given the design's interrupt output, the bus also
offers ``wait_interrupt``, which :meth:`boards.ultra96.driver.Driver.classify_batch` uses.

:func:`axi_ram` puts a cocotbext-axi ``AxiRam`` on the design's AXI4 master port as its DDR,
over a NumPy array that an :class:`boards.ultra96.driver.ArrayMemory` hands out as buffers.
"""

import mmap

import numpy as np
from cocotb.simtime import get_sim_time
from cocotb.task import resume
from cocotb.triggers import First, RisingEdge, Timer
from cocotbext.axi import AxiBus, AxiRam, AxiResp

from .driver import ArrayMemory, BusBackend, BusError

__all__ = ["CocotbAxiLiteBus", "axi_ram"]


def axi_ram(dut, prefix, size, base=0):
    """An ``AxiRam`` of ``size`` bytes on the AXI4 port ``prefix`` of ``dut`` (clock ``clk``,
    reset ``rst``) and an :class:`ArrayMemory` over the same bytes at physical ``base``; the
    RAM answers addresses ``base .. base + size - 1``. Returns ``(ram, memory)``."""
    storage = mmap.mmap(-1, size)
    ram = AxiRam(AxiBus.from_prefix(dut, prefix), dut.clk, dut.rst, size=size, mem=storage)
    return ram, ArrayMemory(np.frombuffer(storage, np.uint8), base=base)


class CocotbAxiLiteBus(BusBackend):
    """Register accesses through ``master`` (a ``cocotbext.axi.AxiLiteMaster``); an error
    response raises :class:`boards.ultra96.driver.BusError`. Use from a
    ``cocotb.task.bridge`` thread only."""

    def __init__(self, master, irq=None):
        self.master, self.irq = master, irq
        self.reads = self.writes = 0
        if irq is None:
            # Without the interrupt signal the driver polls.
            self.wait_interrupt = None

    @staticmethod
    def _check(kind, offset, resp):
        if resp != AxiResp.OKAY:
            raise BusError(f"{kind} at 0x{offset:04X} answered with {AxiResp(resp).name}")

    def read32(self, offset):
        return resume(self._read)(offset)

    def write32(self, offset, value):
        resume(self._write)(offset, value)

    def now(self):
        return resume(self._now)()

    def sleep(self, seconds):
        if seconds > 0:
            resume(self._sleep)(seconds)

    async def _read(self, offset):
        response = await self.master.read(offset, 4)
        self.reads += 1
        self._check("read", offset, response.resp)
        return int.from_bytes(response.data, "little")

    async def _write(self, offset, value):
        response = await self.master.write(offset, (value & 0xFFFF_FFFF).to_bytes(4, "little"))
        self.writes += 1
        self._check("write", offset, response.resp)

    def wait_interrupt(self, seconds):
        """Wait until the interrupt output is high, at most ``seconds`` (simulated)."""
        resume(self._wait_interrupt)(seconds)

    async def _wait_interrupt(self, seconds):
        if not self.irq.value:
            await First(RisingEdge(self.irq), Timer(max(1, round(seconds * 1e9)), "ns"))

    async def _now(self):
        return get_sim_time("ns") * 1e-9

    async def _sleep(self, seconds):
        await Timer(max(1, round(seconds * 1e9)), "ns")
