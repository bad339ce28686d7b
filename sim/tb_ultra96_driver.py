"""cocotb test of the host driver against the whole accelerator behind its AXI4-Lite interface
and its AXI4 batch master (:class:`boards.ultra96.axi_accelerator.AXILiteAccelerator` around
:class:`rtl.accelerator.FracBNNAccelerator`).

The driver code that runs on the board (:class:`boards.ultra96.driver.Driver`) runs here in a
``cocotb.task.bridge`` thread; its register accesses go through cocotbext-axi's AXI-Lite master
(:class:`boards.ultra96.sim_bus.CocotbAxiLiteBus`) with random pauses on every channel, and the
DDR is an ``AxiRam`` on the batch master with random pauses on its channels (back-pressure and
latency). ``$FRACBNN_SIM_BATCH`` N > 0: the images go through ``classify_batch`` N at a time,
waiting on the interrupt; 0: one by one through ``classify`` (the image window).

The images come from the ``.npz`` named by ``$FRACBNN_SIM_DATA`` (``pixels``); the logits, cycle
counts and each batch's ``BATCH_CYCLES`` go to ``$FRACBNN_SIM_OUT``; the logits must equal the
golden model's (of ``$FRACBNN_SIM_MODEL``, or the bundled model). Each batch's ``BATCH_CYCLES``
must agree with the cycles the testbench counts while the design's ``busy`` output is high.
Run by :func:`boards.ultra96.simulate.simulate_board`.
"""

import os
import random

import cocotb
import numpy as np
from cocotb.task import bridge
from cocotb.triggers import ReadOnly, RisingEdge

from boards.ultra96.driver import Driver
from boards.ultra96.sim_bus import CocotbAxiLiteBus, axi_ram
from fracbnn_golden import FracBNN
from sim.runner import testbench_params
from sim.tb_ultra96_registers import Bench, _pauses

DATA_ENV = "FRACBNN_SIM_DATA"
OUT_ENV = "FRACBNN_SIM_OUT"
MODEL_ENV = "FRACBNN_SIM_MODEL"
BATCH_ENV = "FRACBNN_SIM_BATCH"
# The DDR: enough for the images and the records of a few hundred images.
RAM_BYTES = 4 << 20
PAUSE = 0.2


async def _count_busy(dut, counts):
    """Appends, for every stretch of ``busy`` high, its length in cycles."""
    length = 0
    while True:
        await RisingEdge(dut.clk)
        await ReadOnly()
        if dut.busy.value:
            length += 1
        elif length:
            counts.append(length)
            length = 0


@cocotb.test()
async def driver_classifies_images(dut):
    """Every image of the data file through the driver: logits equal to the golden model's;
    cycles as the accelerator counted them."""
    params = testbench_params()
    with np.load(os.environ[DATA_ENV]) as data:
        images = data["pixels"]
    batch = int(os.environ.get(BATCH_ENV, "0"))
    path = os.environ.get(MODEL_ENV)
    net = FracBNN.default() if path is None else FracBNN.from_npz(path)
    bench = Bench(dut, pause=PAUSE, seed=11)
    ram, memory = axi_ram(dut, "dma_", RAM_BYTES)
    rng = random.Random(12)
    for interface in (ram.read_if, ram.write_if):
        interface.log.setLevel("WARNING")
    for channel in (ram.read_if.ar_channel, ram.read_if.r_channel, ram.write_if.aw_channel,
                    ram.write_if.w_channel, ram.write_if.b_channel):
        channel.set_pause_generator(_pauses(rng, PAUSE))
    await bench.start()
    busy_stretches = []
    cocotb.start_soon(_count_busy(dut, busy_stretches))
    bus = CocotbAxiLiteBus(bench.master, dut.irq)
    timeout = params["timeout_per_image_s"]

    def host():
        # The timeouts are in simulated seconds (the backend's clock).
        driver = Driver(bus, timeout=timeout, memory=memory)
        if not batch:
            results = [driver.classify(image) for image in images]
            return (np.array([row for row, _ in results], np.int16),
                    np.array([count for _, count in results], np.int64), [])
        logits, cycles, batch_cycles = [], [], []
        for first in range(0, len(images), batch):
            row, count = driver.classify_batch(images[first:first + batch])
            logits.append(row)
            cycles.append(count)
            batch_cycles.append(driver.read("BATCH_CYCLES"))
        return np.concatenate(logits), np.concatenate(cycles), batch_cycles

    logits, cycles, batch_cycles = await bridge(host)()
    batch_cycles = np.array(batch_cycles, np.int64)
    if os.environ.get(OUT_ENV):
        np.savez(os.environ[OUT_ENV], logits=logits, cycles=cycles, batch_cycles=batch_cycles)
    dut._log.info("cycles %s; batch cycles %s; %d register reads, %d writes", cycles.tolist(),
                  batch_cycles.tolist(), bus.reads, bus.writes)
    np.testing.assert_array_equal(logits, net.logits(images))
    if batch:
        # BUSY is high from the START_BATCH write to the end of the batch, as BATCH_CYCLES
        # counts (it includes the write's cycle).
        assert len(busy_stretches) == len(batch_cycles), (busy_stretches, batch_cycles)
        for counted, register in zip(busy_stretches, batch_cycles.tolist()):
            assert abs(counted - register) <= 2, (counted, register)
